package sfu

import (
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confab-sfu/confab/sfu/pionlog"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Errors callers branch on.
var (
	ErrGlare          = errors.New("an offer of the server is outstanding")
	ErrNoOffer        = errors.New("no offer is outstanding")
	ErrClosed         = errors.New("peer closed")
	ErrInvalidSDP     = errors.New("invalid sdp")
	ErrCandidate      = errors.New("invalid candidate")
	ErrTooManyTracks  = errors.New("too many published tracks")
	ErrPublishDenied  = errors.New("publishing is not allowed")
	errOfferTimedOut  = errors.New("offer not answered in time")
	negotiationDelay  = 20 * time.Millisecond // batches track changes into one offer
	offerAnswerWindow = 10 * time.Second      // an unanswered offer is rolled back after this
)

// PeerParams configure a Peer. The callbacks must not block: they run on
// negotiation paths (the signal connection's non-blocking send is the
// intended target).
type PeerParams struct {
	ID     string
	Logger *slog.Logger
	// OnOffer sends a server offer; mids maps media sections to track ids.
	OnOffer func(sdp string, mids map[string]string)
	// OnCandidate sends a local candidate; nil means end of candidates.
	OnCandidate func(c *webrtc.ICECandidateInit)
	// OnTrack announces a track the peer started publishing.
	OnTrack func(r *Receiver)
	// OnFailed reports that the connection failed for good.
	OnFailed func(err error)
	// OnDecision reports a changed forwarding decision of a DownTrack.
	OnDecision func(d *DownTrack)
	// MaxTracks limits published tracks (0: no limit).
	MaxTracks int
	// CanPublish, when set, decides whether the peer may publish at all.
	CanPublish func() bool
}

// Peer is one participant's PeerConnection: it receives what the
// participant publishes and sends what it subscribes to, and owns the
// negotiation schedule (the server is the impolite peer).
type Peer struct {
	id     string
	engine *Engine
	pc     *webrtc.PeerConnection
	log    *slog.Logger
	params PeerParams

	connected atomic.Bool
	closed    chan struct{}
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
	sources       map[string]string // publisher's msid track id -> source
	receivers     map[*webrtc.RTPReceiver]*Receiver
	downs         map[*DownTrack]*webrtc.RTPSender
	published     int
	whole         bool // negotiated once with AnswerWhole: never offers
	alloc         *allocator
	wg            sync.WaitGroup // goroutines the peer owns
}

// Engine builds Peers that share one pion API (codecs, interceptors, ICE
// settings and the optional UDP mux).
type Engine struct {
	cfg     Config
	api     *webrtc.API
	closers []func() error

	// newPC serializes PeerConnection creation so the estimator that pion
	// builds inside NewPeerConnection can be handed to the right Peer.
	newPC     sync.Mutex
	estimator cc.BandwidthEstimator
}

// NewEngine prepares the media plane.
func NewEngine(cfg Config) (*Engine, error) {
	cfg.setDefaults()
	e := &Engine{cfg: cfg}
	var mux ice.UDPMux
	if cfg.UDPPort != 0 {
		opts := []ice.UDPMuxFromPortOption{ice.UDPMuxFromPortWithInterfaceFilter(cfg.AllowsInterface),
			ice.UDPMuxFromPortWithNetworks(ice.NetworkTypeUDP4),
			ice.UDPMuxFromPortWithLogger(pionlog.Factory(cfg.Logger).NewLogger("udp-mux"))}
		if cfg.IncludeLoopback {
			// Without it the mux skips loopback addresses, and a server
			// restricted to "lo" would have no candidate at all.
			opts = append(opts, ice.UDPMuxFromPortWithLoopback())
		}
		if !cfg.NoUDPBatch {
			n, err := newBatchNet()
			if err != nil {
				return nil, err
			}
			opts = append(opts, ice.UDPMuxFromPortWithNet(n))
		}
		m, err := ice.NewMultiUDPMuxFromPort(cfg.UDPPort, opts...)
		if err != nil {
			return nil, fmt.Errorf("listen on udp port %d: %w", cfg.UDPPort, err)
		}
		mux = m
		e.closers = append(e.closers, m.Close)
	}
	var tcpMux ice.TCPMux
	if cfg.TCPPort != 0 {
		host := ""
		if cfg.Loopback {
			host = "127.0.0.1"
		}
		ln, err := net.Listen("tcp4", net.JoinHostPort(host, strconv.Itoa(cfg.TCPPort)))
		if err != nil {
			e.Close()
			return nil, fmt.Errorf("listen on tcp port %d: %w", cfg.TCPPort, err)
		}
		tcpMux = webrtc.NewICETCPMux(pionlog.Factory(cfg.Logger).NewLogger("ice-tcp"), ln, 64)
		e.closers = append(e.closers, tcpMux.Close)
	}
	api, err := newAPI(&e.cfg, mux, tcpMux, func(est cc.BandwidthEstimator) { e.estimator = est })
	if err != nil {
		e.Close()
		return nil, err
	}
	e.api = api
	return e, nil
}

// Close releases the shared UDP and TCP ports.
func (e *Engine) Close() error {
	var errs []error
	for _, c := range e.closers {
		errs = append(errs, c())
	}
	e.closers = nil
	return errors.Join(errs...)
}

// Config returns the engine's effective configuration.
func (e *Engine) Config() Config { return e.cfg }

// NewID returns a random id with a one-letter prefix.
func NewID(prefix string) string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return prefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// NewPeer creates a participant's PeerConnection.
func (e *Engine) NewPeer(p PeerParams) (*Peer, error) {
	e.newPC.Lock()
	e.estimator = nil
	pc, err := e.api.NewPeerConnection(webrtc.Configuration{
		BundlePolicy:  webrtc.BundlePolicyMaxBundle,
		RTCPMuxPolicy: webrtc.RTCPMuxPolicyRequire,
	})
	est := e.estimator
	e.estimator = nil
	e.newPC.Unlock()
	if err != nil {
		return nil, fmt.Errorf("create peer connection: %w", err)
	}
	if p.Logger == nil {
		p.Logger = e.cfg.Logger
	}
	peer := &Peer{
		id: p.ID, engine: e, pc: pc, params: p,
		log:       p.Logger,
		closed:    make(chan struct{}),
		sources:   map[string]string{},
		receivers: map[*webrtc.RTPReceiver]*Receiver{},
		downs:     map[*DownTrack]*webrtc.RTPSender{},
	}
	peer.alloc = newAllocator(peer, est)
	peer.wg.Add(1)
	go func() {
		defer peer.wg.Done()
		peer.alloc.run()
	}()
	metricPeers.Inc()
	pc.OnICECandidate(peer.onLocalCandidate)
	pc.OnTrack(peer.onTrack)
	pc.OnConnectionStateChange(peer.onConnectionState)
	return peer, nil
}

// ID is the participant id.
func (p *Peer) ID() string { return p.id }

// Connected reports whether media can flow.
func (p *Peer) Connected() bool { return p.connected.Load() }

// Done is closed once the peer is closed.
func (p *Peer) Done() <-chan struct{} { return p.closed }

func (p *Peer) onConnectionState(s webrtc.PeerConnectionState) {
	p.log.Debug("connection state", "participant", p.id, "state", s.String())
	switch s {
	case webrtc.PeerConnectionStateConnected:
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

// onLocalCandidate holds candidates until the SDP they belong to is sent.
func (p *Peer) onLocalCandidate(c *webrtc.ICECandidate) {
	var init *webrtc.ICECandidateInit
	if c != nil {
		ci := c.ToJSON()
		init = &ci
	}
	// pion may call this from inside SetLocalDescription, while p.mu is
	// held: only candMu may be taken here.
	p.candMu.Lock()
	if !p.sdpSent {
		p.heldLocal = append(p.heldLocal, init)
		p.candMu.Unlock()
		return
	}
	p.candMu.Unlock()
	if p.params.OnCandidate != nil {
		p.params.OnCandidate(init)
	}
}

// sdpOnWireLocked releases candidates held for the first SDP. Called with
// p.mu held, right after the SDP was handed to the signaling connection,
// whose queue keeps the order.
func (p *Peer) sdpOnWireLocked() {
	p.candMu.Lock()
	defer p.candMu.Unlock()
	if p.sdpSent {
		return
	}
	p.sdpSent = true
	for _, c := range p.heldLocal {
		if p.params.OnCandidate != nil {
			p.params.OnCandidate(c)
		}
	}
	p.heldLocal = nil
}

// HandleOffer applies a client offer and hands the answer to reply. sources
// maps the client's track ids (msid) to their source. With a server offer
// outstanding it returns ErrGlare and changes nothing: the client is polite
// and will take the server's offer.
func (p *Peer) HandleOffer(offer string, sources map[string]string, reply func(answer string)) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.isClosed() {
		return ErrClosed
	}
	if p.offerInFlight || p.pc.SignalingState() != webrtc.SignalingStateStable {
		p.log.Debug("client offer ignored: server offer outstanding", "participant", p.id)
		return ErrGlare
	}
	p.log.Debug("client offer", "participant", p.id)
	parsed := &sdp.SessionDescription{}
	if err := parsed.UnmarshalString(offer); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidSDP, err)
	}
	if err := p.checkPublishLocked(parsed); err != nil {
		return err
	}
	for id, src := range sources {
		p.sources[id] = src
	}
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		p.rollbackRemoteLocked()
		return fmt.Errorf("%w: apply offer: %v", ErrInvalidSDP, err)
	}
	answer, err := p.pc.CreateAnswer(nil)
	if err != nil {
		p.rollbackRemoteLocked()
		return fmt.Errorf("%w: create answer: %v", ErrInvalidSDP, err)
	}
	if err := p.pc.SetLocalDescription(answer); err != nil {
		p.rollbackRemoteLocked()
		return fmt.Errorf("%w: set answer: %v", ErrInvalidSDP, err)
	}
	reply(p.pc.LocalDescription().SDP)
	p.sdpOnWireLocked()
	p.armConnectTimerLocked()
	p.applyHeldRemoteLocked()
	p.scheduleLocked()
	return nil
}

