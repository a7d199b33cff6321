// Package loadtest runs synthetic Confab participants: real pion
// PeerConnections that speak Confab's signaling, publish real media and
// measure what they receive. cmd/confab-load and the project's tests use it.
package loadtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/confab-sfu/confab/sfu/pionlog"
	"github.com/confab-sfu/confab/signal"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/transport/v5"
	"github.com/pion/webrtc/v4"
)

// APIOptions configure the pion API of synthetic peers.
type APIOptions struct {
	// Loopback restricts ICE to "lo" with loopback candidates, no mDNS,
	// UDP4, and remote candidates limited to 127.0.0.0/8.
	Loopback bool
	// Net replaces the network stack (tests impair a link with it).
	Net transport.Net
	// Logger receives pion's own logs; nil leaves pion's default (stderr).
	Logger *slog.Logger
	// TCPOnly makes ICE use TCP only (active candidates), as a client on a
	// network that blocks UDP; the server must accept ICE over TCP.
	TCPOnly bool
}

// NewAPI returns a pion API with the codecs and feedback a browser offers:
// Opus, VP8, H.264, VP9; NACK, PLI, REMB, TWCC feedback; simulcast header
// extensions.
func NewAPI(o APIOptions) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		return nil, fmt.Errorf("register codecs: %w", err)
	}
	// Browsers send their microphone level; SFUs pick the active speaker from it.
	if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: AudioLevelURI}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, fmt.Errorf("register audio level: %w", err)
	}
	ir := &interceptor.Registry{}
	var icOpts []webrtc.InterceptorOption
	if o.Logger != nil {
		// The interceptors log through their own factory: hundreds of peers
		// closing would otherwise print pion's closed-pipe errors.
		icOpts = append(icOpts, webrtc.WithInterceptorLoggerFactory(pionlog.Factory(o.Logger)))
	}
	if err := webrtc.RegisterDefaultInterceptorsWithOptions(m, ir, icOpts...); err != nil {
		return nil, fmt.Errorf("register interceptors: %w", err)
	}
	se := webrtc.SettingEngine{}
	if o.Loopback {
		se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
		se.SetIncludeLoopbackCandidate(true)
		se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
		se.SetRemoteIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	}
	if o.TCPOnly {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4})
	}
	if o.Net != nil {
		se.SetNet(o.Net)
	}
	if o.Logger != nil {
		se.LoggerFactory = pionlog.Factory(o.Logger)
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)), nil
}

// PeerOptions configure a synthetic participant.
type PeerOptions struct {
	URL               string // server base URL (http://host:port) or ws URL
	Room, Name, Token string
	API               *webrtc.API // nil: NewAPI(APIOptions{})
	Logger            *slog.Logger
	// OnTrack is called for each track the server forwards.
	OnTrack func(*RemoteTrack)
	// OnKeyframeRequest is called when the server asks for a keyframe of
	// one of the peer's published tracks (by the local track id).
	OnKeyframeRequest func(trackID string)
	// RelayOnly makes the peer use only TURN relay candidates (from the
	// ICE servers in welcome), as a client behind a strict firewall would.
	RelayOnly bool
	// Lecture asks for a lecture room (when this join creates it); Role
	// asks for fewer permissions ("viewer": a lecture's audience).
	Lecture bool
	Role    string
}

// RemoteTrack is a track forwarded to the peer.
type RemoteTrack struct {
	Info     signal.Track
	Track    *webrtc.TrackRemote
	Receiver *webrtc.RTPReceiver
}

// Peer is one synthetic participant: a signaling client and one
// PeerConnection, negotiated as the polite peer.
type Peer struct {
	opts    PeerOptions
	log     *slog.Logger
	client  *signal.Client
	pc      *webrtc.PeerConnection
	welcome *signal.Message

	mu           sync.Mutex
	tracks       map[string]signal.Track // published by others, by id
	mids         map[string]string       // media section -> track id
	sources      map[string]string       // own track id -> source
	queue        []func()                // work for the signaling goroutine
	wake         chan struct{}
	needOffer    bool
	offerGen     int // completed own offer/answer exchanges
	genChanged   chan struct{}
	sdpSent      bool
	heldLocal    []*webrtc.ICECandidateInit
	heldRemote   []webrtc.ICECandidateInit
	events       []*signal.Message
	eventWake    chan struct{}
	lastOfferErr error
	ownMids      int // mids given to own sections (c0, c1, ...)

	eventsOut chan *signal.Message
	leaving   chan struct{}
	leaveOnce sync.Once
	done      chan struct{}
	wg        sync.WaitGroup
}

