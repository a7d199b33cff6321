package room_test

import (
	"math/rand"
	"net"
	"sync"
	"time"

	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
)

// link impairs what a subscriber's PeerConnection receives: a bottleneck
// of a given rate with a bounded queue (packets that would wait longer are
// dropped, as at a real router), plus random loss. It works on real UDP
// sockets on loopback: the subscriber's socket reads are slowed and
// filtered, so the server sees exactly what a constrained downlink shows.
type link struct {
	mu       sync.Mutex
	rateBps  int64         // 0: unlimited
	maxQueue time.Duration // the bottleneck's queue, in time
	loss     float64       // 0..1
	rng      *rand.Rand
	nextFree time.Time // when the bottleneck is free again
	dropped  int
	passed   int
}

func newLink() *link {
	return &link{maxQueue: 100 * time.Millisecond, rng: rand.New(rand.NewSource(1))}
}

// set changes the rate (bit/s, 0 unlimited) and the loss ratio.
func (l *link) set(rateBps int64, loss float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rateBps, l.loss = rateBps, loss
}

// admit decides the fate of one arriving packet: drop it, or deliver it
// after wait.
func (l *link) admit(size int) (wait time.Duration, drop bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.loss > 0 && l.rng.Float64() < l.loss {
		l.dropped++
		return 0, true
	}
	if l.rateBps <= 0 {
		l.passed++
		return 0, false
	}
	now := time.Now()
	if l.nextFree.Before(now) {
		l.nextFree = now
	}
	if l.nextFree.Sub(now) > l.maxQueue {
		l.dropped++
		return 0, true
	}
	l.nextFree = l.nextFree.Add(time.Duration(int64(size+28) * 8 * int64(time.Second) / l.rateBps))
	l.passed++
	return l.nextFree.Sub(now), false
}

func (l *link) counts() (passed, dropped int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.passed, l.dropped
}

// impairedNet is the real network with every UDP socket's reads going
// through the link.
type impairedNet struct {
	*stdnet.Net
	link *link
}

func newImpairedNet(l *link) (*impairedNet, error) {
	n, err := stdnet.NewNet()
	if err != nil {
		return nil, err
	}
	return &impairedNet{Net: n, link: l}, nil
}

func (n *impairedNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	return &impairedConn{UDPConn: c, p: &pump{link: n.link, read: c.ReadFrom}}, nil
}

func (n *impairedNet) ListenPacket(network, address string) (net.PacketConn, error) {
	c, err := n.Net.ListenPacket(network, address)
	if err != nil {
		return nil, err
	}
	return &impairedPacketConn{PacketConn: c, p: &pump{link: n.link, read: c.ReadFrom}}, nil
}

// datagram is a packet that survived the link, due at deliverAt.
type datagram struct {
	b         []byte
	addr      net.Addr
	deliverAt time.Time
}

// pump reads a socket as fast as packets arrive, so arrival times and the
// queue are judged correctly, and hands survivors to the reader when due.
type pump struct {
	link *link
	read func([]byte) (int, net.Addr, error)
	once sync.Once
	ch   chan datagram
	err  error
}

func (p *pump) start() {
	p.ch = make(chan datagram, 4096)
	go func() {
		defer close(p.ch)
		for {
			buf := make([]byte, 1500)
			n, addr, err := p.read(buf)
			if err != nil {
				p.err = err
				return
			}
			wait, drop := p.link.admit(n)
			if drop {
				continue
			}
			select {
			case p.ch <- datagram{b: buf[:n], addr: addr, deliverAt: time.Now().Add(wait)}:
			default: // the reader fell far behind: the queue overflows
			}
		}
	}()
}

func (p *pump) next(b []byte) (int, net.Addr, error) {
	p.once.Do(p.start)
	d, ok := <-p.ch
	if !ok {
		return 0, nil, p.err
	}
	if w := time.Until(d.deliverAt); w > 0 {
		time.Sleep(w) // the link's latency: the datagram is still on its way
	}
	return copy(b, d.b), d.addr, nil
}

// impairedConn is a UDP socket whose reads pass the link.
type impairedConn struct {
	transport.UDPConn
	p *pump
}

func (c *impairedConn) ReadFrom(b []byte) (int, net.Addr, error) { return c.p.next(b) }

func (c *impairedConn) ReadFromUDP(b []byte) (int, *net.UDPAddr, error) {
	n, addr, err := c.p.next(b)
	ua, _ := addr.(*net.UDPAddr)
	return n, ua, err
}

type impairedPacketConn struct {
	net.PacketConn
	p *pump
}

func (c *impairedPacketConn) ReadFrom(b []byte) (int, net.Addr, error) { return c.p.next(b) }
