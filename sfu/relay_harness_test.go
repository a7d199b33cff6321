package sfu

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/wait"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	transport "github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
	"github.com/pion/webrtc/v4"
)

// Relay tests run two Engines in one process, "node A" with the publisher
// and "node B" with the subscriber, and wire A's RelayOut to B's RelayIn
// with direct calls where the cluster would use NATS. Offers go through
// JSON on the way, as they do between nodes.

// relayPair is a RelayOut on A and the RelayIn on B it feeds.
type relayPair struct {
	t         *testing.T
	out       *RelayOut
	in        *RelayIn
	tracks    chan *Receiver  // B's OnTrack
	pending   chan RelayOffer // manual pairs: offers the test answers
	outFailed chan error      // A's OnFailed
	inFailed  chan error      // B's OnFailed
	mu        sync.Mutex
	offers    int
}

// newRelayPair links a to b; a manual pair leaves offers to the test.
func newRelayPair(t *testing.T, a, b *Engine, manual bool) *relayPair {
	t.Helper()
	p := &relayPair{t: t, tracks: make(chan *Receiver, 16), pending: make(chan RelayOffer, 16),
		outFailed: make(chan error, 1), inFailed: make(chan error, 1)}
	var err error
	p.in, err = b.NewRelayIn(RelayParams{Node: "node-a", Logger: quiet,
		OnTrack:  func(r *Receiver) { p.tracks <- r },
		OnFailed: func(err error) { p.inFailed <- err }})
	if err != nil {
		t.Fatal(err)
	}
	p.out, err = a.NewRelayOut(RelayParams{Node: "node-b", Logger: quiet,
		OnOffer:  func(o RelayOffer) { p.onOffer(o, manual) },
		OnFailed: func(err error) { p.outFailed <- err }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.out.Close(); err != nil {
			t.Errorf("close relay out: %v", err)
		}
		if err := p.in.Close(); err != nil {
			t.Errorf("close relay in: %v", err)
		}
	})
	return p
}

func (p *relayPair) onOffer(o RelayOffer, manual bool) {
	p.mu.Lock()
	p.offers++
	p.mu.Unlock()
	raw, err := json.Marshal(o)
	if err != nil {
		p.t.Errorf("encode relay offer: %v", err)
		return
	}
	var got RelayOffer
	if err := json.Unmarshal(raw, &got); err != nil {
		p.t.Errorf("decode relay offer: %v", err)
		return
	}
	if manual {
		p.pending <- got
		return
	}
	if err := p.exchange(got); err != nil {
		p.t.Errorf("relay exchange: %v", err)
	}
}

// exchange hands an offer to B and B's answer to A.
func (p *relayPair) exchange(o RelayOffer) error {
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	answer, err := p.in.HandleOffer(ctx, o)
	if err != nil {
		return err
	}
	return p.out.HandleAnswer(answer)
}

func (p *relayPair) offerCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.offers
}

// nextTrack waits for the next track B announces.
func (p *relayPair) nextTrack() *Receiver {
	p.t.Helper()
	return wait.Recv(p.t, p.tracks, patience, "a relayed track on node B")
}

// tapNet is the network of node A's engine: it counts the RTP packets A
// sends per SSRC and can lose some on the way. SRTP leaves the RTP header
// in the clear, so the tap reads sequence numbers and SSRCs as a router
// would.
type tapNet struct {
	*stdnet.Net
	mu      sync.Mutex
	sent    map[uint32]int
	lossy   uint32          // SSRC to lose packets of (0: none)
	every   int             // lose the first sending of every n-th packet
	left    int             // losses still to make
	seen    map[uint16]bool // sequence numbers of lossy sent at least once
	dropped []uint16
}

func (n *tapNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	return &tapConn{UDPConn: c, tap: n}, nil
}

type tapConn struct {
	transport.UDPConn
	tap *tapNet
}

func (c *tapConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if c.tap.pass(b) {
		return c.UDPConn.WriteTo(b, addr)
	}
	return len(b), nil
}

// pass counts an outgoing datagram and decides whether it goes out.
func (n *tapNet) pass(b []byte) bool {
	// RTP and RTCP start with version 2; RTCP packet types are 192..223.
	if len(b) < 12 || b[0]>>6 != 2 || (b[1] >= 192 && b[1] <= 223) {
		return true
	}
	ssrc := binary.BigEndian.Uint32(b[8:12])
	seq := binary.BigEndian.Uint16(b[2:4])
	n.mu.Lock()
	defer n.mu.Unlock()
	n.sent[ssrc]++
	if ssrc != n.lossy || n.left == 0 {
		return true
	}
	first := !n.seen[seq]
	n.seen[seq] = true
	if first && int(seq)%n.every == 0 {
		n.left--
		n.dropped = append(n.dropped, seq)
		return false
	}
	return true
}

// lose drops the first sending of every n-th packet of ssrc, count times.
func (n *tapNet) lose(ssrc uint32, every, count int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.lossy, n.every, n.left, n.seen = ssrc, every, count, map[uint16]bool{}
}

func (n *tapNet) droppedCount() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.dropped)
}

