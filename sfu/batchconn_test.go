package sfu

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/wait"
)

func listenLoopback(t testing.TB) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadBuffer(8 << 20)
	return c
}

// TestBatchConnDeliversEverythingIntact: packets queued by concurrent
// writers all arrive, each whole and to its own destination, in fewer
// system calls than packets.
func TestBatchConnDeliversEverythingIntact(t *testing.T) {
	raw := listenLoopback(t)
	b := newBatchConn(raw)
	defer b.Close()
	const writers, each, dests = 4, 500, 3
	var rx [dests]*net.UDPConn
	for i := range rx {
		rx[i] = listenLoopback(t)
		defer rx[i].Close()
	}
	got := make([]map[uint32]bool, dests)
	var wg sync.WaitGroup
	for i := range rx {
		got[i] = map[uint32]bool{}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			buf := make([]byte, 2000)
			for {
				_ = rx[i].SetReadDeadline(time.Now().Add(2 * time.Second))
				n, err := rx[i].Read(buf)
				if err != nil {
					return
				}
				id := binary.BigEndian.Uint32(buf)
				size := 100 + int(id%1000)
				if n != size || buf[n-1] != byte(id) {
					t.Errorf("packet %d: %d bytes, want %d intact", id, n, size)
				}
				got[i][id] = true
			}
		}(i)
	}
	var wwg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wwg.Add(1)
		go func(w int) {
			defer wwg.Done()
			p := make([]byte, 1100)
			for k := 0; k < each; k++ {
				id := uint32(w*each + k)
				size := 100 + int(id%1000)
				binary.BigEndian.PutUint32(p, id)
				p[size-1] = byte(id)
				to := rx[int(id)%dests].LocalAddr().(*net.UDPAddr).AddrPort()
				if n, err := b.WriteToAddrPort(p[:size], to); err != nil || n != size {
					t.Errorf("write %d: %d %v", id, n, err)
				}
			}
		}(w)
	}
	wwg.Wait()
	wg.Wait()
	total := 0
	for i := range got {
		for id := range got[i] {
			if int(id)%dests != i {
				t.Errorf("packet %d arrived at destination %d", id, i)
			}
		}
		total += len(got[i])
	}
	if total != writers*each {
		t.Fatalf("%d of %d packets arrived", total, writers*each)
	}
	t.Logf("%d packets in %d system calls", b.packets.Load(), b.batches.Load())
	if b.packets.Load() == 0 || b.batches.Load() > b.packets.Load() {
		t.Fatalf("%d packets in %d calls", b.packets.Load(), b.batches.Load())
	}
}

func TestBatchConnQueuingAllocatesNothing(t *testing.T) {
	raw := listenLoopback(t)
	b := newBatchConn(raw)
	defer b.Close()
	rx := listenLoopback(t)
	defer rx.Close()
	to := rx.LocalAddr().(*net.UDPAddr).AddrPort()
	p := make([]byte, 1200)
	if a := testing.AllocsPerRun(1000, func() { _, _ = b.WriteToAddrPort(p, to) }); a != 0 {
		t.Fatalf("%.1f allocations per queued packet", a)
	}
}

// BenchmarkUDPFanOut sends one 1200-byte packet to each of 100
// subscribers' addresses, as the fan-out does, from one socket: a sendto
// per packet, or queued and batched with sendmmsg.
func BenchmarkUDPFanOut(b *testing.B) {
	const subs = 100
	var dests []netip.AddrPort
	for i := 0; i < 4; i++ {
		rx := listenLoopback(b)
		defer rx.Close()
		go func() {
			buf := make([]byte, 2000)
			for {
				if _, err := rx.Read(buf); err != nil {
					return
				}
			}
		}()
		dests = append(dests, rx.LocalAddr().(*net.UDPAddr).AddrPort())
	}
	p := make([]byte, 1200)
	run := func(b *testing.B, write func([]byte, netip.AddrPort) (int, error)) {
		b.ReportAllocs()
		b.SetBytes(subs * 1200)
		for i := 0; i < b.N; i++ {
			for s := 0; s < subs; s++ {
				_, _ = write(p, dests[s%len(dests)])
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*subs), "ns/packet")
	}
	b.Run("sendto", func(b *testing.B) {
		c := listenLoopback(b)
		defer c.Close()
		run(b, c.WriteToUDPAddrPort)
	})
	b.Run("batched", func(b *testing.B) {
		c := newBatchConn(listenLoopback(b))
		defer c.Close()
		run(b, c.WriteToAddrPort)
		// Count what was queued as sent only once it left.
		wait.For(b, 10*time.Second, "the queue to drain", func() bool {
			c.mu.Lock()
			defer c.mu.Unlock()
			return len(c.pending) == 0
		})
		b.ReportMetric(float64(c.packets.Load())/float64(max(c.batches.Load(), 1)), "packets/call")
	})
}

