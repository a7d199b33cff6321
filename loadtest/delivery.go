package loadtest

import (
	"context"
	"maps"
	"time"

	"github.com/confab-sfu/confab/signal"
	"github.com/confab-sfu/confab/signal/client/clip"
)

// How delivery is judged.
const (
	// deliveryEvery is how often what every subscriber received is sampled.
	deliveryEvery = 250 * time.Millisecond
	// fullShare is the share of the video published for a subscriber that it
	// must receive, from some moment to the end of the run, to have full
	// media from that moment.
	fullShare = 0.99
	// minJudged is the shortest stretch a share is judged over: in a shorter
	// one, a frame in flight at either end weighs too much.
	minJudged = 5 * time.Second
	// singleLayer is the clip layer a publisher without simulcast sends
	// (the 720p one).
	singleLayer = 2
)

// forwarding follows the server's decisions ("layers" messages) on one
// track a peer receives.
type forwarding struct {
	on        bool // the last decision forwards it
	forwarded bool // some decision forwarded it
	switches  int  // pauses and resumes after it was first forwarded
}

// pausedForBandwidth says whether the server holds a track back because
// the subscriber's bandwidth has no room for it.
func pausedForBandwidth(d signal.LayerDecision) bool {
	return d.Target == "" && d.Reason == "bandwidth"
}

// noteDecision counts the pauses for bandwidth, and the resumes after
// them, of a track the server had already forwarded. A track held back
// from the start is not a switch: it shows in the time to full media.
// r.mu is held.
func (r *receiveLog) noteDecision(d signal.LayerDecision) {
	f := r.fwd[d.TrackID]
	if f == nil {
		f = &forwarding{}
		r.fwd[d.TrackID] = f
	}
	on := d.Target != "" && !d.Paused
	switch {
	case pausedForBandwidth(d) && f.on:
		f.on = false
		f.switches++
	case on && !f.on:
		if f.forwarded {
			f.switches++
		}
		f.on, f.forwarded = true, true
	}
}

// switchCounts returns the tracks the server forwarded to the peer, their
// pauses and resumes, and the most of one track. r.mu is held.
func (r *receiveLog) switchCounts() (tracks, switches, most int) {
	for _, f := range r.fwd {
		if f.forwarded {
			tracks++
		}
		switches += f.switches
		most = max(most, f.switches)
	}
	return tracks, switches, most
}

// deliverySample is what one subscriber had received at a moment.
type deliverySample struct {
	at       time.Time
	got      uint64 // video payload bytes received
	sent     uint64 // video payload bytes its publishers sent of the layer it should receive
	complete bool   // every expected track arrived, every video on its target layer
}

// sample records what the peer received by now. sent gives the payload a
// publisher (by stream id) sent of the layer the peer should receive;
// tracks of publishers outside the run are not judged.
func (r *receiveLog) sample(now time.Time, sent func(stream string, layer int) (uint64, bool)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := deliverySample{at: now, complete: len(r.tracks) >= r.expect}
	target := signal.LayerName(r.target)
	for _, t := range r.tracks {
		if !t.started {
			s.complete = false
		}
		if !t.video {
			continue
		}
		n, ok := sent(t.stream, r.target)
		if !ok {
			continue
		}
		if layerOfWidth(t.width) != target {
			s.complete = false
		}
		s.got += t.payload
		s.sent += n
	}
	r.samples = append(r.samples, s)
}

// fullAfter returns how long after joining the peer first had full media:
// every expected track arriving, every video on its target layer, and from
// then to the end of the run at least fullShare of the video published for
// it. ok is false when it never had.
func (r *receiveLog) fullAfter() (d time.Duration, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.samples) == 0 || r.expect == 0 {
		return 0, false
	}
	last := r.samples[len(r.samples)-1]
	for _, s := range r.samples {
		if last.at.Sub(s.at) < minJudged {
			break
		}
		if !s.complete || last.got < s.got || last.sent < s.sent {
			continue // a rejoin starts its tracks' counts again
		}
		if float64(last.got-s.got) >= fullShare*float64(last.sent-s.sent) {
			return s.at.Sub(r.joined), true
		}
	}
	return 0, false
}

// deliveryPoint is the media all subscribers had received at a moment.
type deliveryPoint struct {
	at    time.Time
	bytes uint64
}

// watchDelivery samples every subscriber's delivery until ctx ends; the
// returned function waits for it to stop.
func (r *run) watchDelivery(ctx context.Context) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(deliveryEvery)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-tick.C:
				r.sampleDelivery(now)
			}
		}
	}()
	return func() { <-done }
}

// sampleDelivery samples every peer that has started joining.
func (r *run) sampleDelivery(now time.Time) {
	r.mu.Lock()
	peers := append([]*receiveLog(nil), r.watched...)
	videos := maps.Clone(r.videos)
	r.mu.Unlock()
	sent := func(stream string, layer int) (uint64, bool) {
		v := videos[stream]
		if v == nil {
			return 0, false
		}
		if len(v.Tracks()) == 1 {
			layer = 0 // one layer: the source's only track
		}
		return v.PayloadBytes(layer), true
	}
	var total uint64
	for _, p := range peers {
		p.sample(now, sent)
		b, _, _ := p.counters()
		total += b
	}
	r.mu.Lock()
	r.delivery = append(r.delivery, deliveryPoint{now, total})
	r.mu.Unlock()
}

// addVideo makes a publisher's video known to the delivery samples.
func (r *run) addVideo(stream string, v *clip.VideoSource) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.videos[stream] = v
}

// targetLayer is the layer a subscriber should receive of a video: what
// it asks for of a simulcast publisher (the top one when it leaves it to
// the server, or is a WHEP player), else the one layer sent.
func (cfg *Config) targetLayer(viaHTTP bool) int {
	if !cfg.Simulcast {
		return singleLayer
	}
	top, _ := signal.LayerIndex("")
	if i, ok := signal.LayerIndex(cfg.Layer); ok && !viaHTTP {
		return i
	}
	return top
}
