package loadtest

import (
	"cmp"
	"context"
	"math/bits"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/confab-sfu/confab/sfu/vp8"

	"github.com/confab-sfu/confab/signal"
	"github.com/confab-sfu/confab/signal/client"
	"github.com/pion/rtp"
)

// freezeGap is the pause between video frames counted as a freeze.
const freezeGap = 500 * time.Millisecond

// trackLog counts what arrives on one track: packets, bytes, losses from
// the extended sequence numbers, and freezes between video frames.
type trackLog struct {
	video     bool
	node      int       // the node it came through
	opened    time.Time // when it arrived (OnTrack)
	first     time.Time
	packets   uint64
	bytes     uint64 // media: padding-only probes are not counted
	payload   uint64 // media payload bytes (what the publisher put in)
	padding   uint64 // padding-only packets (the server's bandwidth probes)
	stream    string // the publisher's stream id (its name in a run)
	started   bool
	maxExt    int64 // highest extended sequence number
	minExt    int64
	lastFrame time.Time
	lastTS    uint32
	freezes   int
	width     uint16   // from the last VP8 keyframe
	seen      []uint64 // bit i: extended sequence number minExt+i arrived
	bound     int64    // the newest sequence number a second ago (-1: none)
	pending   int64    // the newest sequence number at the last settle
	delay     delayRecord
}

// mark records an arrival, so late repairs count and duplicates do not.
func (t *trackLog) mark(ext int64) {
	i := ext - t.minExt
	if i < 0 {
		return
	}
	for int64(len(t.seen))*64 <= i {
		t.seen = append(t.seen, 0)
	}
	t.seen[i/64] |= 1 << (i % 64)
}

// lostUpTo counts the sequence numbers up to ext that never arrived.
func (t *trackLog) lostUpTo(ext int64) uint64 {
	if !t.started || ext < t.minExt {
		return 0
	}
	n := ext - t.minExt + 1
	got := 0
	for w := int64(0); w*64 < n && int(w) < len(t.seen); w++ {
		word := t.seen[w]
		if rest := n - w*64; rest < 64 {
			word &= 1<<uint(rest) - 1
		}
		got += bits.OnesCount64(word)
	}
	return uint64(n - int64(got))
}

// add records an arrival; fresh says it was the newest packet so far (not
// a repair, a duplicate or reordered).
func (t *trackLog) add(p *rtp.Packet, n int, now time.Time) (fresh bool) {
	t.packets++
	if p.Padding && len(p.Payload) == 0 {
		t.padding++
	} else {
		t.bytes += uint64(n)
		t.payload += uint64(len(p.Payload))
	}
	if !t.started {
		t.started, t.first = true, now
		t.maxExt, t.minExt = int64(p.SequenceNumber), int64(p.SequenceNumber)
		t.lastTS, t.lastFrame = p.Timestamp, now
		t.bound, t.pending = -1, -1
		t.mark(t.minExt)
		return true
	}
	// Extend the 16-bit number by its distance from the newest one seen,
	// so wraps, reordering and late repairs all land in the right place.
	ext := t.maxExt + int64(int16(p.SequenceNumber-uint16(t.maxExt)))
	fresh = ext > t.maxExt
	t.maxExt = max(t.maxExt, ext)
	t.mark(ext)
	if t.video {
		if w, _ := vp8.KeyframeSize(p.Payload); w > 0 {
			t.width = uint16(w)
		}
	}
	if t.video && p.Timestamp != t.lastTS && len(p.Payload) > 0 {
		if now.Sub(t.lastFrame) > freezeGap {
			t.freezes++
		}
		t.lastTS, t.lastFrame = p.Timestamp, now
	}
	return fresh
}

// layerOfWidth names a layer by resolution (the clips are 320, 640, 1280 wide).
func layerOfWidth(w uint16) string {
	switch {
	case w == 0:
		return "unknown"
	case w <= 400:
		return signal.LayerLow
	case w <= 800:
		return signal.LayerMedium
	}
	return signal.LayerHigh
}

// receiveLog is one peer's view of what it received.
type receiveLog struct {
	name    string
	expect  int
	node    int      // the node it joined through first
	nodes   []string // the run's nodes, to tell where a track came from
	events  int      // room events received (everything but negotiation)
	peer    *client.Peer
	wantNow []string // ids of the tracks published when the peer joined
	joined  time.Time
	target  int // the layer it should receive of each video
	room    string
	delays  *delayMatcher // nil: forwarding delay not measured

	mu     sync.Mutex
	tracks map[string]*trackLog
	got    chan struct{}     // signalled when a track starts or is unpublished
	told   map[string]string // track id -> layer the server says it forwards
	fwd    map[string]*forwarding
	// samples of what was delivered, every deliveryEvery from the join
	samples []deliverySample
}

