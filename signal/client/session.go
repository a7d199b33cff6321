package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/confab-sfu/confab/signal"
	"github.com/pion/webrtc/v4"
)

// session is one join: a signaling connection and the PeerConnection
// negotiated over it. A rejoin makes a new one; callbacks of an old one
// that fire late are ignored.
type session struct {
	url     string
	index   int // 0: the first join, n: the n-th rejoin
	sig     *signal.Client
	pc      *webrtc.PeerConnection
	welcome *signal.Message
	log     *slog.Logger

	failed    chan struct{} // closed when the media connection failed
	failOnce  sync.Once
	closeOnce sync.Once
	closeErr  error

	// Owned by the signaling goroutine.
	needOffer  bool
	sdpSent    bool
	heldLocal  []*webrtc.ICECandidateInit
	heldRemote []webrtc.ICECandidateInit
	ownMids    int             // mids given to own sections (c0, c1, ...)
	bye        *signal.Message // the server's goodbye, if it sent one
}

// connect dials url, joins the room and makes the session's
// PeerConnection. ctx bounds dialing and joining.
func (p *Peer) connect(ctx context.Context, url string, index int) (*session, error) {
	prm := p.params
	sig, welcome, url, err := p.dialJoin(ctx, url)
	if err != nil {
		return nil, err
	}
	pcCfg := webrtc.Configuration{BundlePolicy: webrtc.BundlePolicyMaxBundle, ICEServers: iceServers(welcome.ICEServers)}
	if prm.RelayOnly {
		pcCfg.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	}
	pc, err := prm.API.NewPeerConnection(pcCfg)
	if err != nil {
		_ = sig.Close()
		return nil, fmt.Errorf("create peer connection: %w", err)
	}
	s := &session{url: url, index: index, sig: sig, pc: pc, welcome: welcome, failed: make(chan struct{}),
		log: prm.Logger.With("participant", welcome.Participant.ID, "url", url)}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		var init *webrtc.ICECandidateInit
		if c != nil {
			ci := c.ToJSON()
			init = &ci
		}
		p.enqueue(func() { p.localCandidate(s, init) })
	})
	pc.OnTrack(func(t *webrtc.TrackRemote, r *webrtc.RTPReceiver) { p.onTrack(s, t, r) })
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateFailed {
			s.failOnce.Do(func() { close(s.failed) })
		}
	})
	return s, nil
}

// dialJoin dials url and joins the room. A busy server of a cluster may
// hand the join to another node (a redirect refusal with its URL): that
// is followed once. It returns the URL joined through.
func (p *Peer) dialJoin(ctx context.Context, url string) (*signal.Client, *signal.Message, string, error) {
	prm := p.params
	for redirected := false; ; redirected = true {
		sig, err := signal.Dial(ctx, url, signal.WithLogger(prm.Logger))
		if err != nil {
			return nil, nil, url, err
		}
		welcome, err := sig.Request(ctx, &signal.Message{Type: signal.TypeJoin, Room: prm.Room, Name: strings.TrimSpace(prm.Name),
			Version: signal.Version, Token: prm.Token, Lecture: prm.Lecture, Role: prm.Role})
		if err == nil {
			return sig, welcome, url, nil
		}
		_ = sig.Close()
		var se *signal.Error
		if !redirected && errors.As(err, &se) && se.Code == signal.CodeRedirect && se.URL != "" {
			prm.Logger.Info("join handed to another server", "from", url, "to", se.URL)
			url = se.URL
			continue
		}
		return nil, nil, url, fmt.Errorf("join %s: %w", prm.Room, err)
	}
}

// install makes s the peer's session: the room as its welcome describes
// it, no media sections known yet.
func (p *Peer) install(s *session) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cur = s
	p.tracks = map[string]signal.Track{}
	p.mids = map[string]string{}
	for _, t := range s.welcome.Tracks {
		p.tracks[t.ID] = t
	}
}

// current says whether s is still the peer's session.
func (p *Peer) current(s *session) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur == s
}

// close ends the session's PeerConnection and signaling connection. It is
// safe to call more than once; later calls return the first's result.
func (s *session) close() error {
	s.closeOnce.Do(func() {
		if err := s.pc.Close(); err != nil {
			s.closeErr = fmt.Errorf("close peer connection: %w", err)
		}
		_ = s.sig.Close()
	})
	return s.closeErr
}