// sentBySSRC returns the RTP packets sent so far per SSRC.
func (n *tapNet) sentBySSRC() map[uint32]int {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make(map[uint32]int, len(n.sent))
	for k, v := range n.sent {
		out[k] = v
	}
	return out
}

// newTapEngine is a loopback engine whose traffic goes through a tapNet.
func newTapEngine(t *testing.T) (*Engine, *tapNet) {
	t.Helper()
	e := newTestEngine(t)
	sn, err := stdnet.NewNet()
	if err != nil {
		t.Fatal(err)
	}
	tap := &tapNet{Net: sn, sent: map[uint32]int{}}
	m := &webrtc.MediaEngine{}
	if err := registerCodecs(m); err != nil {
		t.Fatal(err)
	}
	ir, err := newInterceptors(&e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	se, err := newSettingEngine(&e.cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	se.SetNet(tap)
	e.api = &apiParts{media: m, interceptors: ir, settings: se,
		shared: webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))}
	return e, tap
}

// publishSource publishes a single-stream source from c and returns its
// sender, whose RTCP the test can read.
func publishSource(t *testing.T, c *client, s *source, kind Source) *webrtc.RTPSender {
	t.Helper()
	sender := c.publish(kind, s.locals()...)
	go s.run()
	t.Cleanup(func() {
		close(s.stop)
		<-s.done
	})
	return sender
}

// countPLIs reads a publisher's RTCP until its sender stops and counts
// the keyframe requests.
func countPLIs(s *webrtc.RTPSender) func() int {
	var mu sync.Mutex
	n := 0
	go func() {
		for {
			pkts, _, err := s.ReadRTCP()
			if err != nil {
				return
			}
			for _, p := range pkts {
				switch p.(type) {
				case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
					mu.Lock()
					n++
					mu.Unlock()
				}
			}
		}
	}()
	return func() int {
		mu.Lock()
		defer mu.Unlock()
		return n
	}
}

// audioSource publishes Opus-shaped packets every 20 ms with the audio
// level header extension, as a browser's microphone does.
type audioSource struct {
	track *webrtc.TrackLocalStaticRTP
	level uint8 // dBov, 0 loudest .. 127 silent
	extID uint8
	stop  chan struct{}
	done  chan struct{}
}

func newAudioSource(t *testing.T, id string, level uint8) *audioSource {
	t.Helper()
	tr, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, id, "stream-"+id)
	if err != nil {
		t.Fatal(err)
	}
	return &audioSource{track: tr, level: level, stop: make(chan struct{}), done: make(chan struct{})}
}

// audioPayload is packet n's payload: its number, then filler.
func audioPayload(n int) []byte {
	p := binary.BigEndian.AppendUint32(nil, uint32(n))
	return append(p, bytes.Repeat([]byte{0x5a}, 60)...)
}

func (a *audioSource) publish(t *testing.T, c *client) {
	t.Helper()
	sender := c.publish("microphone", a.track)
	c.do(func() { a.extID = audioLevelID(sender.GetParameters().HeaderExtensions) })
	if a.extID == 0 {
		t.Fatal("audio level extension not negotiated")
	}
	go a.run()
	t.Cleanup(func() {
		close(a.stop)
		<-a.done
	})
}

func (a *audioSource) run() {
	defer close(a.done)
	tick := time.NewTicker(sourcePace)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-a.stop:
			return
		case <-tick.C:
		}
		p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: uint16(n),
			Timestamp: uint32(n) * 960}, Payload: audioPayload(n)}
		_ = p.SetExtension(a.extID, []byte{0x80 | a.level}) // voice activity flag set
		_ = a.track.WriteRTP(p)
	}
}

// framePayload is what the source sent for the VP8 packet whose payload
// is p: its picture id is the frame number.
func framePayload(s *source, p []byte) []byte {
	if len(p) <= vp8HdrLen {
		return nil
	}
	n := int(p[2]&0x7f)<<8 | int(p[3])
	return s.packet(int(p[vp8HdrLen]), 0, n).Payload
}

// cachedPayloadsMatch checks every packet in the cache of each of r's
// layers against what the source sent, and that each layer holds the
// publisher's layer of that index. It returns how many it checked.
func cachedPayloadsMatch(t *testing.T, r *Receiver, s *source) int {
	t.Helper()
	checked := 0
	buf := make([]byte, maxPacketSize)
	var pkt rtp.Packet
	for i := range r.layers {
		l := r.layers[i].Load()
		if l == nil {
			continue
		}
		for seq := 0; seq < 1<<16; seq++ {
			n, _ := l.cache.Get(uint16(seq), buf)
			if n == 0 || pkt.Unmarshal(buf[:n]) != nil {
				continue
			}
			if got := int(pkt.Payload[vp8HdrLen]); got != i {
				t.Fatalf("layer %d of the relayed track holds a packet of layer %d", i, got)
			}
			if !bytes.Equal(pkt.Payload, framePayload(s, pkt.Payload)) {
				t.Fatalf("relayed payload of layer %d seq %d differs from what the publisher sent", i, seq)
			}
			checked++
		}
	}
	return checked
}