// rollbackRemoteLocked handles an offer that failed half-way. pion cannot
// roll back a remote offer, so a peer left outside the stable state can
// never negotiate again: it is reported failed.
func (p *Peer) rollbackRemoteLocked() {
	if p.pc.SignalingState() != webrtc.SignalingStateStable {
		p.log.Warn("offer failed half-way; closing the peer", "participant", p.id)
		p.fail(errors.New("negotiation failed half-way"))
	}
}

// checkPublishLocked enforces the publish permission and the track limit
// against the media sections the client wants to send.
func (p *Peer) checkPublishLocked(s *sdp.SessionDescription) error {
	sending := 0
	for _, m := range s.MediaDescriptions {
		if m.MediaName.Media != "audio" && m.MediaName.Media != "video" {
			continue
		}
		if m.MediaName.Port.Value == 0 {
			continue
		}
		for _, a := range m.Attributes {
			if a.Key == "sendonly" || a.Key == "sendrecv" {
				sending++
			}
		}
	}
	if sending > 0 && p.params.CanPublish != nil && !p.params.CanPublish() {
		return ErrPublishDenied
	}
	if p.params.MaxTracks > 0 && sending > p.params.MaxTracks {
		return fmt.Errorf("%w: %d sending sections, limit %d", ErrTooManyTracks, sending, p.params.MaxTracks)
	}
	return nil
}

