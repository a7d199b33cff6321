// Package client is a Go Confab participant: the signaling client of
// package signal and one pion PeerConnection, negotiated as the polite
// peer, that publishes and receives media. It also speaks WHIP and WHEP
// (one HTTP POST of a complete offer per session). With Params.Reconnect a
// Peer rejoins through another server when its connection is lost, and
// publishes and receives again.
//
// The project's tests, the load tool (package loadtest) and server-to-server
// relays use it. It prints nothing: logs go to the *slog.Logger it is given.
// Package clip has media to publish.
package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	// OnPublishLayers is called when the server says which simulcast
	// encodings of a published track anyone needs (by the local track id
	// and the RIDs to keep sending): a source should stop writing the
	// others until they are named again (clip.VideoSource.SetActiveRIDs).
	OnPublishLayers func(trackID string, rids []string)
	// RelayOnly makes the peer use only TURN relay candidates (from the
	// ICE servers in welcome), as a client behind a strict firewall would.
	RelayOnly bool
	// Lecture asks for a lecture room (when this join creates it); Role
	// asks for fewer permissions ("viewer": a lecture's audience).
	Lecture bool
	Role    string
	// Reconnect, when set, makes the peer rejoin after a lost connection
	// (see Reconnect); nil keeps today's behaviour: a lost connection
	// stays lost until Leave.
	Reconnect *Reconnect
}

// RemoteTrack is a track forwarded to the peer.
type RemoteTrack struct {
	Info     signal.Track
	Track    *webrtc.TrackRemote
	Receiver *webrtc.RTPReceiver
	// URL is the server the track came through (after a reconnect, the
	// new one).
	URL string
}

// Peer is one participant: a signaling client and one PeerConnection,
// negotiated as the polite peer, per session (the first join, then one
// per rejoin). All negotiation runs on one goroutine (loop), in the order
// things happened.
type Peer struct {
	params Params
	urls   []string // where the peer may join, in order
	// ctx ends when Leave begins or the peer ends by itself; it bounds the
	// peer's own requests.
	ctx     context.Context
	cancel  context.CancelFunc
	leaving chan struct{} // closed by Leave

	mu            sync.Mutex
	cur           *session                // the latest session; written only by loop (and Join)
	tracks        map[string]signal.Track // published by others, by id (this session)
	mids          map[string]string       // media section -> track id (this session)
	queue         []func()                // work for the signaling goroutine
	wake          chan struct{}
	offerGen      int // completed own offer/answer exchanges
	genChanged    chan struct{}
	lastOfferErr  error
	events        []*signal.Message
	eventWake     chan struct{}
	reconnections []Reconnection
	endErr        error // why the peer ended by itself

	pubs []*publication // owned by the signaling goroutine; read under mu

	eventsOut chan *signal.Message
	leaveOnce sync.Once
	leaveErr  error
	loopDone  chan struct{}
	done      chan struct{}
	wg        sync.WaitGroup
}

// Join dials the server, joins the room and starts the peer. ctx bounds
// dialing and joining; the peer then lives until Leave. With Reconnect,
// a server that cannot be reached (or refuses for a reason another server
// may not have) is followed by the next URL, each tried once.
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
	if p.Reconnect != nil {
		rc := p.Reconnect.withDefaults()
		p.Reconnect = &rc
	}
	peer := newPeer(p)
	s, err := peer.firstJoin(ctx)
	if err != nil {
		peer.cancel()
		return nil, err
	}
	peer.install(s)
	peer.wg.Add(2)
	go peer.loop(s)
	go peer.deliverEvents()
	go func() {
		peer.wg.Wait()
		close(peer.done)
	}()
	return peer, nil
}

func newPeer(p Params) *Peer {
	ctx, cancel := context.WithCancel(context.Background())
	return &Peer{
		params: p, urls: p.urls(), ctx: ctx, cancel: cancel, leaving: make(chan struct{}),
		tracks: map[string]signal.Track{}, mids: map[string]string{},
		wake: make(chan struct{}, 1), genChanged: make(chan struct{}), eventWake: make(chan struct{}, 1),
		eventsOut: make(chan *signal.Message), loopDone: make(chan struct{}), done: make(chan struct{}),
	}
}

// firstJoin joins through the first server that accepts: only Params.URL
// without Reconnect, else each URL once, in order. A final refusal stops
// at once.
func (p *Peer) firstJoin(ctx context.Context) (*session, error) {
	urls := p.urls
	if p.params.Reconnect == nil {
		urls = urls[:1]
	}
	var errs []error
	for _, u := range urls {
		s, err := p.connect(ctx, u, 0)
		if err == nil {
			return s, nil
		}
		errs = append(errs, err)
		if isFinal(err) || ctx.Err() != nil {
			break
		}
	}
	if len(errs) == 1 {
		return nil, errs[0]
	}
	return nil, fmt.Errorf("no server accepted the join: %w", errors.Join(errs...))
}

func iceServers(in []signal.ICEServer) []webrtc.ICEServer {
	out := make([]webrtc.ICEServer, 0, len(in))
	for _, s := range in {
		out = append(out, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	return out
}

// session returns the latest session.
func (p *Peer) session() *session {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur
}

// ID is the participant id the server assigned (after a reconnect, the
// new one).
func (p *Peer) ID() string { return p.session().welcome.Participant.ID }

// Welcome is the server's answer to the latest join.
func (p *Peer) Welcome() *signal.Message { return p.session().welcome }

// URL is the server the peer joined through last.
func (p *Peer) URL() string { return p.session().url }

// PeerConnection is the peer's PeerConnection (after a reconnect, the new
// one).
func (p *Peer) PeerConnection() *webrtc.PeerConnection { return p.session().pc }

// Client is the peer's signaling client (for requests such as subscribe);
// after a reconnect, the new one.
func (p *Peer) Client() *signal.Client { return p.session().sig }

// Done is closed once the peer has left, or ended by itself and delivered
// its last events, and its goroutines have ended.
func (p *Peer) Done() <-chan struct{} { return p.done }

// Err says why the peer ended by itself (with Reconnect: a final refusal
// or ErrGaveUp), or nil.
func (p *Peer) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.endErr
}

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

// Leave says goodbye, closes the PeerConnection and the signaling
// connection, and waits for every goroutine of the peer to end. It is safe
// to call more than once; later calls return the first call's result. It
// must be called also after the peer ended by itself.
func (p *Peer) Leave() error {
	p.leaveOnce.Do(func() {
		_ = p.session().sig.Send(&signal.Message{Type: signal.TypeLeave})
		close(p.leaving)
		p.cancel()
		<-p.loopDone
		p.leaveErr = p.session().close()
		<-p.done
	})
	return p.leaveErr
}
