package sfu

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/wait"
)

// forwardingFrames name the functions a forwarded packet passes through on
// the server after pion handed it to Confab: the reader's handling (cache,
// VP8 parsing, the fan-out), each subscriber's write (rewriting, the
// transport-wide number, pion's SRTP encryption and the socket write
// beneath it), the fan-out workers and the batched socket's flusher. An
// allocation whose stack passes through one of them is the forwarding
// path's. What pion does before handing the packet over (SRTP decryption,
// its receive interceptors) is the receive side, counted apart.
var forwardingFrames = []string{
	"sfu.(*Receiver).handlePacket+",
	"sfu.(*DownTrack).writeRTP+",
	"sfu.(*fanOut).worker+",
	"sfu.(*batchConn).flusher+",
}

// allocCounts are cumulative allocation counts of the process.
type allocCounts struct {
	forwarding int64 // objects allocated on stacks through forwardingFrames
	refills    int64 // of those, refills of a sync.Pool that a collection emptied
	receiving  int64 // objects allocated under the Receivers' reads, outside forwarding
	total      uint64
	gcs        uint32
	stacks     map[string]int64 // forwarding objects per stack, to show where
}

// poolRefillFrames mark a forwarding allocation that refills a sync.Pool
// emptied by a garbage collection (pion's SRTP buffers, x/net's sendmmsg
// headers): once per pool and collection, not per packet.
var poolRefillFrames = []string{"sync.(*Pool).", "socket.(*mmsghdrsPacker).prepare+"}

// countAllocs reads the allocation profile (exact with MemProfileRate 1)
// after two collections, so that it holds every allocation so far.
func countAllocs(t testing.TB) allocCounts {
	t.Helper()
	runtime.GC()
	runtime.GC()
	var buf bytes.Buffer
	if err := pprof.Lookup("allocs").WriteTo(&buf, 1); err != nil {
		t.Fatal(err)
	}
	c := allocCounts{stacks: map[string]int64{}}
	var objects int64
	var fwd, recv, refill bool
	var stack strings.Builder
	flush := func() {
		if fwd {
			c.forwarding += objects
			c.stacks[stack.String()] += objects
			if refill {
				c.refills += objects
			}
		} else if recv {
			c.receiving += objects
		}
		objects, fwd, recv, refill = 0, false, false, false
		stack.Reset()
	}
	sc := bufio.NewScanner(&buf)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.Contains(line, "@ 0x") && strings.Contains(line, "["):
			// "inuse: bytes [allocated: bytes] @ stack"
			flush()
			f := strings.Fields(line[strings.Index(line, "[")+1:])
			n, err := strconv.ParseInt(strings.TrimSuffix(f[0], ":"), 10, 64)
			if err != nil {
				t.Fatalf("allocation profile line %q: %v", line, err)
			}
			objects = n
		case strings.HasPrefix(line, "#\t0x"):
			if f := strings.Fields(line); len(f) >= 3 {
				stack.WriteString("\n\t" + f[2])
			}
			for _, fn := range forwardingFrames {
				fwd = fwd || strings.Contains(line, fn)
			}
			recv = recv || strings.Contains(line, "sfu.(*Receiver).readLoop+")
			for _, fn := range poolRefillFrames {
				refill = refill || strings.Contains(line, fn)
			}
		case strings.HasPrefix(line, "# runtime.MemStats"):
			flush()
		}
	}
	flush()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	c.total, c.gcs = ms.Mallocs, ms.NumGC
	return c
}

// realPath is a server engine on one shared UDP port (batched sends), a
// publisher and n subscribers, all real pion PeerConnections over
// loopback in this process.
type realPath struct {
	subs    []*client
	downs   []*DownTrack
	watches []*mediaWatch
	recv    *Receiver
}

