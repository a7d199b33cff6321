package sfu

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/wait"
	"github.com/confab-sfu/confab/sfu/codec"
	"github.com/confab-sfu/confab/sfu/packetcache"
	"github.com/confab-sfu/confab/sfu/vp8"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// relayWriter records what crosses a relay link: packets, sequence
// numbers, and the audio level extension of the newest packet.
type relayWriter struct {
	countingWriter
	levelID   uint8
	lastLevel byte
}

func (w *relayWriter) WriteRTP(h *rtp.Header, p []byte) (int, error) {
	if ext := h.GetExtension(w.levelID); len(ext) > 0 {
		w.lastLevel = ext[0]
	}
	return w.countingWriter.WriteRTP(h, p)
}

// newRelayedLayers adds to r one bound DownTrack pinned to each of layers,
// as a RelayOut does, writing to countingWriters.
func newRelayedLayers(r *Receiver, layers ...int8) ([]*DownTrack, []*relayWriter) {
	link := &Peer{id: "relay-out:test", closed: make(chan struct{}), log: quiet}
	link.connected.Store(true)
	var downs []*DownTrack
	var ws []*relayWriter
	for _, l := range layers {
		d := newDownTrack(r, link)
		d.pinned, d.maxLayer, d.target, d.levelOut = true, l, l, 5
		w := &relayWriter{countingWriter: countingWriter{keep: true}, levelID: 5}
		d.writer, d.ssrc, d.pt, d.bound = w, uint32(2000+int(l)), 96, true
		r.addDownTrack(d)
		downs = append(downs, d)
		ws = append(ws, w)
	}
	return downs, ws
}

// A pinned layer forwards its layer only, from its first keyframe on, with
// no gap in its numbering, and keeps it when the publisher stops sending
// it for a while (a subscriber would fall back to another layer; a relay
// must not mix layers in one section).
func TestPinnedLayerForwardsItsLayerOnly(t *testing.T) {
	r, _, _ := newTestReceiver(3, 0)
	downs, ws := newRelayedLayers(r, 0, 2)
	f := &feeder{}
	f.seq = [3]uint16{100, 30000, 65500}
	now := time.Now().UnixNano()
	for i := 0; i < 40; i++ {
		now += 20e6
		for l := 0; l < 3; l++ {
			if l == 2 && i >= 20 {
				r.layers[2].Load().lastPacket.Store(now - int64(2*layerStale)) // gone quiet
				continue
			}
			f.send(r, l, i%10 == 5, now)
		}
		r.retarget()
	}
	if ws[0].packets != 35 || ws[1].packets != 15 {
		t.Fatalf("forwarded %d and %d packets, want 35 of layer 0 and 15 of layer 2 (from their keyframes)", ws[0].packets, ws[1].packets)
	}
	for i, d := range downs {
		if d.target != d.maxLayer {
			t.Fatalf("relay layer %d retargeted to %d", d.maxLayer, d.target)
		}
		seqs := ws[i].seqs
		for j := 1; j < len(seqs); j++ {
			if seqs[j] != seqs[j-1]+1 {
				t.Fatalf("layer %d: sequence gap at %d: %v", d.maxLayer, j, seqs)
			}
		}
	}
}

// The relay path allocates nothing per packet, audio levels included.
func TestRelayForwardAllocatesNothing(t *testing.T) {
	r, _, _ := newTestReceiver(1, 0)
	_, vws := newRelayedLayers(r, 0)
	f := newFrameFeeder(r)
	now := time.Now().UnixNano()
	if a := testing.AllocsPerRun(200, func() { f.next(now) }); a != 0 {
		t.Fatalf("%v allocations per relayed video packet", a)
	}
	if vws[0].packets < 200 {
		t.Fatalf("%d video packets relayed, want every one", vws[0].packets)
	}

	audio := newTestAudioReceiver()
	_, ws := newRelayedLayers(audio, 0)
	pkt, raw := audioPacket(1)
	l := audio.layers[0].Load()
	if a := testing.AllocsPerRun(200, func() {
		pkt.SequenceNumber++
		audio.handlePacket(l, raw, &pkt, now)
	}); a != 0 {
		t.Fatalf("%v allocations per relayed audio packet", a)
	}
	if ws[0].lastLevel != 0x80|40 {
		t.Fatalf("relayed audio level %#x, want %#x", ws[0].lastLevel, 0x80|40)
	}
}

// frameFeeder sends a keyframe on every layer of r, then delta frames of
// layer 0 from one prebuilt packet, so that measurements hold the
// forwarding path alone.
type frameFeeder struct {
	r   *Receiver
	pkt rtp.Packet
	raw []byte
}

