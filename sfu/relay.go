package sfu

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// A relay link carries media from one node to another over one
// server-to-server PeerConnection. The sending node's RelayOut offers every
// change; the receiving node's RelayIn answers. Media goes one way: a pair
// of nodes that pull from each other has two links, each offered by its
// sender, so neither side ever has to resolve glare.

// RelayParams configure one end of a relay link.
type RelayParams struct {
	// Node is the other node's id; it labels the link's logs and metrics.
	Node string
	// Logger carries what identifies the link to the caller; nil means the
	// engine's logger. The relay adds "node".
	Logger *slog.Logger
	// OnOffer (RelayOut) sends an offer to the other node; its answer comes
	// back through HandleAnswer. It is called on the relay's own goroutine
	// with no lock held, so it may wait for a request/reply; the next
	// offer waits for the answer.
	OnOffer func(offer RelayOffer)
	// OnTrack (RelayIn) announces a track the other node started relaying.
	OnTrack func(r *Receiver)
	// OnFailed reports that the link failed for good (ICE failed, the other
	// end closed, an offer was not answered in time). The relay has already
	// closed itself and its tracks have ended.
	OnFailed func(err error)
}

// RelayOffer is a relay link's offer: a complete SDP (every candidate in it;
// relays do not trickle) and what each of its media sections carries.
type RelayOffer struct {
	SDP string `json:"sdp"`
	// Sections maps the mid of every media section that sends to the layer
	// it carries.
	Sections map[string]RelaySection `json:"sections"`
}

// RelaySection describes the one layer of one track a media section carries.
type RelaySection struct {
	Track     TrackID    `json:"track"`          // the origin's track id
	Publisher PeerID     `json:"publisher"`      // the origin's publisher id
	Stream    string     `json:"stream"`         // the msid stream id subscribers see
	MSID      string     `json:"msid,omitempty"` // the publisher's own id for the track
	Kind      string     `json:"kind"`           // "audio" or "video"
	Source    Source     `json:"source"`         // camera, microphone, screen, screen_audio
	Codec     RelayCodec `json:"codec"`
	Simulcast bool       `json:"simulcast,omitempty"` // the origin receives several layers
	Layer     int        `json:"layer"`               // 0 low .. 2 high (audio: 0)
}

// RelayCodec is the publisher's codec, which a relay never changes.
type RelayCodec struct {
	MimeType  string `json:"mime"`
	ClockRate uint32 `json:"clock"`
	Channels  uint16 `json:"channels,omitempty"`
	Fmtp      string `json:"fmtp,omitempty"`
}

// Relay errors callers branch on.
var (
	// ErrInvalidRelayOffer marks a relay offer whose metadata does not
	// describe its SDP, or contradicts itself or a live track.
	ErrInvalidRelayOffer = errors.New("invalid relay offer")
	// ErrTrackEnded refuses to relay a track that has ended.
	ErrTrackEnded = errors.New("track ended")
	// ErrRelayClosedRemotely fails a link whose other end closed it.
	ErrRelayClosedRemotely = errors.New("the other node closed the relay")
)

// relayGatherTimeout bounds the wait for ICE gathering before an offer or
// answer is complete (host candidates only: milliseconds in practice).
const relayGatherTimeout = 10 * time.Second

// relayBase is what both ends of a link share: the PeerConnection, the
// link's Peer, connection state and failure.
type relayBase struct {
	node   string
	dir    string // "out" or "in"
	engine *Engine
	pc     *webrtc.PeerConnection
	// link is the Peer that DownTracks (out) and Receivers (in) of the link
	// belong to: they use its PeerConnection, logger, connected state and
	// closed channel, nothing else of a Peer.
	link   *Peer
	log    *slog.Logger
	params RelayParams

	closing   atomic.Bool // Close has begun: a closed PeerConnection is ours
	closeOnce sync.Once
	failOnce  sync.Once
	closeFn   func() error // the concrete relay's Close
	// onConnected runs, on its own goroutine, when media can first flow.
	onConnected func()

	timerMu      sync.Mutex
	connectTimer *time.Timer
	timerStopped bool
}

