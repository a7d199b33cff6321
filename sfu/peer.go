package sfu

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confab-sfu/confab/sfu/probe"
	"github.com/pion/webrtc/v4"
)

// PeerParams configure a Peer. The callbacks must not block: they run on
// negotiation paths (the signal connection's non-blocking send is the
// intended target).
type PeerParams struct {
	ID PeerID
	// Logger carries what identifies the peer to the caller (room,
	// participant...); the Peer adds only what it knows itself (track,
	// layer...). Nil means the engine's logger with "participant" set to ID.
	Logger *slog.Logger
	// OnOffer sends a server offer; mids maps media sections to track ids.
	OnOffer func(sdp string, mids map[string]TrackID)
	// OnCandidate sends a local candidate; nil means end of candidates.
	OnCandidate func(c *webrtc.ICECandidateInit)
	// OnTrack announces a track the peer started publishing.
	OnTrack func(r *Receiver)
	// OnFailed reports that the connection failed for good.
	OnFailed func(err error)
	// OnDecision reports a changed forwarding decision of a track this
	// peer receives.
	OnDecision func(d Decision)
	// MaxTracks limits published tracks (0: no limit).
	MaxTracks int
	// CanPublish, when set, decides whether the peer may publish at all.
	CanPublish func() bool
}

// Peer is one participant's PeerConnection: it receives what the
// participant publishes and sends what it subscribes to, and owns the
// negotiation schedule (the server is the impolite peer).
type Peer struct {
	id     PeerID
	engine *Engine
	pc     *webrtc.PeerConnection
	log    *slog.Logger
	params PeerParams

	connected atomic.Bool
	closed    chan struct{}
	// iceStarted is closed once ICE has started (awaitICEStart).
	iceStarted   chan struct{}
	iceStartOnce sync.Once
	// connectTimer fails a peer whose media never connects (under mu).
	connectTimer *time.Timer
	closeOnce    sync.Once

	mu            sync.Mutex
	needNeg       bool
	offerInFlight bool
	negTimer      *time.Timer
	offerTimer    *time.Timer
	candMu        sync.Mutex // guards sdpSent and heldLocal; pion calls in with mu held
	sdpSent       bool       // the first local SDP is on the wire: candidates may follow
	heldLocal     []*webrtc.ICECandidateInit
	heldRemote    []webrtc.ICECandidateInit
	sources       map[string]Source // publisher's msid track id -> source
	receivers     map[*webrtc.RTPReceiver]*Receiver
	downs         map[*DownTrack]*webrtc.RTPSender
	published     int
	whole         bool // negotiated once with AnswerWhole: never offers
	alloc         *allocator
	send          *sendPath                   // transport-wide numbering and feedback (nil on relay links)
	keys          *keyCapture                 // the DTLS handshake's keys (nil: pion's writer only)
	direct        atomic.Pointer[directRoute] // where DownTracks send themselves (nil: through pion)
	routeMu       sync.Mutex                  // serializes route changes (direct.go)
	in            rtcpIn                      // the peer's feedback read on the spot (direct_rtcp.go)
	ssrcMu        sync.Mutex
	bySSRC        atomic.Pointer[map[uint32]*DownTrack] // DownTracks by the SSRC they send
	wg            sync.WaitGroup                        // goroutines the peer owns
}

// ID is the participant id.
func (p *Peer) ID() PeerID { return p.id }

// Connected reports whether media can flow.
func (p *Peer) Connected() bool { return p.connected.Load() }

// Done is closed once the peer is closed.
func (p *Peer) Done() <-chan struct{} { return p.closed }

// run does the peer's periodic work until it closes: bandwidth allocation
// (and the forwarding logs, kept off the packet path) every allocateEvery,
// probe padding every probe.Pace while a probe is on, sender reports every
// reportTicks allocations.
func (p *Peer) run() {
	defer p.wg.Done()
	t := time.NewTicker(allocateEvery)
	defer t.Stop()
	// The padding ticker runs only while a probe is on: a hundred idle
	// subscribers' 20 ms ticks were 5000 wake-ups a second for nothing.
	pace := time.NewTicker(probe.Pace)
	pace.Stop()
	pacing := false
	for tick := 1; ; tick++ {
		select {
		case <-p.closed:
			return
		case now := <-t.C:
			p.alloc.allocate(now)
			for _, d := range p.DownTracks() {
				d.logChanges()
			}
			if tick%reportTicks == 0 {
				p.sendReports(now)
			}
		case <-p.alloc.wake:
			p.alloc.reshare(time.Now())
		case <-pace.C:
			p.alloc.pad()
		}
		if probing := p.alloc.rate.Probing(); probing != pacing {
			pacing = probing
			if pacing {
				pace.Reset(probe.Pace)
			} else {
				pace.Stop()
			}
		}
	}
}

func (p *Peer) onConnectionState(s webrtc.PeerConnectionState) {
	p.log.Debug("connection state", "state", s.String())
	switch s {
	case webrtc.PeerConnectionStateConnected:
		p.updateDirectRoute()
		if p.connected.CompareAndSwap(false, true) {
			go p.stopConnectTimer()
			// Keyframes sent before DTLS finished never arrived: ask again.
			// On its own goroutine, as pion may call this with p.mu held.
			go func() {
				for _, d := range p.DownTracks() {
					d.updateTarget()
				}
			}()
		}
	case webrtc.PeerConnectionStateFailed:
		p.connected.Store(false)
		p.fail(errors.New("ice connection failed"))
	case webrtc.PeerConnectionStateDisconnected:
		p.connected.Store(false)
	}
}

