package sfu

import (
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// batchWriter sends a batch with one sendmmsg, issued as a raw system
// call. x/net's WriteBatch enters the call through the runtime's syscall
// bookkeeping: a batch to a hundred viewers takes about 300 µs in the
// kernel, long enough for the runtime's monitor to hand the goroutine's P
// to another thread, and on a server pinned to one core the two threads
// then take turns on it (context switches, futex wake-ups) and the
// sending thread parks when the call returns. The socket is non-blocking,
// so the raw call cannot block; a full socket buffer (EAGAIN) waits in the
// poller like any write. The headers are built in place: nothing is
// allocated per batch.
type batchWriter struct{ *rawBatch }

type rawBatch struct {
	rc    syscall.RawConn
	hdrs  [maxBatch]unix.Mmsghdr
	iovs  [maxBatch]unix.Iovec
	names [maxBatch]unix.RawSockaddrInet4
	n     int // messages in hdrs for the call under way
	sent  int
	errno syscall.Errno
	call  func(fd uintptr) bool // sendmmsg, made once: a closure per batch would allocate
}

func newBatchWriter(c *net.UDPConn) batchWriter {
	b := &rawBatch{}
	b.call = b.sendmmsg
	rc, err := c.SyscallConn()
	if err == nil {
		b.rc = rc
	}
	for i := range b.hdrs {
		h := &b.hdrs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		h.Namelen = unix.SizeofSockaddrInet4
		h.Iov = &b.iovs[i]
		h.SetIovlen(1)
		b.names[i].Family = unix.AF_INET
	}
	return batchWriter{b}
}

// writeBatch sends ms (at most maxBatch, IPv4 destinations, one buffer
// each) and returns how many were sent; on an error the first unsent one
// failed. A message it cannot send ends the batch before it, so that the
// caller skips that one alone.
func (w batchWriter) writeBatch(ms []ipv4.Message) (int, error) {
	b := w.rawBatch
	if b.rc == nil {
		return 0, syscall.EINVAL
	}
	for i := range ms {
		ua, ok := ms[i].Addr.(*net.UDPAddr)
		var ip net.IP
		if ok {
			ip = ua.IP.To4()
		}
		if ip == nil || len(ms[i].Buffers) != 1 || len(ms[i].Buffers[0]) == 0 {
			if i == 0 {
				return 0, syscall.EINVAL
			}
			ms = ms[:i]
			break
		}
		sa := &b.names[i]
		copy(sa.Addr[:], ip)
		port := (*[2]byte)(unsafe.Pointer(&sa.Port))
		port[0], port[1] = byte(ua.Port>>8), byte(ua.Port)
		buf := ms[i].Buffers[0]
		b.iovs[i].Base = &buf[0]
		b.iovs[i].SetLen(len(buf))
	}
	b.n, b.sent, b.errno = len(ms), 0, 0
	if err := b.rc.Write(b.call); err != nil {
		return 0, err
	}
	if b.errno != 0 {
		return b.sent, b.errno
	}
	return b.sent, nil
}

// sendmmsg is the raw call, run by the poller with the socket's fd; false
// asks it to wait until the socket can take more.
func (b *rawBatch) sendmmsg(fd uintptr) bool {
	var again bool
	b.sent, b.errno, again = mmsg(unix.SYS_SENDMMSG, fd, &b.hdrs[0], b.n)
	return !again
}

// mmsg makes one sendmmsg or recvmmsg call on n headers from hdrs: how
// many messages it moved, its error, or again when the socket was not
// ready.
func mmsg(trap, fd uintptr, hdrs *unix.Mmsghdr, n int) (count int, errno syscall.Errno, again bool) {
	r, _, e := unix.RawSyscall6(trap, fd, uintptr(unsafe.Pointer(hdrs)), uintptr(n), 0, 0, 0)
	switch {
	case e == unix.EAGAIN:
		return 0, 0, true
	case e != 0:
		return 0, e, false
	}
	return int(r), 0, false
}

// readBatch is how many datagrams one recvmmsg may take, and readSlot the
// room for each (larger than any datagram WebRTC sends).
const (
	readBatch = 16
	readSlot  = 8192
)

// batchReader takes every datagram waiting on the socket with one
// recvmmsg (a raw call, like the sends) and hands them out one a read:
// under load the shared port's reads cost one system call per wake-up
// instead of one per datagram.
type batchReader struct{ *rawRecv }

type rawRecv struct {
	mu    sync.Mutex
	rc    syscall.RawConn
	hdrs  [readBatch]unix.Mmsghdr
	iovs  [readBatch]unix.Iovec
	names [readBatch]unix.RawSockaddrInet6
	bufs  []byte // readBatch slots of readSlot bytes
	n     int    // datagrams taken by the last call
	next  int    // the next one to hand out
	errno syscall.Errno
	call  func(fd uintptr) bool
}

func newBatchReader(c *net.UDPConn) batchReader {
	r := &rawRecv{bufs: make([]byte, readBatch*readSlot)}
	r.call = r.recvmmsg
	if rc, err := c.SyscallConn(); err == nil {
		r.rc = rc
	}
	for i := range r.hdrs {
		h := &r.hdrs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&r.names[i]))
		h.Iov = &r.iovs[i]
		h.SetIovlen(1)
		r.iovs[i].Base = &r.bufs[i*readSlot]
		r.iovs[i].SetLen(readSlot)
	}
	return batchReader{r}
}

func (r batchReader) read(c *net.UDPConn, p []byte) (int, netip.AddrPort, error) {
	if r.rc == nil {
		return c.ReadFromUDPAddrPort(p)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		for r.next < r.n {
			i := r.next
			r.next++
			h := &r.hdrs[i]
			addr, ok := sockaddrPort(&r.names[i])
			if !ok || h.Hdr.Flags&unix.MSG_TRUNC != 0 {
				continue // not an IP sender, or larger than any WebRTC datagram
			}
			n := copy(p, r.bufs[i*readSlot:i*readSlot+int(h.Len)])
			return n, addr, nil
		}
		for i := range r.hdrs {
			r.hdrs[i].Hdr.Namelen = unix.SizeofSockaddrInet6
			r.hdrs[i].Hdr.Flags = 0
		}
		r.n, r.next, r.errno = 0, 0, 0
		if err := r.rc.Read(r.call); err != nil {
			return 0, netip.AddrPort{}, err
		}
		if r.errno != 0 {
			return 0, netip.AddrPort{}, os.NewSyscallError("recvmmsg", r.errno)
		}
	}
}

// recvmmsg is the raw call, run by the poller with the socket's fd; false
// asks it to wait until a datagram comes.
func (r *rawRecv) recvmmsg(fd uintptr) bool {
	var again bool
	r.n, r.errno, again = mmsg(unix.SYS_RECVMMSG, fd, &r.hdrs[0], readBatch)
	return !again
}

// sockaddrPort reads the sender's address that recvmmsg wrote.
func sockaddrPort(sa *unix.RawSockaddrInet6) (netip.AddrPort, bool) {
	port := func(p uint16) uint16 { b := (*[2]byte)(unsafe.Pointer(&p)); return uint16(b[0])<<8 | uint16(b[1]) }
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port(sa4.Port)), true
	case unix.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), port(sa.Port)), true
	}
	return netip.AddrPort{}, false
}
