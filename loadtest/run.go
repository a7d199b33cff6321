// Package loadtest fills a Confab server's rooms with synthetic
// participants (Go peers of package client sending the VP8 and Opus clips
// of package clip), measures what they receive and what the server spends,
// and reports it. cmd/confab-load is its command.
package loadtest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confab-sfu/confab/signal/client"
	"github.com/confab-sfu/confab/signal/client/clip"
	"github.com/pion/webrtc/v4"
)

// joinTimeout bounds joining and publishing, and the wait for the first
// packet of every track a newcomer should receive.
const joinTimeout = 20 * time.Second

// run is one load run in progress: who is in and what they received.
type run struct {
	cfg      Config
	api      *webrtc.API
	ctx      context.Context // media flows, and peers stay, until it ends
	progress *progress
	sent     sendMeter
	delays   delayMatcher
	rep      *Report
	media    sync.WaitGroup // media sources
	churning sync.WaitGroup // replacement joins still under way
	keyReqs  atomic.Int64   // keyframe requests the publishers received

	mu        sync.Mutex
	live      map[*client.Peer]*receiveLog // WebSocket peers still in
	sessions  []*client.HTTPSession        // WHIP presenters and WHEP viewers
	logs      []*receiveLog                // everyone who joined, also those gone
	joinTimes []float64                    // milliseconds
	perNode   []nodeCount                  // by node
	watched   []*receiveLog                // everyone who started joining
	videos    map[string]*clip.VideoSource // the publishers' cameras by stream id
	delivery  []deliveryPoint              // media received by all, every deliveryEvery
}