// Join dials the server, joins the room and starts the signaling loop.
func Join(ctx context.Context, o PeerOptions) (*Peer, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.API == nil {
		api, err := NewAPI(APIOptions{})
		if err != nil {
			return nil, err
		}
		o.API = api
	}
	client, err := signal.Dial(ctx, o.URL, signal.WithLogger(o.Logger))
	if err != nil {
		return nil, err
	}
	welcome, err := client.Request(ctx, &signal.Message{Type: signal.TypeJoin, Room: o.Room, Name: strings.TrimSpace(o.Name),
		Version: signal.Version, Token: o.Token, Lecture: o.Lecture, Role: o.Role})
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("join %s: %w", o.Room, err)
	}
	pcCfg := webrtc.Configuration{BundlePolicy: webrtc.BundlePolicyMaxBundle, ICEServers: iceServers(welcome.ICEServers)}
	if o.RelayOnly {
		pcCfg.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	}
	pc, err := o.API.NewPeerConnection(pcCfg)
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("create peer connection: %w", err)
	}
	p := &Peer{
		opts: o, log: o.Logger.With("participant", welcome.Participant.ID), client: client, pc: pc, welcome: welcome,
		tracks: map[string]signal.Track{}, mids: map[string]string{}, sources: map[string]string{},
		wake: make(chan struct{}, 1), genChanged: make(chan struct{}), eventWake: make(chan struct{}, 1),
		eventsOut: make(chan *signal.Message), leaving: make(chan struct{}), done: make(chan struct{}),
	}
	for _, t := range welcome.Tracks {
		p.tracks[t.ID] = t
	}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		var init *webrtc.ICECandidateInit
		if c != nil {
			ci := c.ToJSON()
			init = &ci
		}
		p.enqueue(func() { p.localCandidate(init) })
	})
	pc.OnTrack(p.onTrack)
	p.wg.Add(2)
	go p.loop()
	go p.deliverEvents()
	go func() {
		p.wg.Wait()
		close(p.done)
	}()
	return p, nil
}

func iceServers(in []signal.ICEServer) []webrtc.ICEServer {
	out := make([]webrtc.ICEServer, 0, len(in))
	for _, s := range in {
		out = append(out, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	return out
}

// ID is the participant id the server assigned.
func (p *Peer) ID() string { return p.welcome.Participant.ID }

// Welcome is the server's answer to join.
func (p *Peer) Welcome() *signal.Message { return p.welcome }

// PeerConnection is the peer's PeerConnection.
func (p *Peer) PeerConnection() *webrtc.PeerConnection { return p.pc }

// Client is the peer's signaling client (for requests such as subscribe).
func (p *Peer) Client() *signal.Client { return p.client }

// Done is closed once the peer has left and its goroutines have ended.
func (p *Peer) Done() <-chan struct{} { return p.done }

// Events delivers room events in order: participant_joined / left,
// track_published / unpublished / updated, chat, active_speaker, layers,
// bye and errors without a request id. It is closed when the peer is done.
func (p *Peer) Events() <-chan *signal.Message { return p.eventsOut }

// Tracks returns the tracks others publish, as far as the peer knows.
func (p *Peer) Tracks() []signal.Track {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]signal.Track, 0, len(p.tracks))
	for _, t := range p.tracks {
		out = append(out, t)
	}
	return out
}

