package loadtest

import (
	"context"
	"fmt"
	"time"

	"github.com/confab-sfu/confab/signal/client"
)

// flow lets media flow for the configured duration, one sample a second.
// In the churn scenario one participant also leaves and a new one joins
// every second.
func (r *run) flow(ctx context.Context, plans []plan) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	end := time.After(r.cfg.Duration)
	s := r.newSampler(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-end:
			return
		case now := <-tick.C:
			sm := s.sample(ctx, now)
			r.rep.Timeline = append(r.rep.Timeline, sm)
			r.progress.line(sm)
			if r.cfg.Scenario == "churn" {
				r.rep.Churn++
				r.churn(plans, r.rep.Churn)
			}
		}
	}
}

// sampler turns what was received, sent and scraped into one Sample per
// second, each from the previous one.
type sampler struct {
	r      *run
	start  time.Time
	at     time.Time
	server []ServerStats // by node
	recv   uint64        // bytes received by all peers
	sent   uint64
}

// newSampler starts the samples from now, not from before the joins.
func (r *run) newSampler(ctx context.Context) *sampler {
	now := time.Now()
	recv, _, _, _ := r.received()
	return &sampler{r: r, start: now, at: now, server: scrapeNodes(ctx, r.cfg.nodes), recv: recv, sent: r.sent.total()}
}

func (s *sampler) sample(ctx context.Context, now time.Time) Sample {
	recv, packets, lost, peers := s.r.received()
	srv := scrapeNodes(ctx, s.r.cfg.nodes)
	sent := s.r.sent.total()
	dt := now.Sub(s.at).Seconds()
	sm := Sample{Seconds: now.Sub(s.start).Seconds(), RecvKbps: float64(recv-s.recv) * 8 / 1000 / dt,
		SentKbps: float64(sent-s.sent) * 8 / 1000 / dt, Peers: peers}
	// The servers' figures add up over the nodes that answered both times.
	for i, n := range srv {
		if n.Available && s.server[i].Available {
			sm.ServerCPU += (n.CPUSeconds - s.server[i].CPUSeconds) / dt
			sm.ServerKbps += (n.BytesOut - s.server[i].BytesOut) * 8 / 1000 / dt
			sm.ServerRSS += n.RSSBytes / (1 << 20)
		}
	}
	if packets+lost > 0 {
		sm.LossPct = 100 * float64(lost) / float64(packets+lost)
	}
	s.at, s.server, s.recv, s.sent = now, srv, recv, sent
	return sm
}

// received settles every receive log and adds up what arrived so far, with
// the number of participants in.
func (r *run) received() (bytes, packets, lost uint64, peers int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.logs {
		l.settle()
		b, p, lo := l.counters()
		bytes, packets, lost = bytes+b, packets+p, lost+lo
	}
	return bytes, packets, lost, len(r.live) + len(r.sessions)
}

// settleLast gives the last losses a second to be repaired before they
// are judged.
func (r *run) settleLast(ctx context.Context) {
	r.received()
	select {
	case <-time.After(time.Second):
	case <-ctx.Done():
	}
	r.received()
}

// churn makes the oldest live participant leave and a new one take its
// place, so rooms see joins and leaves all the time.
func (r *run) churn(plans []plan, n int) {
	r.mu.Lock()
	var victim *client.Peer
	var rec *receiveLog
	for p, l := range r.live {
		if rec == nil || l.name < rec.name {
			victim, rec = p, l
		}
	}
	if victim != nil {
		delete(r.live, victim)
	}
	r.mu.Unlock()
	if victim == nil {
		return
	}
	r.churning.Add(1)
	go func() {
		defer r.churning.Done()
		_ = victim.Leave()
		if r.ctx.Err() != nil {
			return
		}
		pl := plans[n%len(plans)]
		pl.name = fmt.Sprintf("%s-c%d", pl.name, n)
		pl.expect = 0 // membership changes under it: no fixed expectation
		if err := r.join(pl); err != nil && r.ctx.Err() == nil {
			r.fail(pl.name, err)
		}
	}()
}