// Run executes a scenario and returns its report. It fails when a peer
// could not join or a subscriber received nothing. Every peer has left
// when it returns.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	plans, err := cfg.plans()
	if err != nil {
		return nil, err
	}
	api, err := client.NewAPI(client.APIOptions{Loopback: cfg.Loopback, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	before := scrapeNodes(ctx, cfg.nodes)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := &run{cfg: cfg, api: api, ctx: runCtx, progress: newProgress(cfg.Progress, len(plans)),
		rep:  &Report{Scenario: cfg.Scenario, Peers: len(plans), Layers: map[string]int{}, ServerLayers: map[string]int{}},
		live: map[*client.Peer]*receiveLog{}, perNode: make([]nodeCount, len(cfg.nodes)), videos: map[string]*clip.VideoSource{}}
	watchCtx, stopWatching := context.WithCancel(runCtx)
	defer stopWatching()
	watching := r.watchDelivery(watchCtx)
	if err := r.joinAll(ctx, plans); err != nil {
		cancel()
		watching()
		r.leaveAll()
		r.rep.addNodes(cfg.nodes, r.perNode, r.logs, make([]ServerStats, len(cfg.nodes)))
		return r.rep, err
	}
	flowStart, firstSent := time.Now(), r.sent.total()
	r.delays.measuring.Store(true)
	probe := startSyscallProbe(ctx, cfg)
	r.flow(ctx, plans)
	r.rep.ServerSyscalls = probe.stop(ctx)
	r.delays.measuring.Store(false)
	r.progress.done()
	r.settleLast(ctx)
	rep := r.rep
	rep.Duration = time.Since(flowStart).Seconds()
	rep.SentKbps = float64(r.sent.total()-firstSent) * 8 / 1000 / rep.Duration
	var perNode []ServerStats
	rep.Server, perNode = serversSince(scrapeNodes(ctx, cfg.nodes), before)
	rep.Server.RSSPerPeer = rep.Server.RSSGrowth / float64(rep.Joined)
	stopWatching()
	watching()
	cancel()
	r.leaveAll()
	r.ended()
	rep.addReceived(r.logs, r.joinTimes)
	rep.addDelivery(r.delivery, r.keyReqs.Load())
	rep.addNodes(cfg.nodes, r.perNode, r.logs, perNode)
	return rep, rep.verdict()
}

// ended counts as failed every peer that stopped by itself: it could not
// rejoin (Config.Reconnect) or was sent away.
func (r *run) ended() {
	for p, rec := range r.everyPeer() {
		if err := p.Err(); err != nil {
			r.fail(rec.name, fmt.Errorf("ended: %w", err))
		}
	}
}

// everyPeer lists the WebSocket peers of the run, those gone included.
func (r *run) everyPeer() map[*client.Peer]*receiveLog {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[*client.Peer]*receiveLog{}
	for _, l := range r.logs {
		l.mu.Lock()
		if l.peer != nil {
			out[l.peer] = l
		}
		l.mu.Unlock()
	}
	return out
}

// fail records a participant that failed, or that a busy server refused
// (counted apart); the run goes on without it.
func (r *run) fail(name string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if refusedByLoad(err) {
		r.rep.Refused = append(r.rep.Refused, fmt.Sprintf("%s: %v", name, err))
		return
	}
	r.rep.Failures = append(r.rep.Failures, fmt.Sprintf("%s: %v", name, err))
}

// joinAll brings everyone in at the configured ramp and waits for their
// joins to end. It fails when nobody joined or ctx ended.
func (r *run) joinAll(ctx context.Context, plans []plan) error {
	var interval time.Duration
	if r.cfg.Ramp > 0 {
		interval = time.Duration(float64(time.Second) / r.cfg.Ramp)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	for i, pl := range plans {
		if i > 0 && interval > 0 {
			select {
			case <-time.After(interval):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.join(pl); err != nil {
				r.fail(pl.name, err)
			}
		}()
	}
	wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rep.Joined = len(r.live) + len(r.sessions)
	if r.rep.Joined == 0 {
		return fmt.Errorf("no peer joined, %d failed", len(r.rep.Failures))
	}
	return nil
}

// join brings one planned participant in, waits for the first media of
// every track it should receive, and records it.
func (r *run) join(pl plan) error {
	rec := newReceiveLog(pl.name, pl.expect)
	rec.node, rec.nodes, rec.room, rec.delays = pl.node, r.cfg.nodes, pl.room, &r.delays
	rec.target = r.cfg.targetLayer(r.cfg.overHTTP(pl))
	r.mu.Lock()
	r.perNode[pl.node].tried++
	r.watched = append(r.watched, rec)
	r.mu.Unlock()
	start := time.Now()
	setup, cancel := context.WithTimeout(r.ctx, joinTimeout)
	defer cancel()
	var enter func() // adds the participant to the run, under r.mu
	if r.cfg.overHTTP(pl) {
		s, err := r.joinHTTP(setup, pl, rec)
		if err != nil {
			return err
		}
		enter = func() { r.sessions = append(r.sessions, s) }
	} else {
		p, err := r.joinWS(setup, pl, rec)
		if err != nil {
			return err
		}
		enter = func() { r.live[p] = rec }
	}
	r.progress.join()
	ready, missing := rec.waitFirstMedia(r.ctx, joinTimeout)
	if missing > 0 && r.ctx.Err() == nil {
		// It stays in the run (and its figures count), but the join failed.
		r.fail(pl.name, fmt.Errorf("no media on %d tracks %v after joining", missing, joinTimeout))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	enter()
	r.logs = append(r.logs, rec)
	r.perNode[pl.node].joined++
	// A WHIP presenter receives nothing, so it has no join time.
	if missing == 0 && !(r.cfg.overHTTP(pl) && pl.publish) {
		ms := float64(ready.Sub(start).Microseconds()) / 1000
		r.joinTimes = append(r.joinTimes, ms)
		r.perNode[pl.node].joinMillis = append(r.perNode[pl.node].joinMillis, ms)
	}
	return nil
}

// leaveAll makes every participant leave and waits for the media sources
// to stop. r.ctx must have ended.
func (r *run) leaveAll() {
	// A replacement that joined after the end is in live too: wait for
	// them all, so that every peer is left below.
	r.churning.Wait()
	r.mu.Lock()
	peers := make([]*client.Peer, 0, len(r.live))
	for p := range r.live {
		peers = append(peers, p)
	}
	sessions := append([]*client.HTTPSession(nil), r.sessions...)
	r.mu.Unlock()
	for _, p := range peers {
		_ = p.Leave()
	}
	for _, s := range sessions {
		_ = s.Close()
	}
	r.media.Wait()
}
