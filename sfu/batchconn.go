package sfu

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
	"golang.org/x/net/ipv4"
)

// Batched sending on the shared UDP port. Profiles of a lecture showed a
// third of the server's CPU in the sendto system call: one per packet per
// viewer. With every participant on one socket (-ice-udp-port), the
// packets that a fan-out writes for many subscribers can leave in one
// sendmmsg instead. Writers copy their packet into a queue and return; one
// goroutine per socket drains the queue with as many packets per system call
// as have gathered meanwhile. Nothing waits for a timer: on an idle server
// a batch is one packet, sent at once.

// batchSlots is how many packets may wait per socket. A writer that finds
// the queue full waits for the flusher to take it: sending its packet
// itself would overtake the queued ones (a reader carrying one packet to a
// hundred subscribers on one core fills the queue before the flusher
// runs, and its subscribers then saw a quarter of the video out of order).
const batchSlots = 512

// maxBatch bounds one sendmmsg call.
const maxBatch = 64

type batchSlot struct {
	buf  [maxPacketSize]byte
	bufs [1][]byte // Message.Buffers, kept here so queuing allocates nothing
	addr net.UDPAddr
	ip   [4]byte
}

// batchConn is a UDP socket whose writes are batched.
type batchConn struct {
	*net.UDPConn
	out batchWriter // sends one batch (batchconn_linux.go, batchconn_other.go)
	in  batchReader // reads (the same files)

	mu      sync.Mutex
	pending []ipv4.Message // filled by writers
	sending []ipv4.Message // being sent by the flusher
	slots   []batchSlot    // backing buffers: the first half for one list, the second for the other
	inPend  int            // which half pending uses (0 or 1)
	wake    chan struct{}
	space   chan struct{} // the flusher took the pending list
	closed  chan struct{}
	done    chan struct{}
	once    sync.Once

	batches, packets atomic.Uint64 // for tests and metrics

	routeMu sync.RWMutex
	routes  map[netip.AddrPort]rtcpTaker // who reads whose RTCP on the spot (direct_rtcp.go)
}

func newBatchConn(c *net.UDPConn) *batchConn {
	b := &batchConn{UDPConn: c, out: newBatchWriter(c), in: newBatchReader(c), slots: make([]batchSlot, 2*batchSlots),
		pending: make([]ipv4.Message, 0, batchSlots), sending: make([]ipv4.Message, 0, batchSlots),
		wake: make(chan struct{}, 1), space: make(chan struct{}, 1), closed: make(chan struct{}), done: make(chan struct{})}
	go b.flusher()
	return b
}

// WriteToAddrPort queues one packet (pion's ICE writes through this).
func (b *batchConn) WriteToAddrPort(p []byte, addr netip.AddrPort) (int, error) {
	a := addr.Addr().Unmap()
	if !a.Is4() || len(p) > maxPacketSize {
		return b.UDPConn.WriteToUDPAddrPort(p, addr)
	}
	b.mu.Lock()
	n := len(b.pending)
	for n == batchSlots {
		b.mu.Unlock()
		if !b.waitSpace() {
			return 0, net.ErrClosed
		}
		b.mu.Lock()
		n = len(b.pending)
	}
	s := &b.slots[b.inPend*batchSlots+n]
	copy(s.buf[:], p)
	s.ip = a.As4()
	s.addr.IP = s.ip[:]
	s.addr.Port = int(addr.Port())
	s.bufs[0] = s.buf[:len(p)]
	b.pending = append(b.pending, ipv4.Message{Buffers: s.bufs[:], Addr: &s.addr})
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
	return len(p), nil
}

// waitSpace wakes the flusher and waits until it took the pending list;
// false when the socket closed.
func (b *batchConn) waitSpace() bool {
	select {
	case b.wake <- struct{}{}:
	default:
	}
	select {
	case <-b.space:
		return true
	case <-b.closed:
		return false
	}
}

// WriteTo queues one packet (for callers with a net.Addr).
func (b *batchConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if ua, ok := addr.(*net.UDPAddr); ok {
		return b.WriteToAddrPort(p, ua.AddrPort())
	}
	return b.UDPConn.WriteTo(p, addr)
}

// WriteToUDP queues one packet.
func (b *batchConn) WriteToUDP(p []byte, addr *net.UDPAddr) (int, error) {
	return b.WriteToAddrPort(p, addr.AddrPort())
}

// ReadFromAddrPort reads one datagram; on Linux from batches that one
// recvmmsg takes off the socket (batchconn_linux.go). pion's UDP mux reads
// through it. RTCP that a peer's direct path takes (direct_rtcp.go) is
// handled here and not returned.
func (b *batchConn) ReadFromAddrPort(p []byte) (int, netip.AddrPort, error) {
	for {
		n, addr, err := b.in.read(b.UDPConn, p)
		if err != nil || !isRTCP(p[:n]) || !b.takes(p[:n], addr) {
			return n, addr, err
		}
	}
}

func (b *batchConn) flusher() {
	defer close(b.done)
	for {
		select {
		case <-b.wake:
		case <-b.closed:
			return
		}
		for {
			b.mu.Lock()
			if len(b.pending) == 0 {
				b.mu.Unlock()
				break
			}
			// Swap the lists: writers fill the other half meanwhile.
			b.pending, b.sending = b.sending[:0], b.pending
			b.inPend ^= 1
			b.mu.Unlock()
			select {
			case b.space <- struct{}{}:
			default:
			}
			b.send(b.sending)
		}
	}
}

func (b *batchConn) send(ms []ipv4.Message) {
	for len(ms) > 0 {
		n := min(len(ms), maxBatch)
		sent, err := b.out.writeBatch(ms[:n])
		if err != nil {
			// A bad destination fails its packet only: skip it and go on,
			// as a single sendto would have.
			sent = max(sent, 1)
		}
		b.batches.Add(1)
		b.packets.Add(uint64(sent))
		metricUDPBatches.Inc()
		metricUDPBatchedPackets.Add(float64(sent))
		ms = ms[sent:]
	}
}

// Close stops the flusher (what is queued is dropped, as a closing socket
// would) and closes the socket.
func (b *batchConn) Close() error {
	b.once.Do(func() { close(b.closed) })
	<-b.done
	return b.UDPConn.Close()
}

// batchNet is the standard network with batched UDP sockets, for the UDP
// mux. It knows its sockets by local address, so that a peer can write
// to the one its selected ICE pair uses (direct.go).
type batchNet struct {
	*stdnet.Net
	mu    sync.Mutex
	conns map[netip.AddrPort]*batchConn
}

func newBatchNet() (*batchNet, error) {
	n, err := stdnet.NewNet()
	if err != nil {
		return nil, err
	}
	return &batchNet{Net: n, conns: map[netip.AddrPort]*batchConn{}}, nil
}

func (n *batchNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	b := newBatchConn(c)
	if a, ok := c.LocalAddr().(*net.UDPAddr); ok {
		ap := a.AddrPort()
		n.mu.Lock()
		n.conns[netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())] = b
		n.mu.Unlock()
	}
	return b, nil
}

// conn returns the socket bound to local, nil if there is none.
func (n *batchNet) conn(local netip.AddrPort) *batchConn {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.conns[local]
}