// enqueue schedules work on the signaling goroutine without blocking.
func (p *Peer) enqueue(f func()) {
	p.mu.Lock()
	p.queue = append(p.queue, f)
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// loop is the only goroutine that touches negotiation state, so server
// messages, own offers and candidates are handled strictly in order.
func (p *Peer) loop() {
	defer p.wg.Done()
	msgs := p.client.Messages()
	for {
		p.mu.Lock()
		work := p.queue
		p.queue = nil
		p.mu.Unlock()
		for _, f := range work {
			f()
		}
		select {
		case <-p.leaving:
			return
		case <-p.wake:
		case m, ok := <-msgs:
			if !ok {
				return
			}
			p.handle(m)
		}
	}
}

func (p *Peer) handle(m *signal.Message) {
	switch m.Type {
	case signal.TypeOffer:
		p.handleOffer(m)
		return
	case signal.TypeCandidate:
		if m.Candidate == nil {
			return
		}
		c := webrtc.ICECandidateInit{Candidate: m.Candidate.Candidate, SDPMid: m.Candidate.SDPMid,
			SDPMLineIndex: m.Candidate.SDPMLineIndex, UsernameFragment: m.Candidate.UsernameFragment}
		if p.pc.RemoteDescription() == nil {
			p.heldRemote = append(p.heldRemote, c)
			return
		}
		if err := p.pc.AddICECandidate(c); err != nil {
			p.log.Debug("add candidate", "err", err)
		}
		return
	case signal.TypeEndOfCandidates:
		return
	case signal.TypeTrackPublished, signal.TypeTrackUpdated:
		p.mu.Lock()
		p.tracks[m.Track.ID] = *m.Track
		p.mu.Unlock()
	case signal.TypeTrackUnpublished:
		p.mu.Lock()
		delete(p.tracks, m.Track.ID)
		p.mu.Unlock()
	}
	p.pushEvent(m)
}

// handleOffer applies a server offer. An own offer refused for glare was
// never applied locally (see offer), so there is nothing to roll back: the
// client is the polite peer and offers again afterwards.
func (p *Peer) handleOffer(m *signal.Message) {
	p.mu.Lock()
	for mid, id := range m.Mids {
		p.mids[mid] = id
	}
	p.mu.Unlock()
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: m.SDP}); err != nil {
		p.log.Warn("apply server offer", "err", err)
		return
	}
	answer, err := p.pc.CreateAnswer(nil)
	if err != nil {
		p.log.Warn("create answer", "err", err)
		return
	}
	if err := p.pc.SetLocalDescription(answer); err != nil {
		p.log.Warn("set answer", "err", err)
		return
	}
	if err := p.client.Send(&signal.Message{Type: signal.TypeAnswer, SDP: p.pc.LocalDescription().SDP}); err != nil {
		return
	}
	p.sdpOnWire()
	p.applyHeldRemote()
	if p.needOffer {
		p.offer()
	}
}

func (p *Peer) applyHeldRemote() {
	for _, c := range p.heldRemote {
		if err := p.pc.AddICECandidate(c); err != nil {
			p.log.Debug("add held candidate", "err", err)
		}
	}
	p.heldRemote = nil
}

func (p *Peer) localCandidate(c *webrtc.ICECandidateInit) {
	if !p.sdpSent {
		p.heldLocal = append(p.heldLocal, c)
		return
	}
	p.sendCandidate(c)
}

func (p *Peer) sendCandidate(c *webrtc.ICECandidateInit) {
	if c == nil {
		_ = p.client.Send(&signal.Message{Type: signal.TypeEndOfCandidates})
		return
	}
	_ = p.client.Send(&signal.Message{Type: signal.TypeCandidate, Candidate: &signal.Candidate{
		Candidate: c.Candidate, SDPMid: c.SDPMid, SDPMLineIndex: c.SDPMLineIndex, UsernameFragment: c.UsernameFragment}})
}

// sdpOnWire releases candidates held until the first SDP was sent.
func (p *Peer) sdpOnWire() {
	if p.sdpSent {
		return
	}
	p.sdpSent = true
	for _, c := range p.heldLocal {
		p.sendCandidate(c)
	}
	p.heldLocal = nil
}

// offer sends an own offer when stable and applies the answer. pion cannot
// roll back a local offer, so the offer is set as the local description
// only once the server has accepted it: a glare error then leaves nothing
// to undo, and needOffer makes the offer again after the server's offer.
func (p *Peer) offer() {
	if p.pc.SignalingState() != webrtc.SignalingStateStable {
		p.needOffer = true
		return
	}
	p.needOffer = false
	// pion gives a new transceiver its mid in CreateOffer, from the same
	// counter as the server's: an offer the server refuses or loses in
	// glare would leave a mid that a later server offer reuses for another
	// section. Own sections get their own namespace.
	for _, t := range p.pc.GetTransceivers() {
		if t.Mid() == "" && t.Sender() != nil && t.Sender().Track() != nil {
			_ = t.SetMid(fmt.Sprintf("c%d", p.ownMids))
			p.ownMids++
		}
	}
	offer, err := p.pc.CreateOffer(nil)
	if err != nil {
		p.log.Warn("create offer", "err", err)
		p.finishOffer(err)
		return
	}
	p.mu.Lock()
	var tracks []signal.Track
	for id, src := range p.sources {
		tracks = append(tracks, signal.Track{ID: id, Source: src})
	}
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	resp, err := p.client.Request(ctx, &signal.Message{Type: signal.TypeOffer, SDP: offer.SDP, Tracks: tracks})
	var serr *signal.Error
	if errors.As(err, &serr) && serr.Code == signal.CodeGlare {
		p.needOffer = true
		return
	}
	if err != nil {
		p.log.Warn("offer refused", "err", err)
		p.finishOffer(err)
		return
	}
	if err := p.pc.SetLocalDescription(offer); err != nil {
		p.log.Warn("set offer", "err", err)
		p.finishOffer(err)
		return
	}
	p.sdpOnWire()
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: resp.SDP}); err != nil {
		p.log.Warn("apply answer", "err", err)
		p.finishOffer(err)
		return
	}
	p.applyHeldRemote()
	p.finishOffer(nil)
}