// newSharedPortEngine returns a loopback-only engine on one shared,
// batched UDP port, closed when t ends.
func newSharedPortEngine(t testing.TB) *Engine {
	t.Helper()
	l, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.LocalAddr().(*net.UDPAddr).Port
	_ = l.Close()
	e, err := NewEngine(Config{Loopback: true, UDPPort: port, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func newRealPath(t testing.TB, n int) *realPath {
	e := newSharedPortEngine(t)
	_, recvs := publishN(t, e, 1)
	rp := &realPath{recv: recvs[0]}
	for range n {
		sub := newClient(t, e, clientOpts{})
		d, _, w := subscribeAndWatch(t, sub, recvs[0], false)
		rp.subs = append(rp.subs, sub)
		rp.downs = append(rp.downs, d)
		rp.watches = append(rp.watches, w)
		wait.For(t, patience, "media at a subscriber", func() bool { return w.count() > 0 })
	}
	return rp
}

// forwarded is how many packets the server wrote to the subscribers.
func (rp *realPath) forwarded() uint64 {
	var n uint64
	for _, d := range rp.downs {
		n += d.Stats().Packets
	}
	return n
}

// measure waits for packets more forwarded packets and returns them with
// the allocations meanwhile.
func (rp *realPath) measure(t testing.TB, packets uint64) (uint64, allocCounts) {
	before := countAllocs(t)
	start := rp.forwarded()
	wait.For(t, time.Minute, fmt.Sprintf("%d forwarded packets", packets), func() bool { return rp.forwarded()-start >= packets })
	after := countAllocs(t)
	fwd := rp.forwarded() - start
	d := allocCounts{forwarding: after.forwarding - before.forwarding, refills: after.refills - before.refills,
		gcs: after.gcs - before.gcs, receiving: after.receiving - before.receiving, total: after.total - before.total, stacks: map[string]int64{}}
	for s, n := range after.stacks {
		if n -= before.stacks[s]; n != 0 {
			d.stacks[s] = n
		}
	}
	return fwd, d
}

// Zero allocations per forwarded packet, measured through the real path:
// a server engine on a batched UDP port, a publisher sending VP8 at 50
// packets a second and 8 subscribers, all real pion PeerConnections over
// loopback (SRTP, DTLS, ICE). Every allocation of the process is
// profiled while 1000 packets are forwarded, after as many to warm up;
// none may be on the forwarding path (forwardingFrames) but the refills of
// sync.Pools that each garbage collection empties (at most 16 per
// collection and one per 20 packets; the collections include the
// measurement's own). The
// receive side (pion's SRTP decryption and receive interceptors, once per
// incoming packet) and the whole process (clients included) are logged,
// not asserted.
func TestRealPathForwardingAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's sync.Pool drops items: allocations are not the program's")
	}
	if testing.Short() {
		t.Skip("profiles every allocation for 20-60 s")
	}
	checkLeaks(t)
	rate := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	defer func() { runtime.MemProfileRate = rate }()
	rp := newRealPath(t, 8)
	rp.measure(t, 1000) // warm-up: first-use caches, pools
	n, a := rp.measure(t, 1000)
	in := n / uint64(len(rp.downs))
	t.Logf("%d packets forwarded (%d in): %d allocations on the forwarding path, %d of them pool refills after %d collections; receive side %.2f per incoming packet; whole process (clients included) %.1f per forwarded packet",
		n, in, a.forwarding, a.refills, a.gcs, float64(a.receiving)/float64(in), float64(a.total)/float64(n))
	// A refill is per pool and collection; one per packet would be a leak.
	if a.forwarding != a.refills || a.refills > 16*int64(a.gcs+1) || a.refills*20 > int64(n) {
		t.Errorf("%d allocations on the forwarding path (%d pool refills) for %d forwarded packets", a.forwarding, a.refills, n)
		for s, k := range a.stacks {
			t.Logf("%d allocations at:%s", k, s)
		}
	}
}

// BenchmarkRealPath reports allocations per forwarded packet through the
// real path (see TestRealPathForwardingAllocatesNothing) with 10 and 100
// subscribers: b.N is forwarded packets.
func BenchmarkRealPath(b *testing.B) {
	for _, subs := range []int{10, 100} {
		b.Run(fmt.Sprintf("subscribers=%d", subs), func(b *testing.B) {
			rate := runtime.MemProfileRate
			runtime.MemProfileRate = 1
			defer func() { runtime.MemProfileRate = rate }()
			rp := newRealPath(b, subs)
			rp.measure(b, uint64(10*subs)) // warm-up
			b.ResetTimer()
			n, a := rp.measure(b, uint64(max(b.N, subs)))
			b.ReportMetric(float64(a.forwarding-a.refills)/float64(n), "fwd-allocs/pkt")
			b.ReportMetric(float64(a.refills)/float64(a.gcs+1), "pool-refills/gc")
			b.ReportMetric(float64(a.receiving)*float64(subs)/float64(n), "recv-allocs/in-pkt")
			b.ReportMetric(float64(a.total)/float64(n), "process-allocs/pkt")
		})
	}
}
