package sfu

import (
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/wait"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"
)

// Tests here drive real Peers with real pion PeerConnections as clients,
// over loopback only (ICE on "lo", no mDNS, remote candidates limited to
// loopback). The client plays the polite browser: it answers server offers
// and offers when it publishes, on its own goroutine, never inside the
// Peer's callbacks (which run under the Peer's lock).

// patience bounds every wait on an event: generous, as the machine is shared.
const patience = 15 * time.Second

// newTestEngine returns a loopback-only engine closed when t ends.
func newTestEngine(t testing.TB) *Engine {
	t.Helper()
	e, err := NewEngine(Config{Loopback: true, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// clientAPI is a pion API with the server's codecs, no interceptors (the
// tests send the feedback they need themselves), loopback only, and no
// SRTP replay protection, so that a resent packet reaches the test.
func clientAPI(t testing.TB) *webrtc.API {
	t.Helper()
	m := &webrtc.MediaEngine{}
	if err := registerCodecs(m); err != nil {
		t.Fatal(err)
	}
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelDisabled
	se := webrtc.SettingEngine{LoggerFactory: lf}
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetRemoteIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.DisableSRTPReplayProtection(true)
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se),
		webrtc.WithInterceptorRegistry(&interceptor.Registry{}))
}

// serverOffer is an offer the server sent, with its mid -> track id map.
type serverOffer struct {
	sdp  string
	mids map[string]TrackID
}

// client is the other end of one server Peer.
type client struct {
	t    testing.TB
	pc   *webrtc.PeerConnection
	peer *Peer

	// manual: server offers go to offers for the test to handle; otherwise
	// the client answers them itself and reports them on answered.
	manual   bool
	offers   chan serverOffer
	answered chan serverOffer
	tracks   chan *webrtc.TrackRemote // the client's OnTrack
	recvs    chan *Receiver           // the server's OnTrack
	failed   chan error               // the server's OnFailed
	changed  chan Decision            // the server's OnDecision

	work chan func() // run in order on the client goroutine
	stop chan struct{}
	done chan struct{}
	held []webrtc.ICECandidateInit // server candidates before a remote description
}

// clientOpts adjust the server side of a new client.
type clientOpts struct {
	manual bool
	params PeerParams // callbacks other than the ones the client sets are kept
}

// newClient connects a client PeerConnection to a new Peer of e. Both are
// closed when t ends.
func newClient(t testing.TB, e *Engine, o clientOpts) *client {
	t.Helper()
	pc, err := clientAPI(t).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	c := &client{t: t, pc: pc, manual: o.manual,
		offers: make(chan serverOffer, 16), answered: make(chan serverOffer, 16),
		tracks: make(chan *webrtc.TrackRemote, 16), recvs: make(chan *Receiver, 16),
		failed: make(chan error, 4), changed: make(chan Decision, 1024),
		work: make(chan func(), 256), stop: make(chan struct{}), done: make(chan struct{})}
	p := o.params
	if p.ID == "" {
		p.ID = PeerID(NewID("P"))
	}
	if p.Logger == nil {
		p.Logger = quiet
	}
	p.OnOffer = func(sdp string, mids map[string]TrackID) {
		c.post(func() { c.onOffer(serverOffer{sdp, mids}) })
	}
	p.OnCandidate = func(ci *webrtc.ICECandidateInit) {
		if ci != nil {
			cand := *ci
			c.post(func() { c.addCandidate(cand) })
		}
	}
	p.OnTrack = func(r *Receiver) { c.recvs <- r }
	p.OnFailed = func(err error) { c.failed <- err }
	p.OnDecision = func(d Decision) {
		select {
		case c.changed <- d:
		default: // only the latest decisions matter
		}
	}
	c.peer, err = e.NewPeer(p)
	if err != nil {
		t.Fatal(err)
	}
	pc.OnICECandidate(func(ic *webrtc.ICECandidate) {
		if ic != nil {
			_ = c.peer.AddCandidate(ic.ToJSON())
		}
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) { c.tracks <- tr })
	go c.loop()
	t.Cleanup(c.close)
	return c
}

// post queues f for the client goroutine; it never blocks (the Peer calls
// in with its lock held).
func (c *client) post(f func()) {
	select {
	case c.work <- f:
	default:
		c.t.Error("client work queue full")
	}
}

// do runs f on the client goroutine and waits for it.
func (c *client) do(f func()) {
	done := make(chan struct{})
	c.post(func() { f(); close(done) })
	wait.Recv(c.t, done, patience, "the client goroutine")
}

func (c *client) loop() {
	defer close(c.done)
	for {
		select {
		case f := <-c.work:
			f()
		case <-c.stop:
			return
		}
	}
}

func (c *client) close() {
	close(c.stop)
	<-c.done
	if err := c.peer.Close(); err != nil {
		c.t.Errorf("close peer: %v", err)
	}
	if err := c.pc.Close(); err != nil {
		c.t.Errorf("close client: %v", err)
	}
}

func (c *client) onOffer(o serverOffer) {
	if c.manual {
		c.offers <- o
		return
	}
	if err := c.answer(o); err != nil {
		c.t.Errorf("answer server offer: %v", err)
		return
	}
	c.answered <- o
}

// answer applies a server offer and hands the client's answer to the Peer
// (on the client goroutine).
func (c *client) answer(o serverOffer) error {
	if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: o.sdp}); err != nil {
		return err
	}
	c.applyHeld()
	ans, err := c.pc.CreateAnswer(nil)
	if err != nil {
		return err
	}
	if err := c.pc.SetLocalDescription(ans); err != nil {
		return err
	}
	return c.peer.HandleAnswer(ans.SDP)
}