// A writer that fills the queue waits for the flusher instead of
// overtaking the queued packets: one receiver sees them in order.
func TestBatchConnKeepsOrderWhenTheQueueIsFull(t *testing.T) {
	raw := listenLoopback(t)
	b := newBatchConn(raw)
	defer b.Close()
	rx := listenLoopback(t)
	defer rx.Close()
	if err := rx.SetReadBuffer(8 << 20); err != nil {
		t.Fatal(err)
	}
	to := rx.LocalAddr().(*net.UDPAddr).AddrPort()
	const total = 4 * batchSlots
	p := make([]byte, 100)
	for i := range total {
		binary.BigEndian.PutUint32(p, uint32(i))
		if _, err := b.WriteToAddrPort(p, to); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 200)
	_ = rx.SetReadDeadline(time.Now().Add(patience))
	next := uint32(0)
	for next < total {
		n, err := rx.Read(buf)
		if err != nil {
			t.Fatalf("after %d packets: %v", next, err)
		}
		if got := binary.BigEndian.Uint32(buf[:n]); got < next {
			t.Fatalf("packet %d arrived after %d", got, next)
		} else {
			next = got + 1 // a packet the kernel dropped is skipped, never reordered
		}
	}
}

// A destination the kernel refuses (port 0) costs its own packet only:
// the packets queued before and after it arrive.
func TestBatchConnBadDestinationLosesOnlyItsPacket(t *testing.T) {
	raw := listenLoopback(t)
	b := newBatchConn(raw)
	defer b.Close()
	rx := listenLoopback(t)
	defer rx.Close()
	good := rx.LocalAddr().(*net.UDPAddr).AddrPort()
	bad := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 0)
	for i, to := range []netip.AddrPort{good, bad, good} {
		if _, err := b.WriteToAddrPort([]byte{byte(i), 1, 2, 3}, to); err != nil {
			t.Fatal(err)
		}
	}
	var got []byte
	buf := make([]byte, 100)
	for len(got) < 2 {
		_ = rx.SetReadDeadline(time.Now().Add(patience))
		if _, err := rx.Read(buf); err != nil {
			t.Fatalf("got packets %v, want 0 and 2: %v", got, err)
		}
		got = append(got, buf[0])
	}
	if got[0] != 0 || got[1] != 2 {
		t.Fatalf("got packets %v, want 0 and 2", got)
	}
}

// Reads hand out every datagram once, whole, with its own sender, also
// when many wait on the socket and come off it in batches.
func TestBatchConnReadsEveryDatagramWithItsSender(t *testing.T) {
	raw := listenLoopback(t)
	b := newBatchConn(raw)
	defer b.Close()
	to := raw.LocalAddr().(*net.UDPAddr)
	var senders [3]*net.UDPConn
	for i := range senders {
		senders[i] = listenLoopback(t)
		defer senders[i].Close()
	}
	const total = 90
	for k := range total {
		s := senders[k%len(senders)]
		p := make([]byte, 50+k*13)
		binary.BigEndian.PutUint32(p, uint32(k))
		p[len(p)-1] = byte(k)
		if _, err := s.WriteToUDP(p, to); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 8192)
	_ = b.SetReadDeadline(time.Now().Add(patience))
	for k := range total {
		n, from, err := b.ReadFromAddrPort(buf)
		if err != nil {
			t.Fatalf("read %d: %v", k, err)
		}
		id := int(binary.BigEndian.Uint32(buf))
		if id != k || n != 50+k*13 || buf[n-1] != byte(k) {
			t.Fatalf("read %d: datagram %d of %d bytes", k, id, n)
		}
		if want := senders[k%len(senders)].LocalAddr().(*net.UDPAddr).AddrPort(); from != want {
			t.Fatalf("datagram %d from %v, want %v", k, from, want)
		}
	}
}