// HandleAnswer applies the client's answer to the outstanding server offer.
func (p *Peer) HandleAnswer(answer string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.isClosed() {
		return ErrClosed
	}
	if !p.offerInFlight {
		return ErrNoOffer
	}
	parsed := &sdp.SessionDescription{}
	if err := parsed.UnmarshalString(answer); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidSDP, err)
	}
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		// The offer stays outstanding: the client may still send a good
		// answer before the offer times out and is retried.
		return fmt.Errorf("%w: apply answer: %v", ErrInvalidSDP, err)
	}
	p.offerInFlight = false
	p.armConnectTimerLocked()
	p.log.Debug("client answered", "participant", p.id)
	if p.offerTimer != nil {
		p.offerTimer.Stop()
		p.offerTimer = nil
	}
	p.applyHeldRemoteLocked()
	p.scheduleLocked()
	return nil
}

// AddCandidate applies a remote candidate, or holds it until a remote
// description exists. Candidates outside the allowed networks are dropped.
func (p *Peer) AddCandidate(c webrtc.ICECandidateInit) error {
	if c.Candidate == "" {
		return nil // end of candidates
	}
	cand, err := ice.UnmarshalCandidate(c.Candidate)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCandidate, err)
	}
	if !p.allowedCandidate(cand) {
		p.log.Debug("dropped remote candidate outside the allowed networks", "participant", p.id, "address", cand.Address())
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.isClosed() {
		return ErrClosed
	}
	if p.pc.RemoteDescription() == nil {
		if len(p.heldRemote) < 64 {
			p.heldRemote = append(p.heldRemote, c)
		}
		return nil
	}
	if err := p.pc.AddICECandidate(c); err != nil {
		return fmt.Errorf("%w: %v", ErrCandidate, err)
	}
	return nil
}