func (p *Peer) finishOffer(err error) {
	p.mu.Lock()
	p.offerGen++
	p.lastOfferErr = err
	close(p.genChanged)
	p.genChanged = make(chan struct{})
	p.mu.Unlock()
}

// Publish sends tracks as one transceiver (several tracks with RIDs, lowest
// first, make a simulcast track) and returns once an offer that includes it
// has been answered.
func (p *Peer) Publish(ctx context.Context, source string, tracks ...webrtc.TrackLocal) (*webrtc.RTPSender, error) {
	if len(tracks) == 0 {
		return nil, errors.New("publish: no track")
	}
	type result struct {
		sender *webrtc.RTPSender
		gen    int
		err    error
	}
	res := make(chan result, 1)
	p.enqueue(func() {
		t, err := p.pc.AddTransceiverFromTrack(tracks[0], webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			res <- result{err: fmt.Errorf("add transceiver: %w", err)}
			return
		}
		for _, extra := range tracks[1:] {
			if err := t.Sender().AddEncoding(extra); err != nil {
				res <- result{err: fmt.Errorf("add simulcast encoding %s: %w", extra.RID(), err)}
				return
			}
		}
		p.mu.Lock()
		p.sources[tracks[0].ID()] = source
		gen := p.offerGen
		p.mu.Unlock()
		// Each simulcast layer has its own RTCP stream (its own SSRC).
		for _, tr := range tracks {
			p.wg.Add(1)
			go p.readSenderRTCP(t.Sender(), tracks[0].ID(), tr.RID(), len(tracks) > 1)
		}
		res <- result{sender: t.Sender(), gen: gen}
		p.offer()
	})
	var r result
	select {
	case r = <-res:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if r.err != nil {
		return nil, r.err
	}
	if err := p.waitOffer(ctx, r.gen); err != nil {
		// Refused: stop sending on it, so that nothing is left half-added.
		p.enqueue(func() {
			if err := p.pc.RemoveTrack(r.sender); err != nil {
				p.log.Debug("remove refused track", "err", err)
			}
		})
		return nil, err
	}
	return r.sender, nil
}

// Unpublish stops sending a track and renegotiates.
func (p *Peer) Unpublish(ctx context.Context, s *webrtc.RTPSender) error {
	gen := make(chan int, 1)
	errc := make(chan error, 1)
	p.enqueue(func() {
		if err := p.pc.RemoveTrack(s); err != nil {
			errc <- err
			return
		}
		p.mu.Lock()
		gen <- p.offerGen
		p.mu.Unlock()
		p.offer()
	})
	select {
	case err := <-errc:
		return fmt.Errorf("remove track: %w", err)
	case g := <-gen:
		return p.waitOffer(ctx, g)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waitOffer waits until an own offer made after generation gen finished.
func (p *Peer) waitOffer(ctx context.Context, gen int) error {
	for {
		p.mu.Lock()
		if p.offerGen > gen {
			err := p.lastOfferErr
			p.mu.Unlock()
			return err
		}
		ch := p.genChanged
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("waiting for the server's answer: %w", ctx.Err())
		case <-p.done:
			return errors.New("peer closed")
		}
	}
}

// readSenderRTCP keeps the sender's interceptors fed and reports keyframe
// requests.
func (p *Peer) readSenderRTCP(s *webrtc.RTPSender, trackID, rid string, simulcast bool) {
	defer p.wg.Done()
	for {
		var pkts []rtcp.Packet
		var err error
		if simulcast {
			pkts, _, err = s.ReadSimulcastRTCP(rid)
		} else {
			pkts, _, err = s.ReadRTCP()
		}
		if err != nil {
			return
		}
		for _, pkt := range pkts {
			switch pkt.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				if p.opts.OnKeyframeRequest != nil {
					p.opts.OnKeyframeRequest(trackID)
				}
			}
		}
	}
}

func (p *Peer) onTrack(t *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
	p.mu.Lock()
	info, ok := p.tracks[t.ID()]
	if !ok {
		for _, tr := range p.pc.GetTransceivers() {
			if tr.Receiver() == r {
				if id, found := p.mids[tr.Mid()]; found {
					info, ok = p.tracks[id]
				}
			}
		}
	}
	p.mu.Unlock()
	if !ok {
		info = signal.Track{ID: t.ID(), Kind: t.Kind().String(), StreamID: t.StreamID(), Participant: t.StreamID()}
	}
	// Keep the receiver's RTCP flowing (interceptors need a reader).
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		buf := make([]byte, 1500)
		for {
			if _, _, err := r.Read(buf); err != nil {
				return
			}
		}
	}()
	if p.opts.OnTrack != nil {
		p.opts.OnTrack(&RemoteTrack{Info: info, Track: t, Receiver: r})
	}
}

