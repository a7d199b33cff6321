package loadtest

import (
	"context"
	"errors"
	"fmt"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"io"
	"log/slog"
	"net/url"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confab-sfu/confab/signal"
)

// Config describes one load run. Every loop in a run is bounded by
// Duration (plus join and leave time) and stops by itself.
type Config struct {
	URL          string        // server base URL, e.g. http://127.0.0.1:8080
	Scenario     string        // "meeting", "lecture" or "churn"
	Participants int           // meeting: participants per room, all publish
	Viewers      int           // lecture: receive-only viewers per room
	Rooms        int           // rooms, each with the scenario's people
	Duration     time.Duration // how long media flows once everyone joined
	Ramp         float64       // joins per second (0: all at once)
	Video        bool          // publish video (audio is always published)
	Simulcast    bool          // publish video as three layers
	Layer        string        // subscriber policy: auto, low, medium or high
	Loopback     bool          // restrict ICE to loopback
	// ViewerProtocol is how lecture viewers connect: "ws" (the signaling
	// WebSocket, the default) or "whep".
	ViewerProtocol string
	// PresenterProtocol is how lecture presenters publish: "ws" (default)
	// or "whip".
	PresenterProtocol string
	Logger            *slog.Logger
	Progress          io.Writer // a live line while running; nil for none
}

// Report is what a run measured.
type Report struct {
	Scenario    string            `json:"scenario"`
	Peers       int               `json:"peers"`
	Joined      int               `json:"joined"`
	Failures    []string          `json:"failures,omitempty"`
	JoinMillis  Percentiles       `json:"joinMillis"` // WebSocket open to first RTP of every track known at join
	Duration    float64           `json:"durationSeconds"`
	Subscribers []SubscriberStats `json:"subscribers"`
	Packets     uint64            `json:"packets"`
	LossPercent float64           `json:"lossPercent"`
	Freezes     int               `json:"freezes"`
	Server      ServerStats       `json:"server"`
	// Layers counts received video tracks by the layer last seen on them
	// (judged from keyframe widths: <= 400 low, <= 800 medium, else high).
	Layers map[string]int `json:"layers"`
	// ServerLayers counts them by the layer the server last said it
	// forwards ("layers" messages; "paused" when it forwards none).
	ServerLayers map[string]int `json:"serverLayers"`
	// SentKbps is what the publishers sent, on average over the run.
	SentKbps float64 `json:"sentKbps"`
	// Timeline samples every second while media flows.
	Timeline []Sample `json:"timeline"`
	// JoinSamples are every peer's join time in milliseconds.
	JoinSamples []float64 `json:"joinSamplesMillis"`
	// Churn counts the leave/join cycles of the churn scenario.
	Churn int `json:"churnCycles,omitempty"`
}

// Sample is one second of a run.
type Sample struct {
	Seconds    float64 `json:"t"`
	RecvKbps   float64 `json:"receivedKbps"`
	SentKbps   float64 `json:"sentKbps"`
	ServerCPU  float64 `json:"serverCpuCores"` // server CPU-seconds per second
	ServerKbps float64 `json:"serverOutKbps"`  // from confab_bytes_out_total
	ServerRSS  float64 `json:"serverResidentMiB"`
	LossPct    float64 `json:"lossPercent"`
	Peers      int     `json:"peers"`
}

// Percentiles of a distribution.
type Percentiles struct {
	P50, P95, P99, Max float64
}

// SubscriberStats is what one peer received.
type SubscriberStats struct {
	Name         string   `json:"name"`
	Tracks       int      `json:"tracks"`
	Expected     int      `json:"expectedTracks"`
	Packets      uint64   `json:"packets"`
	Lost         uint64   `json:"lost"`
	BitrateKbps  float64  `json:"bitrateKbps"`    // media, without padding-only packets
	Padding      uint64   `json:"paddingPackets"` // padding-only packets (bandwidth probes), in Packets too
	Freezes      int      `json:"freezes"`
	Layers       []string `json:"layers,omitempty"`       // per video track, from keyframe widths
	ServerLayers []string `json:"serverLayers,omitempty"` // per video track, from "layers" messages
	Events       int      `json:"roomEvents"`             // signaling events received (not negotiation), WebSocket peers
}