func (p *Peer) allowedCandidate(c ice.Candidate) bool {
	addr, err := netip.ParseAddr(c.Address())
	if err != nil {
		// A hostname: an mDNS name, usable only when mDNS is on.
		return p.engine.cfg.MDNS && strings.HasSuffix(c.Address(), ".local")
	}
	return p.engine.cfg.AllowsAddr(addr)
}

func (p *Peer) applyHeldRemoteLocked() {
	for _, c := range p.heldRemote {
		if err := p.pc.AddICECandidate(c); err != nil {
			p.log.Debug("held candidate", "participant", p.id, "err", err)
		}
	}
	p.heldRemote = nil
}

// Subscribe starts forwarding r to this peer; the track reaches the
// subscriber with the next negotiation.
func (p *Peer) Subscribe(r *Receiver) (*DownTrack, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.isClosed() {
		return nil, ErrClosed
	}
	for d := range p.downs {
		if d.recv == r {
			return d, nil
		}
	}
	d := newDownTrack(r, p)
	d.onDecision = p.params.OnDecision
	// AddTrack reuses the media section of a track that was removed, so a
	// long meeting's SDP does not grow with every join and leave.
	s, err := p.pc.AddTrack(d)
	if err != nil {
		return nil, fmt.Errorf("add track: %w", err)
	}
	d.sender = s
	p.downs[d] = s
	r.addDownTrack(d)
	go d.readRTCP(s)
	p.needNeg = true
	p.scheduleLocked()
	return d, nil
}