// answerNow answers o from the test goroutine (manual clients).
func (c *client) answerNow(o serverOffer) {
	c.t.Helper()
	var err error
	c.do(func() { err = c.answer(o) })
	if err != nil {
		c.t.Fatalf("answer server offer: %v", err)
	}
}

func (c *client) addCandidate(ci webrtc.ICECandidateInit) {
	if c.pc.RemoteDescription() == nil {
		c.held = append(c.held, ci)
		return
	}
	if err := c.pc.AddICECandidate(ci); err != nil {
		c.t.Errorf("add server candidate: %v", err)
	}
}

func (c *client) applyHeld() {
	for _, ci := range c.held {
		if err := c.pc.AddICECandidate(ci); err != nil {
			c.t.Errorf("add server candidate: %v", err)
		}
	}
	c.held = nil
}

// offer sends a client offer; like the Go client, it sets the offer as its
// local description only once the server accepted it, so a refused offer
// (glare) leaves nothing to undo.
func (c *client) offer(sources map[string]Source) error {
	var err error
	c.do(func() {
		var off webrtc.SessionDescription
		if off, err = c.pc.CreateOffer(nil); err != nil {
			return
		}
		var answer string
		if err = c.peer.HandleOffer(off.SDP, sources, func(a string) { answer = a }); err != nil {
			return
		}
		if err = c.pc.SetLocalDescription(off); err != nil {
			return
		}
		if err = c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
			return
		}
		c.applyHeld()
	})
	return err
}

// publish adds a send-only transceiver for tracks (several: simulcast
// encodings) and offers it.
func (c *client) publish(source Source, tracks ...webrtc.TrackLocal) *webrtc.RTPSender {
	c.t.Helper()
	s := c.addSender(tracks...)
	if err := c.offer(map[string]Source{tracks[0].ID(): source}); err != nil {
		c.t.Fatalf("publish: %v", err)
	}
	return s
}

// addSender adds a send-only transceiver without offering it.
func (c *client) addSender(tracks ...webrtc.TrackLocal) *webrtc.RTPSender {
	c.t.Helper()
	var s *webrtc.RTPSender
	var err error
	c.do(func() {
		var tr *webrtc.RTPTransceiver
		tr, err = c.pc.AddTransceiverFromTrack(tracks[0], webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			return
		}
		s = tr.Sender()
		for _, extra := range tracks[1:] {
			if err = s.AddEncoding(extra); err != nil {
				return
			}
		}
	})
	if err != nil {
		c.t.Fatalf("add sender: %v", err)
	}
	return s
}

// waitConnected waits until the server side of c can send media.
func (c *client) waitConnected() {
	c.t.Helper()
	wait.For(c.t, patience, "the peer to connect", c.peer.Connected)
}

// nextTrack waits for the client's next remote track (pion announces it
// with its first packet).
func (c *client) nextTrack() *webrtc.TrackRemote {
	c.t.Helper()
	return wait.Recv(c.t, c.tracks, patience, "a track at the client")
}

// nextReceiver waits for the next track the server received from c.
func (c *client) nextReceiver() *Receiver {
	c.t.Helper()
	return wait.Recv(c.t, c.recvs, patience, "a published track at the server")
}

// errTimeout is what readUntil returns when its deadline passes.
var errTimeout = errors.New("timed out")

// mediaWatch reads a client's remote track in the background and keeps
// what the test asks about, so tests wait on conditions, not sleeps.
type mediaWatch struct {
	mu      sync.Mutex
	packets int
	layers  [maxLayers + 1]int // packets per layer marker (see source)
	last    int                // layer marker of the newest packet
	bySeq   map[uint16][]byte  // payload per sequence number (when kept)
	resent  int                // packets whose sequence number was seen before
	padding int
	done    chan struct{}
}

func watch(tr *webrtc.TrackRemote, keep bool) *mediaWatch {
	w := &mediaWatch{done: make(chan struct{}), last: -1}
	if keep {
		w.bySeq = map[uint16][]byte{}
	}
	go func() {
		defer close(w.done)
		buf := make([]byte, 1500)
		for {
			n, _, err := tr.Read(buf)
			if err != nil {
				return
			}
			w.add(buf[:n])
		}
	}()
	return w
}

func (w *mediaWatch) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.packets
}

func (w *mediaWatch) lastLayer() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

func (w *mediaWatch) layerCount(l int) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.layers[l]
}
