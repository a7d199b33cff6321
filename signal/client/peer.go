// Package client is a Go Confab participant: the signaling client of
// package signal and one pion PeerConnection, negotiated as the polite
// peer, that publishes and receives media. It also speaks WHIP and WHEP
// (one HTTP POST of a complete offer per session).
//
// The project's tests, the load tool (package loadtest) and server-to-server
// relays use it. It prints nothing: logs go to the *slog.Logger it is given.
// Package clip has media to publish.
package client

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/confab-sfu/confab/signal"
	"github.com/pion/webrtc/v4"
)

// Params configure a participant.
type Params struct {
	URL               string      // server base URL (http://host:port) or ws URL
	Room, Name, Token string      // Token: an access token, if the server wants one
	API               *webrtc.API // nil: NewAPI(APIOptions{Logger: Logger})
	Logger            *slog.Logger
	// OnTrack is called for each track the server forwards, on a pion
	// goroutine. The RTCP of its receiver is read by the peer.
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

// Peer is one participant: a signaling client and one PeerConnection,
// negotiated as the polite peer. All negotiation runs on one goroutine
// (loop), in the order things happened.
type Peer struct {
	params  Params
	log     *slog.Logger
	sig     *signal.Client
	pc      *webrtc.PeerConnection
	welcome *signal.Message
	// ctx ends when Leave begins; it bounds the peer's own requests.
	ctx    context.Context
	cancel context.CancelFunc

	mu           sync.Mutex
	tracks       map[string]signal.Track // published by others, by id
	mids         map[string]string       // media section -> track id
	sources      map[string]string       // own track id -> source
	queue        []func()                // work for the signaling goroutine
	wake         chan struct{}
	offerGen     int // completed own offer/answer exchanges
	genChanged   chan struct{}
	lastOfferErr error
	events       []*signal.Message
	eventWake    chan struct{}

	// Owned by the signaling goroutine.
	needOffer  bool
	sdpSent    bool
	heldLocal  []*webrtc.ICECandidateInit
	heldRemote []webrtc.ICECandidateInit
	ownMids    int // mids given to own sections (c0, c1, ...)

	eventsOut chan *signal.Message
	leaveOnce sync.Once
	leaveErr  error
	done      chan struct{}
	wg        sync.WaitGroup
}

// Join dials the server, joins the room and starts the peer. ctx bounds
// dialing and joining; the peer then lives until Leave.
func Join(ctx context.Context, p Params) (*Peer, error) {
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	if p.API == nil {
		api, err := NewAPI(APIOptions{Logger: p.Logger})
		if err != nil {
			return nil, err
		}
		p.API = api
	}
	sig, err := signal.Dial(ctx, p.URL, signal.WithLogger(p.Logger))
	if err != nil {
		return nil, err
	}
	welcome, err := sig.Request(ctx, &signal.Message{Type: signal.TypeJoin, Room: p.Room, Name: strings.TrimSpace(p.Name),
		Version: signal.Version, Token: p.Token, Lecture: p.Lecture, Role: p.Role})
	if err != nil {
		_ = sig.Close()
		return nil, fmt.Errorf("join %s: %w", p.Room, err)
	}
	pcCfg := webrtc.Configuration{BundlePolicy: webrtc.BundlePolicyMaxBundle, ICEServers: iceServers(welcome.ICEServers)}
	if p.RelayOnly {
		pcCfg.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	}
	pc, err := p.API.NewPeerConnection(pcCfg)
	if err != nil {
		_ = sig.Close()
		return nil, fmt.Errorf("create peer connection: %w", err)
	}
	peer := newPeer(p, sig, pc, welcome)
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		var init *webrtc.ICECandidateInit
		if c != nil {
			ci := c.ToJSON()
			init = &ci
		}
		peer.enqueue(func() { peer.localCandidate(init) })
	})
	pc.OnTrack(peer.onTrack)
	peer.wg.Add(2)
	go peer.loop()
	go peer.deliverEvents()
	go func() {
		peer.wg.Wait()
		close(peer.done)
	}()
	return peer, nil
}

func newPeer(p Params, sig *signal.Client, pc *webrtc.PeerConnection, welcome *signal.Message) *Peer {
	ctx, cancel := context.WithCancel(context.Background())
	peer := &Peer{
		params: p, log: p.Logger.With("participant", welcome.Participant.ID), sig: sig, pc: pc, welcome: welcome,
		ctx: ctx, cancel: cancel,
		tracks: map[string]signal.Track{}, mids: map[string]string{}, sources: map[string]string{},
		wake: make(chan struct{}, 1), genChanged: make(chan struct{}), eventWake: make(chan struct{}, 1),
		eventsOut: make(chan *signal.Message), done: make(chan struct{}),
	}
	for _, t := range welcome.Tracks {
		peer.tracks[t.ID] = t
	}
	return peer
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
func (p *Peer) Client() *signal.Client { return p.sig }

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

// deliverEvents hands queued events to the reader of Events; the queue is
// unbounded so a slow reader never stalls negotiation.
func (p *Peer) deliverEvents() {
	defer p.wg.Done()
	defer close(p.eventsOut)
	for {
		p.mu.Lock()
		var m *signal.Message
		if len(p.events) > 0 {
			m = p.events[0]
			p.events[0] = nil
			p.events = p.events[1:]
		}
		p.mu.Unlock()
		if m == nil {
			select {
			case <-p.eventWake:
				continue
			case <-p.ctx.Done():
				return
			}
		}
		select {
		case p.eventsOut <- m:
		case <-p.ctx.Done():
			return
		}
	}
}

// Leave says goodbye, closes the PeerConnection and the signaling
// connection, and waits for every goroutine of the peer to end. It is safe
// to call more than once; later calls return the first call's result.
func (p *Peer) Leave() error {
	p.leaveOnce.Do(func() {
		_ = p.sig.Send(&signal.Message{Type: signal.TypeLeave})
		p.cancel()
		if err := p.pc.Close(); err != nil {
			p.leaveErr = fmt.Errorf("close peer connection: %w", err)
		}
		_ = p.sig.Close()
		<-p.done
	})
	return p.leaveErr
}