func newReceiveLog(name string, expect int) *receiveLog {
	return &receiveLog{name: name, expect: expect, joined: time.Now(), tracks: map[string]*trackLog{}, got: make(chan struct{}, 64),
		told: map[string]string{}, fwd: map[string]*forwarding{}}
}

// track reads one forwarded track until it ends, and applies the layer
// policy to video.
func (r *receiveLog) track(rt *client.RemoteTrack, layer string) {
	node := r.node
	if i := slices.Index(r.nodes, rt.URL); i >= 0 {
		node = i // after a rejoin, maybe another node
	}
	tl := &trackLog{video: rt.Info.Kind == "video", node: node, opened: time.Now(), stream: rt.Info.StreamID}
	td := trackDelay{m: r.delays, video: tl.video}
	if r.delays != nil {
		td.log = r.delays.logFor(r.room, cmp.Or(rt.Info.Participant, rt.Track.StreamID()))
	}
	r.mu.Lock()
	r.tracks[rt.Info.ID] = tl
	peer := r.peer
	r.mu.Unlock()
	if tl.video && layer != "" && layer != "auto" && peer != nil {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = peer.Subscribe(ctx, signal.Subscription{TrackID: rt.Info.ID, MaxLayer: layer})
		}()
	}
	go func() {
		buf := make([]byte, 1500)
		var pkt rtp.Packet
		for {
			n, _, err := rt.Track.Read(buf)
			if err != nil {
				return
			}
			if pkt.Unmarshal(buf[:n]) != nil {
				continue
			}
			now := time.Now()
			sent, measured, found := td.lookup(pkt.Payload, now)
			r.mu.Lock()
			first := !tl.started
			fresh := tl.add(&pkt, n, now)
			if measured {
				tl.delay.record(fresh, found, time.Duration(clockAt(now)-sent))
			}
			r.mu.Unlock()
			if first {
				r.changed()
			}
		}
	}()
}

// changed wakes waitFirstMedia: a track started, or one was unpublished.
func (r *receiveLog) changed() {
	select {
	case r.got <- struct{}{}:
	default:
	}
}

// waitFirstMedia returns when media arrived on every track that was
// published when the peer joined and still is (or at once if there were
// none); missing counts the tracks that never started within limit.
func (r *receiveLog) waitFirstMedia(ctx context.Context, limit time.Duration) (at time.Time, missing int) {
	deadline := time.After(limit)
	for {
		missing = r.missing()
		if missing == 0 {
			return time.Now(), 0
		}
		select {
		case <-r.got:
		case <-deadline:
			return time.Now(), missing
		case <-ctx.Done():
			return time.Now(), missing
		}
	}
}

