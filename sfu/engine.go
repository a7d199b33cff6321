package sfu

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
)

// Negotiation timing defaults.
const (
	// negotiationDelay batches track changes into one offer.
	negotiationDelay = 20 * time.Millisecond
	// offerAnswerWindow is how long a client may take to answer a server
	// offer before the peer is failed (pion cannot roll a local offer back).
	offerAnswerWindow = 10 * time.Second
)

// Engine builds Peers that share one pion API (codecs, interceptors, ICE
// settings and the optional UDP and TCP ports).
type Engine struct {
	cfg       Config
	api       *apiParts
	batch     *batchNet              // the shared port's batched sockets (nil: none)
	checkAPIs map[string]*webrtc.API // by transport (check.go)
	closers   []func() error

	// Negotiation timing of new Peers (tests shorten them).
	negotiationDelay time.Duration
	offerWindow      time.Duration

	// tracks are the Receivers alive on this engine: Peers subscribe to a
	// track by its id, so callers never hold a Receiver to forward it.
	tracksMu sync.Mutex
	tracks   map[TrackID]*Receiver

	relays relayBook // this engine's relay links and their counters
	shed   shedState // what load shedding holds back (shed.go)
}

// NewEngine prepares the media plane: it opens the shared ports the
// configuration asks for and builds the pion API.
func NewEngine(cfg Config) (*Engine, error) {
	cfg.setDefaults()
	e := &Engine{cfg: cfg, negotiationDelay: negotiationDelay, offerWindow: offerAnswerWindow,
		tracks: map[TrackID]*Receiver{}}
	udpMux, batch, err := listenUDPMux(&e.cfg)
	if err != nil {
		return nil, err
	}
	if udpMux != nil {
		e.closers = append(e.closers, udpMux.Close)
	}
	e.batch = batch
	tcpMux, err := listenTCPMux(&e.cfg)
	if err != nil {
		_ = e.Close()
		return nil, err
	}
	if tcpMux != nil {
		e.closers = append(e.closers, tcpMux.Close)
	}
	api, err := newAPI(&e.cfg, udpMux, tcpMux)
	if err != nil {
		_ = e.Close()
		return nil, fmt.Errorf("build the webrtc api: %w", err)
	}
	e.api = api
	if e.checkAPIs, err = newCheckAPIs(&e.cfg, udpMux, tcpMux); err != nil {
		_ = e.Close()
		return nil, fmt.Errorf("build the connection check apis: %w", err)
	}
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

// track returns the live track with id, or nil when there is none (it
// ended, or never existed here).
func (e *Engine) track(id TrackID) *Receiver {
	e.tracksMu.Lock()
	defer e.tracksMu.Unlock()
	return e.tracks[id]
}

func (e *Engine) addTrack(r *Receiver) {
	e.tracksMu.Lock()
	defer e.tracksMu.Unlock()
	e.tracks[r.id] = r
}

func (e *Engine) removeTrack(r *Receiver) {
	e.tracksMu.Lock()
	defer e.tracksMu.Unlock()
	if e.tracks[r.id] == r {
		delete(e.tracks, r.id)
	}
}

// Config returns the engine's effective configuration.
func (e *Engine) Config() Config { return e.cfg }

// NewPeer creates a participant's PeerConnection. Its logger is
// p.Logger, which should already name the participant; without one, the
// engine's logger with the peer's id.
func (e *Engine) NewPeer(p PeerParams) (*Peer, error) {
	api := e.api.shared
	var keys *keyCapture
	if e.batch != nil {
		// Over the batched shared port the peer's forwarded packets can
		// skip pion's send path, given its SRTP keys.
		keys = &keyCapture{}
		api = e.api.withKeyCapture(keys)
	}
	pc, err := e.newPeerConnection(api)
	if err != nil {
		return nil, fmt.Errorf("create peer connection: %w", err)
	}
	log := p.Logger
	if log == nil {
		log = e.cfg.Logger.With("participant", p.ID)
	}
	peer := &Peer{
		id: p.ID, engine: e, pc: pc, params: p, log: log, keys: keys,
		closed:     make(chan struct{}),
		iceStarted: make(chan struct{}),
		sources:    map[string]Source{},
		receivers:  map[*webrtc.RTPReceiver]*Receiver{},
		downs:      map[*DownTrack]*webrtc.RTPSender{},
	}
	peer.send = newSendPath()
	peer.alloc = newAllocator(peer.send, peer.DownTracks, log)
	peer.wg.Add(1)
	go peer.run()
	metricPeers.Inc()
	pc.OnICECandidate(peer.onLocalCandidate)
	pc.OnTrack(peer.onTrack)
	pc.OnConnectionStateChange(peer.onConnectionState)
	if keys != nil {
		pc.SCTP().Transport().ICETransport().OnSelectedCandidatePairChange(func(*webrtc.ICECandidatePair) { peer.updateDirectRoute() })
	}
	pc.OnICEConnectionStateChange(peer.onICEState)
	return peer, nil
}

// newPeerConnection creates a PeerConnection with the engine's settings.
func (e *Engine) newPeerConnection(api *webrtc.API) (*webrtc.PeerConnection, error) {
	return api.NewPeerConnection(webrtc.Configuration{
		BundlePolicy:  webrtc.BundlePolicyMaxBundle,
		RTCPMuxPolicy: webrtc.RTCPMuxPolicyRequire,
	})
}