func newRelayBase(e *Engine, p RelayParams, dir string) (*relayBase, error) {
	if p.Node == "" {
		return nil, fmt.Errorf("relay: the other node's id is required")
	}
	pc, err := e.newPeerConnection(e.api.shared)
	if err != nil {
		return nil, fmt.Errorf("create relay peer connection: %w", err)
	}
	log := p.Logger
	if log == nil {
		log = e.cfg.Logger
	}
	log = log.With("node", p.Node, "relay", dir)
	b := &relayBase{node: p.Node, dir: dir, engine: e, pc: pc, log: log, params: p,
		link: &Peer{id: PeerID("relay-" + dir + ":" + p.Node), engine: e, pc: pc, log: log, closed: make(chan struct{})}}
	pc.OnConnectionStateChange(b.onConnectionState)
	metricPeers.Inc()
	return b, nil
}

// Node is the other node's id.
func (b *relayBase) Node() string { return b.node }

// Connected reports whether media can flow on the link.
func (b *relayBase) Connected() bool { return b.link.connected.Load() }

// Done is closed once the link is closed.
func (b *relayBase) Done() <-chan struct{} { return b.link.closed }

func (b *relayBase) isClosed() bool { return b.link.isClosed() }

func (b *relayBase) key() relayKey { return relayKey{node: b.node, dir: b.dir} }

func (b *relayBase) onConnectionState(s webrtc.PeerConnectionState) {
	b.log.Debug("relay connection state", "state", s.String())
	switch s {
	case webrtc.PeerConnectionStateConnected:
		if b.link.connected.CompareAndSwap(false, true) {
			b.stopConnectTimer()
			b.log.Info("relay connected")
			if b.onConnected != nil {
				go b.onConnected()
			}
		}
	case webrtc.PeerConnectionStateDisconnected:
		b.link.connected.Store(false)
	case webrtc.PeerConnectionStateFailed:
		b.link.connected.Store(false)
		b.fail(errors.New("relay ice connection failed"))
	case webrtc.PeerConnectionStateClosed:
		b.link.connected.Store(false)
		if !b.closing.Load() {
			b.fail(ErrRelayClosedRemotely)
		}
	}
}

// armConnectTimer starts, once, the deadline for the link to connect after
// its first offer/answer exchange.
func (b *relayBase) armConnectTimer() {
	b.timerMu.Lock()
	defer b.timerMu.Unlock()
	if b.connectTimer != nil || b.timerStopped || b.link.connected.Load() {
		return
	}
	d := b.engine.cfg.ConnectTimeout
	b.connectTimer = time.AfterFunc(d, func() {
		if !b.link.connected.Load() && !b.isClosed() {
			b.fail(fmt.Errorf("relay did not connect within %v", d))
		}
	})
}

func (b *relayBase) stopConnectTimer() {
	b.timerMu.Lock()
	defer b.timerMu.Unlock()
	b.timerStopped = true
	if b.connectTimer != nil {
		b.connectTimer.Stop()
	}
}

// fail closes a link that cannot go on and reports why, once. On its own
// goroutine: pion may call in with its locks held, and Close waits.
func (b *relayBase) fail(err error) {
	if b.closing.Load() {
		return
	}
	b.failOnce.Do(func() {
		go func() {
			b.log.Warn("relay failed", "err", err)
			_ = b.closeFn()
			if b.params.OnFailed != nil {
				b.params.OnFailed(err)
			}
		}()
	})
}

// register counts a new link in the engine's and the process's books.
func (b *relayBase) register(l relayLink) {
	b.engine.relays.add(l)
	allRelays.add(l)
}

// retire moves a closed link's final counters into the books.
func (b *relayBase) retire(l relayLink) {
	b.engine.relays.retire(l)
	allRelays.retire(l)
	metricPeers.Dec()
}

// relayCodecOf describes a Receiver's codec for a relay offer.
func relayCodecOf(c webrtc.RTPCodecParameters) RelayCodec {
	return RelayCodec{MimeType: c.MimeType, ClockRate: c.ClockRate, Channels: c.Channels, Fmtp: c.SDPFmtpLine}
}