func newFrameFeeder(r *Receiver) *frameFeeder {
	now := time.Now().UnixNano()
	keys := &feeder{}
	for l := range r.layers {
		if r.layers[l].Load() != nil {
			keys.send(r, l, true, now)
		}
	}
	f := &frameFeeder{r: r}
	payload := append(vp8.Packet{PictureID: 2, TL0PICIDX: 1, KeyIdx: 0, Start: true, Keyframe: false, Width: 0, Height: 0}.Append(nil), make([]byte, 1100)...)
	f.pkt = rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: keys.seq[0], Timestamp: keys.ts[0], SSRC: 1, Marker: true}, Payload: payload}
	f.raw, _ = f.pkt.Marshal()
	return f
}

// next sends the next delta frame of layer 0.
func (f *frameFeeder) next(now int64) {
	f.r.handlePacket(f.r.layers[0].Load(), f.raw, &f.pkt, now)
	f.pkt.SequenceNumber++
	f.pkt.Timestamp += 3000
}

// newTestAudioReceiver is an Opus Receiver whose packets carry the audio
// level extension with id 1, without any PeerConnection.
func newTestAudioReceiver() *Receiver {
	pub := &Peer{id: "pub", closed: make(chan struct{}), log: quiet}
	r := &Receiver{id: "A1", publisher: "pub", kind: webrtc.RTPCodecTypeAudio, ck: codec.KindOf(webrtc.MimeTypeOpus),
		codec: webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000}},
		peer:  pub, levelExtID: 1, done: make(chan struct{})}
	l := &recvLayer{cache: packetcache.New(audioCacheSize)}
	l.lastPacket.Store(1 << 62)
	r.layers[0].Store(l)
	return r
}

// audioPacket is an Opus packet at level 40 dBov with voice activity.
func audioPacket(seq uint16) (rtp.Packet, []byte) {
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seq, SSRC: 7}, Payload: audioPayload(int(seq))}
	_ = pkt.SetExtension(1, []byte{0x80 | 40})
	raw, _ := pkt.Marshal()
	return pkt, raw
}

// BenchmarkRelayForward measures one incoming packet forwarded to the
// layers relayed to other nodes (one link each), next to local
// subscribers: the per-packet cost a relay adds on the publisher's node.
func BenchmarkRelayForward(b *testing.B) {
	for _, links := range []int{1, 2, 8} {
		b.Run(fmt.Sprintf("links=%d", links), func(b *testing.B) {
			r, _, _ := newTestReceiver(3, 0)
			for i := 0; i < links; i++ {
				_, ws := newRelayedLayers(r, 0, 1, 2)
				for _, w := range ws {
					w.keep = false
				}
			}
			f := newFrameFeeder(r)
			now := time.Now().UnixNano()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				f.next(now)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(links), "ns/link")
		})
	}
}