// armConnectTimerLocked starts, once, the deadline for media to connect
// after the first completed offer/answer exchange. Before one there is no
// ICE to wait for (a receive-only member of an empty room).
func (p *Peer) armConnectTimerLocked() {
	if p.connectTimer != nil || p.connected.Load() {
		return
	}
	d := p.engine.cfg.ConnectTimeout
	p.connectTimer = time.AfterFunc(d, func() {
		if !p.connected.Load() && !p.isClosed() {
			p.log.Info("media did not connect in time", "timeout", d)
			p.fail(fmt.Errorf("media did not connect within %v", d))
		}
	})
}

func (p *Peer) stopConnectTimer() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.connectTimer != nil {
		p.connectTimer.Stop()
	}
}

// fail reports a peer that cannot go on.
func (p *Peer) fail(err error) {
	if p.params.OnFailed != nil {
		go p.params.OnFailed(err)
	}
}

// Subscribe starts forwarding the track with id to this peer; the track
// reaches the subscriber with the next negotiation. It returns
// ErrUnknownTrack when no such track is live (it may just have ended).
func (p *Peer) Subscribe(id TrackID) error {
	r := p.engine.track(id)
	if r == nil {
		return fmt.Errorf("subscribe to track %s: %w", id, ErrUnknownTrack)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.isClosed() {
		return ErrClosed
	}
	for d := range p.downs {
		if d.recv == r {
			return nil
		}
	}
	// AddTrack reuses the media section of a track that was removed, so a
	// long meeting's SDP does not grow with every join and leave.
	if _, err := p.addDownLocked(r); err != nil {
		return fmt.Errorf("subscribe to track %s: %w", id, err)
	}
	p.alloc.kick()
	p.needNeg = true
	p.scheduleLocked()
	return nil
}

// addDownLocked creates the DownTrack forwarding r, puts it on a sender of
// the PeerConnection and starts reading its feedback.
func (p *Peer) addDownLocked(r *Receiver) (*DownTrack, error) {
	d := newDownTrack(r, p)
	s, err := p.pc.AddTrack(d)
	if err != nil {
		return nil, fmt.Errorf("add track: %w", err)
	}
	d.sender = s
	p.downs[d] = s
	r.addDownTrack(d)
	go d.readRTCP(s)
	return d, nil
}

// Unsubscribe stops forwarding the track with id to this peer and
// renegotiates.
func (p *Peer) Unsubscribe(id TrackID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for d, s := range p.downs {
		if d.recv.id != id {
			continue
		}
		p.removeDownLocked(d, s)
		p.needNeg = true
	}
	p.scheduleLocked()
}

// removeDownLocked stops a DownTrack; RemoveTrack stops its sender, which
// ends its RTCP reader, and marks the media section inactive.
func (p *Peer) removeDownLocked(d *DownTrack, s *webrtc.RTPSender) {
	d.mu.Lock()
	ssrc := d.ssrc
	d.mu.Unlock()
	p.indexSSRC(ssrc, nil, d)
	d.close()
	d.recv.removeDownTrack(d)
	delete(p.downs, d)
	if err := p.pc.RemoveTrack(s); err != nil {
		_ = s.Stop()
		d.log.Debug("remove track", "err", err)
	}
}

// DownTracks returns the tracks forwarded to this peer.
func (p *Peer) DownTracks() []*DownTrack {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*DownTrack, 0, len(p.downs))
	for d := range p.downs {
		out = append(out, d)
	}
	return out
}

// DownTrack returns the DownTrack forwarding the track with id, if any.
func (p *Peer) DownTrack(trackID TrackID) *DownTrack {
	p.mu.Lock()
	defer p.mu.Unlock()
	for d := range p.downs {
		if d.recv.id == trackID {
			return d
		}
	}
	return nil
}

// Receivers returns the tracks this peer publishes.
func (p *Peer) Receivers() []*Receiver {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*Receiver, 0, len(p.receivers))
	for _, r := range p.receivers {
		out = append(out, r)
	}
	return out
}

func (p *Peer) isClosed() bool {
	select {
	case <-p.closed:
		return true
	default:
		return false
	}
}

// closeWait bounds how long Close waits for a track's goroutines.
const closeWait = 2 * time.Second

// Close tears the peer down: its subscriptions end, its published tracks
// end (subscribers are told through the Receivers' OnClose), the
// PeerConnection closes, and Close returns once its goroutines are gone.
func (p *Peer) Close() error {
	var err error
	p.closeOnce.Do(func() {
		downs, recvs := p.stop()
		if cerr := p.pc.Close(); cerr != nil {
			err = fmt.Errorf("close peer connection: %w", cerr)
		}
		for _, d := range downs {
			d.waitDone(closeWait)
		}
		for _, r := range recvs {
			select {
			case <-r.Done():
			case <-time.After(closeWait):
				p.log.Warn("track did not end in time", "track", r.id)
			}
		}
		p.wg.Wait()
		metricPeers.Dec()
	})
	return err
}

// stop marks the peer closed, stops its timers and subscriptions,
// and returns what Close must wait for.
func (p *Peer) stop() ([]*DownTrack, []*Receiver) {
	p.mu.Lock()
	defer p.mu.Unlock()
	close(p.closed)
	p.dropDirectRoute()
	for _, t := range []*time.Timer{p.negTimer, p.offerTimer, p.connectTimer} {
		if t != nil {
			t.Stop()
		}
	}
	downs := make([]*DownTrack, 0, len(p.downs))
	for d, s := range p.downs {
		p.removeDownLocked(d, s)
		downs = append(downs, d)
	}
	recvs := make([]*Receiver, 0, len(p.receivers))
	for _, r := range p.receivers {
		recvs = append(recvs, r)
	}
	return downs, recvs
}