// pushEvent queues a room event for Events without blocking the loop.
func (p *Peer) pushEvent(m *signal.Message) {
	p.mu.Lock()
	p.events = append(p.events, m)
	p.mu.Unlock()
	select {
	case p.eventWake <- struct{}{}:
	default:
	}
}

func (p *Peer) deliverEvents() {
	defer p.wg.Done()
	defer close(p.eventsOut)
	for {
		p.mu.Lock()
		var m *signal.Message
		if len(p.events) > 0 {
			m = p.events[0]
			p.events = p.events[1:]
		}
		p.mu.Unlock()
		if m == nil {
			select {
			case <-p.eventWake:
				continue
			case <-p.leaving:
				return
			}
		}
		select {
		case p.eventsOut <- m:
		case <-p.leaving:
			return
		}
	}
}

// Leave says goodbye, closes the PeerConnection and waits for every
// goroutine of the peer to end. It is safe to call more than once.
func (p *Peer) Leave() error {
	var err error
	p.leaveOnce.Do(func() {
		_ = p.client.Send(&signal.Message{Type: signal.TypeLeave})
		close(p.leaving)
		err = p.pc.Close()
		_ = p.client.Close()
		<-p.done
	})
	return err
}

// AudioLevelURI is the RTP header extension that carries a microphone's level.
const AudioLevelURI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"

// AudioLevelID returns the negotiated id of the audio level extension on a
// published audio sender, or 0.
func AudioLevelID(s *webrtc.RTPSender) uint8 {
	for _, e := range s.GetParameters().HeaderExtensions {
		if e.URI == AudioLevelURI {
			return uint8(e.ID)
		}
	}
	return 0
}

// Stamper puts the mid and rid header extensions on simulcast packets.
// Browsers add them themselves; pion does not, and without them an SFU
// cannot tell the layers apart.
type Stamper struct {
	midID, ridID uint8
	mid          []byte
}

// NewStamper reads the negotiated extension ids and the media section of a
// published sender (call it after Publish returned).
func (p *Peer) NewStamper(s *webrtc.RTPSender) (*Stamper, error) {
	return newStamper(p.pc, s)
}

func newStamper(pc *webrtc.PeerConnection, s *webrtc.RTPSender) (*Stamper, error) {
	st := &Stamper{}
	for _, e := range s.GetParameters().HeaderExtensions {
		switch e.URI {
		case sdp.SDESMidURI:
			st.midID = uint8(e.ID)
		case sdp.SDESRTPStreamIDURI:
			st.ridID = uint8(e.ID)
		}
	}
	for _, t := range pc.GetTransceivers() {
		if t.Sender() == s {
			st.mid = []byte(t.Mid())
		}
	}
	if st.midID == 0 || st.ridID == 0 || len(st.mid) == 0 {
		return nil, errors.New("simulcast header extensions were not negotiated")
	}
	return st, nil
}

// Stamp sets the extensions on h for the layer rid.
func (st *Stamper) Stamp(h *rtp.Header, rid string) {
	_ = h.SetExtension(st.midID, st.mid)
	_ = h.SetExtension(st.ridID, []byte(rid))
}
