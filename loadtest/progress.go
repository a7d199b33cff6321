package loadtest

import (
	"fmt"
	"io"
	"sync"
)

// progress prints one live line while media flows.
type progress struct {
	w     io.Writer
	total int
	mu    sync.Mutex
	count int
}

func newProgress(w io.Writer, total int) *progress { return &progress{w: w, total: total} }

func (p *progress) join() {
	p.mu.Lock()
	p.count++
	n := p.count
	p.mu.Unlock()
	if p.w != nil {
		fmt.Fprintf(p.w, "\rjoined %d/%d", n, p.total)
	}
}

// line shows one sample.
func (p *progress) line(sm Sample) {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	n := p.count
	p.mu.Unlock()
	fmt.Fprintf(p.w, "\r%3.0fs  peers %d (joined %d/%d)  sent %.0f kbit/s  received %.0f kbit/s  loss %.2f%%  server %.2f cores   ",
		sm.Seconds, sm.Peers, n, p.total, sm.SentKbps, sm.RecvKbps, sm.LossPct, sm.ServerCPU)
}

// done ends the live line.
func (p *progress) done() {
	if p.w != nil {
		fmt.Fprintln(p.w)
	}
}