// Unsubscribe stops forwarding r to this peer and renegotiates.
func (p *Peer) Unsubscribe(r *Receiver) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for d, s := range p.downs {
		if d.recv != r {
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
	d.close()
	d.recv.removeDownTrack(d)
	delete(p.downs, d)
	if err := p.pc.RemoveTrack(s); err != nil {
		_ = s.Stop()
		p.log.Debug("remove track", "participant", p.id, "err", err)
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
func (p *Peer) DownTrack(trackID string) *DownTrack {
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

// Renegotiate asks for a new server offer (batched with other changes).
func (p *Peer) Renegotiate() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.scheduleLocked()
}

// scheduleLocked arranges a negotiation soon if one is needed. Called after
// every change and after every completed exchange.
func (p *Peer) scheduleLocked() {
	if p.isClosed() || p.whole {
		return
	}
	if !p.needNeg || p.offerInFlight || p.negTimer != nil {
		return
	}
	p.negTimer = time.AfterFunc(negotiationDelay, p.negotiate)
}

// currentMidsLocked maps the media sections that carry forwarded tracks to
// the tracks' ids.
func (p *Peer) currentMidsLocked() map[string]string {
	mids := map[string]string{}
	for _, t := range p.pc.GetTransceivers() {
		s := t.Sender()
		if s == nil || t.Mid() == "" {
			continue
		}
		if d, ok := s.Track().(*DownTrack); ok {
			mids[t.Mid()] = d.recv.id
		}
	}
	return mids
}

// negotiate sends a server offer when one is needed and none is outstanding.
func (p *Peer) negotiate() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.negTimer = nil
	if p.isClosed() || p.offerInFlight || !p.needNeg {
		return
	}
	if p.pc.SignalingState() != webrtc.SignalingStateStable {
		// A client offer is being handled; HandleOffer reschedules.
		return
	}
	p.needNeg = false
	offer, err := p.pc.CreateOffer(nil)
	if err != nil {
		p.log.Warn("create offer", "participant", p.id, "err", err)
		return
	}
	if err := p.pc.SetLocalDescription(offer); err != nil {
		p.log.Warn("set local offer", "participant", p.id, "err", err)
		return
	}
	p.offerInFlight = true
	local := p.pc.LocalDescription().SDP
	p.log.Debug("server offer", "participant", p.id, "tracks", len(p.downs))
	p.offerTimer = time.AfterFunc(offerAnswerWindow, p.offerTimedOut)
	if p.params.OnOffer != nil {
		p.params.OnOffer(local, p.currentMidsLocked())
	}
	p.sdpOnWireLocked()
}

// offerTimedOut gives up on a client that never answered an offer. pion
// cannot roll a local offer back, so no later change could be negotiated
// with it: the peer is reported failed and its participant removed.
func (p *Peer) offerTimedOut() {
	p.mu.Lock()
	p.offerTimer = nil
	stuck := !p.isClosed() && p.offerInFlight
	p.mu.Unlock()
	if stuck {
		p.log.Warn("offer not answered in time", "participant", p.id)
		p.fail(errOfferTimedOut)
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
			p.log.Info("media did not connect in time", "participant", p.id, "timeout", d)
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

// onTrack turns pion's per-layer remote tracks into Receivers.
func (p *Peer) onTrack(track *webrtc.TrackRemote, rtpRecv *webrtc.RTPReceiver) {
	p.mu.Lock()
	if p.isClosed() {
		p.mu.Unlock()
		return
	}
	r, ok := p.receivers[rtpRecv]
	if !ok {
		// Offers are checked, but an answer could still turn a section the
		// server sends on into sendrecv: media without the right is dropped.
		if p.params.CanPublish != nil && !p.params.CanPublish() {
			p.mu.Unlock()
			p.log.Warn("track from a peer without the publish permission ignored", "participant", p.id)
			return
		}
		if p.params.MaxTracks > 0 && p.published >= p.params.MaxTracks {
			p.mu.Unlock()
			p.log.Warn("track over the publish limit ignored", "participant", p.id)
			return
		}
		source := p.sources[track.ID()]
		if source == "" {
			source = "camera"
			if track.Kind() == webrtc.RTPCodecTypeAudio {
				source = "microphone"
			}
		}
		r = &Receiver{
			id:        NewID("T"),
			publisher: p.id,
			streamID:  p.id,
			msid:      track.ID(),
			source:    source,
			kind:      track.Kind(),
			codec:     track.Codec(),
			ck:        codecKindOf(track.Codec().MimeType),
			peer:      p,
			keyEvery:  p.engine.cfg.KeyframeInterval,
			done:      make(chan struct{}),
		}
		r.audioLevel.Store(-1)
		for _, t := range rtpRecv.Tracks() {
			if t.RID() != "" {
				r.rids = append(r.rids, t.RID())
			}
		}
		r.simulcast = len(r.rids) > 1
		r.wg.Add(1)
		go r.monitor()
		if track.Kind() == webrtc.RTPCodecTypeAudio {
			for _, e := range rtpRecv.GetParameters().HeaderExtensions {
				if e.URI == audioLevelURI {
					r.levelExtID = uint8(e.ID)
				}
			}
		}
		p.receivers[rtpRecv] = r
		p.published++
		metricPublishedTracks.Inc()
	}
	p.mu.Unlock()
	r.addLayer(track)
	if !ok {
		r.OnClose(func() {
			p.mu.Lock()
			delete(p.receivers, rtpRecv)
			p.mu.Unlock()
		})
		p.log.Info("track published", "participant", p.id, "track", r.id, "kind", r.kind.String(), "codec", r.codec.MimeType, "source", r.source, "rid", track.RID())
		if p.params.OnTrack != nil {
			p.params.OnTrack(r)
		}
	}
}

func (p *Peer) isClosed() bool {
	select {
	case <-p.closed:
		return true
	default:
		return false
	}
}

// Close tears the peer down: its subscriptions end, its published tracks
// end (subscribers are told through the Receivers' OnClose), the
// PeerConnection closes, and Close returns once its goroutines are gone.
func (p *Peer) Close() error {
	var err error
	p.closeOnce.Do(func() {
		p.mu.Lock()
		close(p.closed)
		if p.negTimer != nil {
			p.negTimer.Stop()
		}
		if p.offerTimer != nil {
			p.offerTimer.Stop()
		}
		if p.connectTimer != nil {
			p.connectTimer.Stop()
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
		p.mu.Unlock()
		err = p.pc.Close()
		for _, d := range downs {
			d.waitDone(2 * time.Second)
		}
		for _, r := range recvs {
			select {
			case <-r.Done():
			case <-time.After(2 * time.Second):
				p.log.Warn("track did not end in time", "participant", p.id, "track", r.id)
			}
		}
		p.wg.Wait()
		metricPeers.Dec()
	})
	return err
}