// The relay counters reach /metrics by remote node and direction, and
// stay after the link closes.
func TestRelayMetricsByNode(t *testing.T) {
	checkLeaks(t)
	a, b := newTestEngine(t), newTestEngine(t)
	pub := newClient(t, a, clientOpts{})
	publishSource(t, pub, newSource(t, "cam", false), "camera")
	rA := pub.nextReceiver()
	node := NewID("N")
	in, err := b.NewRelayIn(RelayParams{Node: node + "-a", Logger: quiet, OnTrack: func(*Receiver) {}})
	if err != nil {
		t.Fatal(err)
	}
	var out *RelayOut
	out, err = a.NewRelayOut(RelayParams{Node: node + "-b", Logger: quiet, OnOffer: func(o RelayOffer) {
		ans, err := in.HandleOffer(t.Context(), o)
		if err == nil {
			err = out.HandleAnswer(ans)
		}
		if err != nil {
			t.Errorf("relay exchange: %v", err)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := out.Send(rA, []int{0}); err != nil {
		t.Fatal(err)
	}
	wait.For(t, patience, "packets across the link", func() bool { return in.Stats().Packets >= 20 })

	metric := func(name, node, dir string) float64 { t.Helper(); return gathered(t, name, node, dir) }
	if v := metric("confab_relay_tracks", node+"-b", "out"); v != 1 {
		t.Fatalf("confab_relay_tracks out %v, want 1", v)
	}
	if v := metric("confab_relay_tracks", node+"-a", "in"); v != 1 {
		t.Fatalf("confab_relay_tracks in %v, want 1", v)
	}
	if v := metric("confab_relay_packets_total", node+"-a", "in"); v < 20 {
		t.Fatalf("confab_relay_packets_total in %v, want at least 20", v)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	if err := in.Close(); err != nil {
		t.Fatal(err)
	}
	sent, _ := a.RelayTotals(node + "-b")
	if v := metric("confab_relay_packets_total", node+"-b", "out"); v != float64(sent.Packets) || v < 20 {
		t.Fatalf("confab_relay_packets_total out after close %v, engine total %d", v, sent.Packets)
	}
	if v := metric("confab_relay_links", node+"-b", "out"); v != 0 {
		t.Fatalf("confab_relay_links out after close %v, want 0", v)
	}
	if v := metric("confab_relay_bytes_total", node+"-b", "out"); v != float64(sent.Bytes) {
		t.Fatalf("confab_relay_bytes_total out %v, engine total %d", v, sent.Bytes)
	}
}

// gathered reads one relay metric from the default gatherer, as /metrics
// does.
func gathered(t *testing.T, name, node, dir string) float64 {
	t.Helper()
	want := fmt.Sprintf(`direction="%s",node="%s"`, dir, node)
	if dir == "" {
		want = fmt.Sprintf(`node="%s"`, node)
	}
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, lp := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf(`%s="%s"`, lp.GetName(), lp.GetValue()))
			}
			if strings.Join(labels, ",") != want {
				continue
			}
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no %s{%s}", name, want)
	return 0
}

// A layer counts the sequence numbers it skips, not late, repeated or
// reordered packets, across the 16-bit wrap.
func TestNoteSeqCountsSkippedPackets(t *testing.T) {
	l := &recvLayer{}
	for _, seq := range []uint16{65530, 65531, 65533, 65532, 65533, 2, 1, 3, 3} {
		l.noteSeq(seq)
	}
	// Skipped: 65532 (came late), 65534, 65535, 0, 1 (came late).
	if got := l.gaps.Load(); got != 5 {
		t.Fatalf("%d skipped, want 5", got)
	}
}

// A relayed layer keeps the cumulative loss the other node reports for its
// SSRC, and only for it.
func TestRelayLossFromReceiverReports(t *testing.T) {
	r, _, _ := newTestReceiver(1, 0)
	downs, _ := newRelayedLayers(r, 0)
	d := downs[0]
	d.noteReport(&rtcp.ReceiverReport{Reports: []rtcp.ReceptionReport{{SSRC: 99, TotalLost: 5}, {SSRC: d.ssrc, TotalLost: 7}}})
	d.noteReport(&rtcp.ReceiverReport{Reports: []rtcp.ReceptionReport{{SSRC: 99, TotalLost: 50}}})
	if got := downTrackRelayStats(d).Lost; got != 7 {
		t.Fatalf("lost %d, want the 7 reported for the layer's SSRC", got)
	}
}

// twoVideoSections is an offer with two sending video sections and one
// audio section that only receives.
const twoVideoSections = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=sendonly\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=sendonly\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:2\r\na=recvonly\r\n"

// The sections of one track must describe it alike, with distinct layers.
func TestValidateRelayOfferAcrossSections(t *testing.T) {
	parsed := &sdp.SessionDescription{}
	if err := parsed.UnmarshalString(twoVideoSections); err != nil {
		t.Fatal(err)
	}
	video := RelaySection{Track: "T1", Publisher: "P1", Stream: "P1", Kind: "video", Source: "camera",
		Codec: RelayCodec{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, Simulcast: true}
	layer := func(s RelaySection, l int) RelaySection { s.Layer = l; return s }
	other := layer(video, 2)
	other.Publisher = "P2"
	audio := RelaySection{Track: "A1", Publisher: "P1", Kind: "audio", Codec: RelayCodec{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000}}
	for _, tc := range []struct {
		name     string
		sections map[string]RelaySection
		ok       bool
	}{
		{"two layers of one track", map[string]RelaySection{"0": layer(video, 0), "1": layer(video, 2)}, true},
		{"one layer twice", map[string]RelaySection{"0": layer(video, 1), "1": layer(video, 1)}, false},
		{"one track, two publishers", map[string]RelaySection{"0": layer(video, 0), "1": other}, false},
		{"a section that only receives", map[string]RelaySection{"0": layer(video, 0), "1": layer(video, 1), "2": audio}, false},
		{"a sending section left out", map[string]RelaySection{"0": layer(video, 0)}, false},
	} {
		err := validateRelayOffer(RelayOffer{SDP: twoVideoSections, Sections: tc.sections}, parsed)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrInvalidRelayOffer)) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}