// plan is one participant a run brings in.
type plan struct {
	room, name string
	publish    bool
	expect     int // tracks this peer should receive
}

// joinTimeout bounds joining and publishing, and the wait for the first
// packet of every track a newcomer should receive.
const joinTimeout = 20 * time.Second

// ErrNothingReceived is returned when peers joined but no media arrived.
var ErrNothingReceived = errors.New("no media received")

// Run executes a scenario and returns its report. It fails when a peer
// could not join or a subscriber received nothing.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Rooms <= 0 {
		cfg.Rooms = 1
	}
	if _, err := url.Parse(cfg.URL); err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	if cfg.ViewerProtocol == "" {
		cfg.ViewerProtocol = "ws"
	}
	if cfg.PresenterProtocol == "" {
		cfg.PresenterProtocol = "ws"
	}
	if cfg.ViewerProtocol != "ws" && cfg.ViewerProtocol != "whep" {
		return nil, fmt.Errorf("viewer protocol %q: want ws or whep", cfg.ViewerProtocol)
	}
	if cfg.PresenterProtocol != "ws" && cfg.PresenterProtocol != "whip" {
		return nil, fmt.Errorf("presenter protocol %q: want ws or whip", cfg.PresenterProtocol)
	}
	if (cfg.ViewerProtocol == "whep" || cfg.PresenterProtocol == "whip") && cfg.Scenario != "lecture" {
		return nil, errors.New("WHIP presenters and WHEP viewers are for the lecture scenario")
	}
	var plans []plan
	tracksPer := 1
	if cfg.Video {
		tracksPer = 2
	}
	for r := 0; r < cfg.Rooms; r++ {
		room := fmt.Sprintf("load-%s-%d", cfg.Scenario, r)
		switch cfg.Scenario {
		case "meeting", "churn":
			if cfg.Participants < 2 {
				return nil, errors.New("meeting needs at least 2 participants")
			}
			for i := 0; i < cfg.Participants; i++ {
				plans = append(plans, plan{room, fmt.Sprintf("p%d-%d", r, i), true, tracksPer * (cfg.Participants - 1)})
			}
		case "lecture":
			if cfg.Viewers < 1 {
				return nil, errors.New("lecture needs at least 1 viewer")
			}
			plans = append(plans, plan{room, fmt.Sprintf("presenter-%d", r), true, 0})
			for i := 0; i < cfg.Viewers; i++ {
				plans = append(plans, plan{room, fmt.Sprintf("v%d-%d", r, i), false, tracksPer})
			}
		default:
			return nil, fmt.Errorf("unknown scenario %q (meeting, lecture, churn)", cfg.Scenario)
		}
	}
	api, err := NewAPI(APIOptions{Loopback: cfg.Loopback, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	before := scrapeServer(ctx, cfg.URL)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()

	rep := &Report{Scenario: cfg.Scenario, Peers: len(plans), Layers: map[string]int{}, ServerLayers: map[string]int{}}
	var sent sendMeter
	var mu sync.Mutex
	live := map[*Peer]*receiveLog{}
	var sessions []*HTTPSession // WHIP presenters and WHEP viewers
	var all []*receiveLog
	var joinTimes []float64
	progress := newProgress(cfg.Progress, len(plans))

	fail := func(name string, err error) {
		mu.Lock()
		rep.Failures = append(rep.Failures, fmt.Sprintf("%s: %v", name, err))
		mu.Unlock()
	}

	// join brings one planned participant in and records it.
	join := func(pl plan) error {
		rec := newReceiveLog(pl.name, pl.expect)
		start := time.Now()
		var video atomic.Pointer[VideoSource]
		setup, cancelSetup := context.WithTimeout(runCtx, joinTimeout)
		defer cancelSetup()
		if (pl.publish && cfg.PresenterProtocol == "whip") || (!pl.publish && cfg.ViewerProtocol == "whep") {
			s, err := joinHTTP(setup, runCtx, api, pl, cfg, rec, &video, &sent)
			if err != nil {
				return err
			}
			progress.join()
			ready, missing := rec.waitFirstMedia(runCtx, joinTimeout)
			if missing > 0 && runCtx.Err() == nil {
				fail(pl.name, fmt.Errorf("no media on %d tracks %v after joining", missing, joinTimeout))
			}
			mu.Lock()
			sessions = append(sessions, s)
			all = append(all, rec)
			if missing == 0 && !pl.publish {
				joinTimes = append(joinTimes, float64(ready.Sub(start).Microseconds())/1000)
			}
			mu.Unlock()
			return nil
		}
		// A lecture's viewers join as its audience: counted, not announced.
		lecture, role := cfg.Scenario == "lecture", ""
		if lecture && !pl.publish {
			role = "viewer"
		}
		p, err := Join(setup, PeerOptions{URL: cfg.URL, Room: pl.room, Name: pl.name, API: api, Logger: cfg.Logger,
			Lecture: lecture, Role: role,
			OnTrack: func(rt *RemoteTrack) { rec.track(rt, cfg.Layer) },
			OnKeyframeRequest: func(string) {
				if v := video.Load(); v != nil {
					v.RequestKeyframe()
				}
			}})
		if err != nil {
			return err
		}
		rec.setPeer(p)
		go rec.follow(p)
		if pl.publish {
			if err := publishMedia(setup, runCtx, p, pl.name, cfg, &video, &sent); err != nil {
				_ = p.Leave()
				return fmt.Errorf("publish: %w", err)
			}
		}
		progress.join()
		ready, missing := rec.waitFirstMedia(runCtx, joinTimeout)
		if missing > 0 && runCtx.Err() == nil {
			// It stays in the run (and its figures count), but the join failed.
			fail(pl.name, fmt.Errorf("no media on %d tracks %v after joining", missing, joinTimeout))
		}
		mu.Lock()
		live[p] = rec
		all = append(all, rec)
		if missing == 0 {
			joinTimes = append(joinTimes, float64(ready.Sub(start).Microseconds())/1000)
		}
		mu.Unlock()
		return nil
	}

	interval := time.Duration(0)
	if cfg.Ramp > 0 {
		interval = time.Duration(float64(time.Second) / cfg.Ramp)
	}
	var wg sync.WaitGroup
	for i, pl := range plans {
		if i > 0 && interval > 0 {
			select {
			case <-time.After(interval):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		wg.Add(1)
		go func(pl plan) {
			defer wg.Done()
			if err := join(pl); err != nil {
				fail(pl.name, err)
			}
		}(pl)
	}
	wg.Wait()
	mu.Lock()
	rep.Joined = len(live) + len(sessions)
	mu.Unlock()
	if rep.Joined == 0 {
		return rep, fmt.Errorf("no peer joined, %d failed", len(rep.Failures))
	}

	// Media flows for the duration: one sample a second, and in the churn
	// scenario one participant leaves and a new one joins every second.
	flowStart := time.Now()
	tick := time.NewTicker(time.Second)
	end := time.After(cfg.Duration)
	// The first sample starts from here, not from before the joins.
	prevServer := scrapeServer(ctx, cfg.URL)
	var prevBytes uint64
	prevSent := sent.total()
	firstSent := prevSent
	mu.Lock()
	for _, r := range all {
		b, _, _ := r.counters()
		prevBytes += b
	}
	mu.Unlock()
	prevAt := flowStart
	churnN := 0
	var churning sync.WaitGroup // replacement joins still under way
flow:
	for {
		select {
		case <-ctx.Done():
			break flow
		case <-end:
			break flow
		case now := <-tick.C:
			mu.Lock()
			for _, r := range all {
				r.settle()
			}
			var bytes, pk, lost uint64
			for _, r := range all {
				b, p, l := r.counters()
				bytes, pk, lost = bytes+b, pk+p, lost+l
			}
			n := len(live) + len(sessions)
			mu.Unlock()
			srv := scrapeServer(ctx, cfg.URL)
			sentNow := sent.total()
			dt := now.Sub(prevAt).Seconds()
			sm := Sample{Seconds: now.Sub(flowStart).Seconds(), RecvKbps: float64(bytes-prevBytes) * 8 / 1000 / dt,
				SentKbps: float64(sentNow-prevSent) * 8 / 1000 / dt, Peers: n}
			if srv.Available && prevServer.Available {
				sm.ServerCPU = (srv.CPUSeconds - prevServer.CPUSeconds) / dt
				sm.ServerKbps = (srv.BytesOut - prevServer.BytesOut) * 8 / 1000 / dt
				sm.ServerRSS = srv.RSSBytes / (1 << 20)
			}
			if pk+lost > 0 {
				sm.LossPct = 100 * float64(lost) / float64(pk+lost)
			}
			rep.Timeline = append(rep.Timeline, sm)
			progress.line(sm)
			prevBytes, prevAt, prevServer, prevSent = bytes, now, srv, sentNow
			if cfg.Scenario == "churn" {
				churnN++
				churn(runCtx, &churning, &mu, live, plans, churnN, join, fail)
			}
		}
	}
	tick.Stop()
	progress.done()
	// Give the last losses a second to be repaired before judging them.
	mu.Lock()
	for _, r := range all {
		r.settle()
	}
	mu.Unlock()
	select {
	case <-time.After(time.Second):
	case <-ctx.Done():
	}
	mu.Lock()
	for _, r := range all {
		r.settle()
	}
	mu.Unlock()
	rep.Churn = churnN
	rep.Duration = time.Since(flowStart).Seconds()
	rep.SentKbps = float64(sent.total()-firstSent) * 8 / 1000 / rep.Duration
	after := scrapeServer(ctx, cfg.URL)
	rep.Server = after.since(before)
	if rep.Joined > 0 {
		rep.Server.RSSPerPeer = rep.Server.RSSGrowth / float64(rep.Joined)
	}
	cancel()
	// A replacement that joined after the cancel is in live too: wait for
	// them all, so every peer is left below.
	churning.Wait()
	mu.Lock()
	peers := make([]*Peer, 0, len(live))
	for p := range live {
		peers = append(peers, p)
	}
	mu.Unlock()
	for _, p := range peers {
		_ = p.Leave()
	}
	mu.Lock()
	ended := append([]*HTTPSession(nil), sessions...)
	mu.Unlock()
	for _, s := range ended {
		_ = s.Close()
	}
	rep.JoinMillis = percentiles(joinTimes)
	rep.JoinSamples = joinTimes
	var lostTotal uint64
	for _, r := range all {
		st := r.stats(rep.Duration)
		rep.Subscribers = append(rep.Subscribers, st)
		rep.Packets += st.Packets
		lostTotal += st.Lost
		rep.Freezes += st.Freezes
		for _, l := range st.Layers {
			rep.Layers[l]++
		}
		for _, l := range st.ServerLayers {
			rep.ServerLayers[l]++
		}
	}
	sort.Slice(rep.Subscribers, func(i, j int) bool { return rep.Subscribers[i].Name < rep.Subscribers[j].Name })
	if rep.Packets+lostTotal > 0 {
		rep.LossPercent = 100 * float64(lostTotal) / float64(rep.Packets+lostTotal)
	}
	if len(rep.Failures) > 0 {
		return rep, fmt.Errorf("%d peers failed", len(rep.Failures))
	}
	for _, st := range rep.Subscribers {
		if st.Expected > 0 && (st.Packets == 0 || st.Tracks < st.Expected) && cfg.Scenario != "churn" {
			return rep, fmt.Errorf("%w: %s got %d of %d tracks, %d packets", ErrNothingReceived, st.Name, st.Tracks, st.Expected, st.Packets)
		}
	}
	if rep.Packets == 0 {
		return rep, ErrNothingReceived
	}
	return rep, nil
}

// churn makes the oldest live participant leave and a new one take its
// place, so rooms see joins and leaves all the time.
func churn(ctx context.Context, wg *sync.WaitGroup, mu *sync.Mutex, live map[*Peer]*receiveLog, plans []plan, n int,
	join func(plan) error, fail func(string, error)) {
	mu.Lock()
	var victim *Peer
	var rec *receiveLog
	for p, r := range live {
		if rec == nil || r.name < rec.name {
			victim, rec = p, r
		}
	}
	if victim != nil {
		delete(live, victim)
	}
	mu.Unlock()
	if victim == nil {
		return
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = victim.Leave()
		if ctx.Err() != nil {
			return
		}
		pl := plans[n%len(plans)]
		pl.name = fmt.Sprintf("%s-c%d", pl.name, n)
		pl.expect = 0 // membership changes under it: no fixed expectation
		if err := join(pl); err != nil && ctx.Err() == nil {
			fail(pl.name, err)
		}
	}()
}

// joinHTTP brings in a WHIP presenter or a WHEP viewer. A viewer that
// comes before anything is published is refused with 404 and retries, as
// a player page does.
func joinHTTP(setup, ctx context.Context, api *webrtc.API, pl plan, cfg Config, rec *receiveLog,
	video *atomic.Pointer[VideoSource], sent *sendMeter) (*HTTPSession, error) {
	if !pl.publish {
		for {
			s, err := Watch(setup, api, cfg.URL, pl.room, "", func(rt *RemoteTrack) { rec.track(rt, "") })
			var herr *HTTPStatusError
			if !errors.As(err, &herr) || herr.Status != 404 {
				return s, err
			}
			select {
			case <-time.After(250 * time.Millisecond):
			case <-setup.Done():
				return nil, fmt.Errorf("nothing published in %s: %w", pl.room, err)
			}
		}
	}
	audio, err := NewAudioSource(pl.name+"-mic", pl.name)
	if err != nil {
		return nil, err
	}
	groups := [][]webrtc.TrackLocal{{audio.Track()}}
	var v *VideoSource
	if cfg.Video {
		if v, err = NewVideoSource(pl.name+"-cam", pl.name, cfg.Simulcast, 2); err != nil {
			return nil, err
		}
		groups = append(groups, v.Tracks())
	}
	s, senders, err := PublishWHIP(setup, api, cfg.URL, pl.room, "", groups...)
	if err != nil {
		return nil, err
	}
	sent.add(audio)
	go audio.Run(ctx)
	if v != nil {
		if cfg.Simulcast {
			st, err := newStamper(s.PeerConnection(), senders[1])
			if err != nil {
				_ = s.Close()
				return nil, err
			}
			v.SetStamper(st)
		}
		video.Store(v)
		sent.add(v)
		go v.Run(ctx)
		// Keyframe requests arrive as RTCP on each layer of the video sender.
		for _, t := range v.Tracks() {
			rid := t.RID()
			go func() {
				for {
					var pkts []rtcp.Packet
					var err error
					if cfg.Simulcast {
						pkts, _, err = senders[1].ReadSimulcastRTCP(rid)
					} else {
						pkts, _, err = senders[1].ReadRTCP()
					}
					if err != nil {
						return
					}
					for _, p := range pkts {
						switch p.(type) {
						case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
							v.RequestKeyframe()
						}
					}
				}
			}()
		}
	}
	return s, nil
}

// publishMedia publishes audio and, if configured, video from the clips.
// Negotiation is bounded by setup; the sources run until ctx ends.
func publishMedia(setup, ctx context.Context, p *Peer, name string, cfg Config, video *atomic.Pointer[VideoSource], sent *sendMeter) error {
	audio, err := NewAudioSource(name+"-mic", name)
	if err != nil {
		return err
	}
	sent.add(audio)
	if _, err := p.Publish(setup, signal.SourceMicrophone, audio.Track()); err != nil {
		return err
	}
	go audio.Run(ctx)
	if !cfg.Video {
		return nil
	}
	v, err := NewVideoSource(name+"-cam", name, cfg.Simulcast, 2)
	if err != nil {
		return err
	}
	video.Store(v)
	sent.add(v)
	s, err := p.Publish(setup, signal.SourceCamera, v.Tracks()...)
	if err != nil {
		return err
	}
	if cfg.Simulcast {
		st, err := p.NewStamper(s)
		if err != nil {
			return err
		}
		v.SetStamper(st)
	}
	go v.Run(ctx)
	return nil
}

// sendMeter adds up what every media source of a run sent.
type sendMeter struct {
	mu  sync.Mutex
	src []interface{ BytesSent() uint64 }
}

func (m *sendMeter) add(s interface{ BytesSent() uint64 }) {
	m.mu.Lock()
	m.src = append(m.src, s)
	m.mu.Unlock()
}

func (m *sendMeter) total() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n uint64
	for _, s := range m.src {
		n += s.BytesSent()
	}
	return n
}

func percentiles(xs []float64) Percentiles {
	if len(xs) == 0 {
		return Percentiles{}
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	at := func(q float64) float64 { return s[min(len(s)-1, int(q*float64(len(s))))] }
	return Percentiles{P50: at(0.5), P95: at(0.95), P99: at(0.99), Max: s[len(s)-1]}
}