// parameters turns a relayed codec back into pion's form.
func (c RelayCodec) parameters() webrtc.RTPCodecParameters {
	return webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: c.MimeType, ClockRate: c.ClockRate, Channels: c.Channels, SDPFmtpLine: c.Fmtp}}
}

// sendingSections returns the kind of every audio or video media section of
// an SDP that sends, by mid.
func sendingSections(s *sdp.SessionDescription) (map[string]string, error) {
	out := map[string]string{}
	for _, m := range s.MediaDescriptions {
		kind := m.MediaName.Media
		if (kind != "audio" && kind != "video") || m.MediaName.Port.Value == 0 {
			continue
		}
		sends := false
		for _, a := range m.Attributes {
			if a.Key == "sendonly" || a.Key == "sendrecv" {
				sends = true
			}
		}
		if !sends {
			continue
		}
		mid, ok := m.Attribute(sdp.AttrKeyMID)
		if !ok || mid == "" {
			return nil, fmt.Errorf("%w: a sending %s section has no mid", ErrInvalidRelayOffer, kind)
		}
		out[mid] = kind
	}
	return out, nil
}

// validateRelayOffer checks that the metadata describes exactly the
// sending sections of the SDP, and that each track is described the same
// way by each of its sections, with distinct layers.
func validateRelayOffer(o RelayOffer, s *sdp.SessionDescription) error {
	sending, err := sendingSections(s)
	if err != nil {
		return err
	}
	for mid, kind := range sending {
		sec, ok := o.Sections[mid]
		if !ok {
			return fmt.Errorf("%w: media section %q sends but the offer does not say what it carries", ErrInvalidRelayOffer, mid)
		}
		if sec.Kind != kind {
			return fmt.Errorf("%w: media section %q is %s, its metadata says %q", ErrInvalidRelayOffer, mid, kind, sec.Kind)
		}
	}
	byTrack := map[TrackID]RelaySection{}
	layers := map[TrackID]map[int]bool{}
	for mid, sec := range o.Sections {
		if _, ok := sending[mid]; !ok {
			return fmt.Errorf("%w: metadata for %q, which is not a sending media section", ErrInvalidRelayOffer, mid)
		}
		if err := sec.check(); err != nil {
			return fmt.Errorf("%w: section %q: %w", ErrInvalidRelayOffer, mid, err)
		}
		first, seen := byTrack[sec.Track]
		if !seen {
			byTrack[sec.Track] = sec
			layers[sec.Track] = map[int]bool{}
		} else if !sameTrack(first, sec) {
			return fmt.Errorf("%w: sections of track %q describe it differently", ErrInvalidRelayOffer, sec.Track)
		}
		if layers[sec.Track][sec.Layer] {
			return fmt.Errorf("%w: track %q has layer %d twice", ErrInvalidRelayOffer, sec.Track, sec.Layer)
		}
		layers[sec.Track][sec.Layer] = true
	}
	return nil
}

// check validates one section's own fields.
func (s RelaySection) check() error {
	switch {
	case s.Track == "" || s.Publisher == "":
		return errors.New("track and publisher ids are required")
	case s.Kind != "audio" && s.Kind != "video":
		return fmt.Errorf("kind %q is neither audio nor video", s.Kind)
	case s.Layer < 0 || s.Layer >= maxLayers:
		return fmt.Errorf("layer %d is outside 0..%d", s.Layer, maxLayers-1)
	case s.Kind == "audio" && s.Layer != 0:
		return fmt.Errorf("audio has no layer %d", s.Layer)
	case !strings.HasPrefix(strings.ToLower(s.Codec.MimeType), s.Kind+"/") || s.Codec.ClockRate == 0:
		return fmt.Errorf("codec %q at %d Hz is not a %s codec", s.Codec.MimeType, s.Codec.ClockRate, s.Kind)
	}
	return nil
}

// sameTrack reports whether two sections describe the same track alike.
func sameTrack(a, b RelaySection) bool {
	a.Layer, b.Layer = 0, 0
	return a == b
}
