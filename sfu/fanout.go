package sfu

import (
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/confab-sfu/confab/sfu/vp8"
	"github.com/pion/rtp"
)

// parallelFanOut is the subscriber count from which one layer's packets are
// written by several goroutines: below it, handing work over costs more
// than it saves. A lecture's one popular track then uses every core.
var parallelFanOut = 32

// fanJob is one slice of the subscribers to write one packet to.
type fanJob struct {
	downs []*DownTrack
	layer int8
	pkt   *rtp.Packet
	key   bool
	vd    *vp8.Descriptor
	now   int64
}

// fanOut is a small pool of long-lived writer goroutines owned by one
// layer's reader. The reader hands each writer a slice of the subscriber
// snapshot, writes its own slice, and waits for the others before it reuses
// its buffer: no copy of the packet, no allocation, no goroutine per packet.
type fanOut struct {
	jobs []chan fanJob
	wg   sync.WaitGroup
	sent atomic.Int64 // packets written by the workers in the current write
	stop chan struct{}
	done sync.WaitGroup
}

// newFanOut starts one writer per core besides the reader's. On one core
// (a server pinned with taskset) there are none: handing a packet to
// another goroutine there buys no parallelism, only a wake-up per packet,
// so the reader writes to every subscriber itself.
func newFanOut() *fanOut {
	n := runtime.GOMAXPROCS(0) - 1
	f := &fanOut{stop: make(chan struct{})}
	for i := 0; i < n; i++ {
		ch := make(chan fanJob, 1)
		f.jobs = append(f.jobs, ch)
		f.done.Add(1)
		go f.worker(ch)
	}
	return f
}

func (f *fanOut) worker(ch chan fanJob) {
	defer f.done.Done()
	for {
		select {
		case <-f.stop:
			return
		case j := <-ch:
			n := int64(0)
			for _, d := range j.downs {
				if d.writeRTP(j.layer, j.pkt, j.key, j.vd, j.now) {
					n++
				}
			}
			f.sent.Add(n)
			f.wg.Done()
		}
	}
}

// write sends one packet to every DownTrack in downs, spread over the
// workers and the calling goroutine, and returns, once all are written, how
// many were sent.
func (f *fanOut) write(downs []*DownTrack, layer int8, pkt *rtp.Packet, key bool, vd *vp8.Descriptor, now int64) int {
	f.sent.Store(0)
	parts := len(f.jobs) + 1
	size := (len(downs) + parts - 1) / parts
	i := 0
	for _, ch := range f.jobs {
		if i >= len(downs) {
			break
		}
		end := min(i+size, len(downs))
		f.wg.Add(1)
		metricFanOutHandoffs.Inc()
		ch <- fanJob{downs: downs[i:end], layer: layer, pkt: pkt, key: key, vd: vd, now: now}
		i = end
	}
	n := 0
	for _, d := range downs[i:] {
		if d.writeRTP(layer, pkt, key, vd, now) {
			n++
		}
	}
	f.wg.Wait()
	return n + int(f.sent.Load())
}

// close stops the workers.
func (f *fanOut) close() {
	close(f.stop)
	f.done.Wait()
}