// missing counts the tracks of the welcome that are still published and
// have not delivered a packet yet.
func (r *receiveLog) missing() int {
	r.mu.Lock()
	p, want := r.peer, r.wantNow
	if p == nil {
		// A WHEP viewer: it knows only how many tracks it was given.
		started := 0
		for _, t := range r.tracks {
			if t.started {
				started++
			}
		}
		r.mu.Unlock()
		return max(0, r.expect-started)
	}
	r.mu.Unlock()
	published := map[string]bool{}
	for _, t := range p.Tracks() {
		published[t.ID] = true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, id := range want {
		if t := r.tracks[id]; published[id] && (t == nil || !t.started) {
			n++
		}
	}
	return n
}

// follow reads the peer's room events until it is gone: the server's
// "layers" decisions are recorded, unpublished tracks wake waitFirstMedia,
// the rest is dropped (so a long run does not pile up events nobody reads).
func (r *receiveLog) follow(p *client.Peer) {
	for {
		select {
		case m, ok := <-p.Events():
			if !ok {
				return
			}
			if m == nil {
				continue
			}
			r.mu.Lock()
			r.events++
			r.mu.Unlock()
			if m.Type == signal.TypeTrackUnpublished {
				r.changed()
			}
			if m.Type != signal.TypeLayers {
				continue
			}
			r.mu.Lock()
			for _, d := range m.Decisions {
				switch {
				case d.Paused || pausedForBandwidth(d):
					r.told[d.TrackID] = "paused"
				case d.Current != "": // "" before the first layer starts
					r.told[d.TrackID] = d.Current
				}
				r.noteDecision(d)
			}
			r.mu.Unlock()
		case <-p.Done():
			return
		}
	}
}

// reconnections are the peer's rejoins (none for WHIP and WHEP sessions).
func (r *receiveLog) reconnections() []client.Reconnection {
	r.mu.Lock()
	p := r.peer
	r.mu.Unlock()
	if p == nil {
		return nil
	}
	return p.Reconnections()
}

func (r *receiveLog) setPeer(p *client.Peer) {
	r.mu.Lock()
	r.peer = p
	r.wantNow = r.wantNow[:0]
	for _, t := range p.Welcome().Tracks {
		r.wantNow = append(r.wantNow, t.ID)
	}
	r.mu.Unlock()
}

// counters returns bytes, packets and lost packets so far.
func (r *receiveLog) counters() (bytes, packets, lost uint64) {
	p, l := r.totals()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range r.tracks {
		bytes += t.bytes
	}
	return bytes, p, l
}

// layers names the layer each received video track was last on, as seen
// in its keyframes, and as the server last said it forwards it.
func (r *receiveLog) layers() (seen, told []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range r.tracks {
		if t.video {
			seen = append(seen, layerOfWidth(t.width))
		}
	}
	for _, l := range r.told {
		told = append(told, l)
	}
	sort.Strings(seen)
	sort.Strings(told)
	return seen, told
}

func (r *receiveLog) totals() (packets, lost uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range r.tracks {
		packets += t.packets
		if t.bound >= 0 {
			lost += t.lostUpTo(t.bound)
		}
	}
	return packets, lost
}

// settle marks what has arrived so far as old enough to judge: a gap
// before it that is still open a second later was not repaired. Called
// once a second.
func (r *receiveLog) settle() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range r.tracks {
		if t.started {
			t.bound, t.pending = t.pending, t.maxExt
		}
	}
}

func (r *receiveLog) stats(seconds float64) SubscriberStats {
	p, l := r.totals()
	seen, told := r.layers()
	full, reached := r.fullAfter()
	r.mu.Lock()
	defer r.mu.Unlock()
	s := SubscriberStats{Name: r.name, Tracks: len(r.tracks), Expected: r.expect, Packets: p, Lost: l, Layers: seen, ServerLayers: told,
		Events: r.events, FullMediaMillis: -1}
	if reached {
		s.FullMediaMillis = float64(full.Microseconds()) / 1000
	}
	if r.node < len(r.nodes) {
		s.Node = r.nodes[r.node]
	}
	if r.peer != nil {
		s.Reconnects = len(r.peer.Reconnections())
	}
	var bytes uint64
	for _, t := range r.tracks {
		bytes += t.bytes
		s.Freezes += t.freezes
		s.Padding += t.padding
		s.MediaPackets += t.packets - t.padding
	}
	s.ForwardedTracks, s.Switches, s.MaxSwitches = r.switchCounts()
	if seconds > 0 {
		s.BitrateKbps = float64(bytes) * 8 / 1000 / seconds
	}
	return s
}

// nodeRecv is what the peers received through one node.
type nodeRecv struct {
	packets, lost, bytes uint64
}

// addPerNode adds what each node delivered to this peer into out
// (indexed by node).
func (r *receiveLog) addPerNode(out []nodeRecv) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range r.tracks {
		if t.node < 0 || t.node >= len(out) {
			continue
		}
		out[t.node].packets += t.packets
		out[t.node].bytes += t.bytes
		if t.bound >= 0 {
			out[t.node].lost += t.lostUpTo(t.bound)
		}
	}
}

// resumed says, for each rejoin of recs, how many milliseconds after the
// loss the first packet arrived on a track of the new session; a rejoin
// after which nothing arrived is left out.
func (r *receiveLog) resumed(recs []client.Reconnection) []float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []float64
	for k, rc := range recs {
		var until time.Time
		if k+1 < len(recs) {
			until = recs[k+1].Lost
		}
		var first time.Time
		for _, t := range r.tracks {
			inSession := !t.opened.Before(rc.Rejoined) && (until.IsZero() || t.opened.Before(until))
			if t.started && inSession && (first.IsZero() || t.first.Before(first)) {
				first = t.first
			}
		}
		if !first.IsZero() {
			out = append(out, float64(first.Sub(rc.Lost).Microseconds())/1000)
		}
	}
	return out
}
