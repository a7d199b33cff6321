package sfu

import (
	"net"
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
// failed.
func (w batchWriter) writeBatch(ms []ipv4.Message) (int, error) {
	b := w.rawBatch
	if b.rc == nil {
		return 0, syscall.EINVAL
	}
	for i := range ms {
		ua, ok := ms[i].Addr.(*net.UDPAddr)
		ip := ua.IP.To4()
		if !ok || ip == nil || len(ms[i].Buffers) != 1 || len(ms[i].Buffers[0]) == 0 {
			return i, syscall.EINVAL
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
	r, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[0])), uintptr(b.n), 0, 0, 0)
	if e == unix.EAGAIN {
		return false
	}
	if e != 0 {
		b.errno = e
		return true
	}
	b.sent = int(r)
	return true
}
