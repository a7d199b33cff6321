package sfu

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/confab-sfu/confab/sfu/vp8"

	"github.com/confab-sfu/confab/sfu/codec"
	"github.com/confab-sfu/confab/sfu/packetcache"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// countingWriter stands in for pion's SRTP writer: it records what a
// subscriber would receive.
type countingWriter struct {
	packets int
	payload int // payload bytes
	lastSeq uint16
	lastTS  uint32
	seqs    []uint16
	twcc    []uint16 // transport-wide numbers (extension 3), when kept
	keep    bool
}

func (w *countingWriter) WriteRTP(h *rtp.Header, p []byte) (int, error) {
	w.packets++
	w.payload += len(p)
	w.lastSeq, w.lastTS = h.SequenceNumber, h.Timestamp
	if w.keep {
		w.seqs = append(w.seqs, h.SequenceNumber)
		if b := h.GetExtension(testTWCCID); len(b) == 2 {
			w.twcc = append(w.twcc, uint16(b[0])<<8|uint16(b[1]))
		}
	}
	return h.MarshalSize() + len(p), nil
}
func (w *countingWriter) Write(b []byte) (int, error) { return len(b), nil }

// testTWCCID is the transport-wide sequence number's extension id the test
// DownTracks negotiated.
const testTWCCID = 3

// newTestReceiver builds a VP8 Receiver with the given layers and n bound
// DownTracks writing to countingWriters, without any PeerConnection. Each
// subscriber numbers its packets in its own transport-wide history.
func newTestReceiver(layers, n int) (*Receiver, []*DownTrack, []*countingWriter) {
	pub := &Peer{id: "pub", closed: make(chan struct{}), log: quiet}
	r := &Receiver{id: "T1", publisher: "pub", kind: webrtc.RTPCodecTypeVideo, ck: codec.VP8,
		codec: webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}},
		peer:  pub, simulcast: layers > 1, done: make(chan struct{})}
	for i := 0; i < layers; i++ {
		l := &recvLayer{idx: int8(i), cache: packetcache.New(videoCacheSize)}
		l.lastPacket.Store(1 << 62) // always fresh
		l.lastKeyReq.Store(1 << 62) // no PLIs: there is no PeerConnection
		r.layers[i].Store(l)
	}
	var downs []*DownTrack
	var writers []*countingWriter
	for i := 0; i < n; i++ {
		sub := &Peer{id: PeerID(fmt.Sprintf("sub%d", i)), closed: make(chan struct{}), log: quiet}
		sub.connected.Store(true)
		sub.send = newSendPath()
		d := newDownTrack(r, sub)
		w := &countingWriter{}
		d.writer, d.ssrc, d.pt, d.bound = w, uint32(1000+i), 96, true
		d.out.twccID = testTWCCID
		r.addDownTrack(d)
		downs = append(downs, d)
		writers = append(writers, w)
	}
	return r, downs, writers
}

// feed sends count packets of one layer, a keyframe every keyEvery frames.
type feeder struct {
	seq [maxLayers]uint16
	ts  [maxLayers]uint32
	pid [maxLayers]uint16
}

func (f *feeder) send(r *Receiver, layer int, key bool, now int64) {
	raw, pkt := f.packet(layer, key)
	r.handlePacket(r.layers[layer].Load(), raw, pkt, now)
}

// packet builds the next packet of a layer.
func (f *feeder) packet(layer int, key bool) ([]byte, *rtp.Packet) {
	payload := vp8.Packet{PictureID: f.pid[layer], TL0PICIDX: uint8(f.pid[layer]), Start: true, Keyframe: key, Width: 320 << layer, Height: 180 << layer}.Append(nil)
	payload = append(payload, make([]byte, 1000)...)
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: f.seq[layer], Timestamp: f.ts[layer], SSRC: uint32(layer + 1), Marker: true}, Payload: payload}
	raw, _ := pkt.Marshal()
	f.seq[layer]++
	f.ts[layer] += 3000
	f.pid[layer]++
	return raw, pkt
}

func TestForwardWaitsForKeyframeAndSwitchesSeamlessly(t *testing.T) {
	r, downs, ws := newTestReceiver(3, 1)
	d, w := downs[0], ws[0]
	w.keep = true
	f := &feeder{}
	f.seq = [3]uint16{100, 30000, 65500}
	// Layer liveness is judged against the wall clock.
	now := time.Now().UnixNano()
	step := func(key [3]bool) {
		now += 33e6
		for l := 0; l < 3; l++ {
			f.send(r, l, key[l], now)
		}
	}
	step([3]bool{}) // no keyframe: nothing may be forwarded
	if w.packets != 0 {
		t.Fatalf("forwarded %d packets before any keyframe", w.packets)
	}
	step([3]bool{false, false, true})
	if d.current != 2 || w.packets != 1 {
		t.Fatalf("did not start on the top layer's keyframe: layer %d packets %d", d.current, w.packets)
	}
	for i := 0; i < 5; i++ {
		step([3]bool{})
	}
	d.SetMaxLayer(0)
	step([3]bool{})
	if d.current != 2 {
		t.Fatal("switched before a keyframe of the new layer")
	}
	step([3]bool{true, false, false})
	if d.current != 0 {
		t.Fatalf("not on low layer after its keyframe: %d", d.current)
	}
	d.SetPaused(true)
	step([3]bool{true, true, true})
	before := w.packets
	d.SetPaused(false)
	step([3]bool{true, false, false})
	if w.packets != before+1 {
		t.Fatal("resume did not restart at the keyframe")
	}
	for i := 1; i < len(w.seqs); i++ {
		if w.seqs[i] != w.seqs[i-1]+1 {
			t.Fatalf("sequence gap at %d: %v", i, w.seqs)
		}
	}
}

func TestRetransmitFromSharedCache(t *testing.T) {
	r, downs, ws := newTestReceiver(1, 2)
	f := &feeder{}
	start := time.Now()
	f.send(r, 0, true, start.UnixNano())
	for i := 0; i < 9; i++ {
		f.send(r, 0, false, start.UnixNano())
	}
	before := ws[1].packets
	lost := ws[1].lastSeq - 3
	if !downs[1].retransmit(lost, start) {
		t.Fatal("NACKed packet not resent")
	}
	if ws[1].packets != before+1 || ws[1].lastSeq != lost {
		t.Fatalf("resend not written (last seq %d, want %d)", ws[1].lastSeq, lost)
	}
	if downs[1].retransmit(ws[1].lastSeq+100, start) {
		t.Fatal("never-sent packet resent")
	}
	// A repeated NACK right away is the same request again: no resend.
	if downs[1].retransmit(lost, start.Add(10*time.Millisecond)) {
		t.Fatal("resent twice within the minimum gap")
	}
	// Later ones are answered, up to the limit per packet.
	at := start
	for i := 1; i < maxResends; i++ {
		at = at.Add(50 * time.Millisecond)
		if !downs[1].retransmit(lost, at) {
			t.Fatalf("resend %d refused", i+1)
		}
	}
	if downs[1].retransmit(lost, at.Add(50*time.Millisecond)) {
		t.Fatalf("resent more than %d times", maxResends)
	}
	// A packet that reached us too long ago is not worth sending: the
	// receiver has given up on its frame (and may reject it as a replay).
	if downs[1].retransmit(lost-1, start.Add(time.Duration(maxResendAge)+time.Millisecond)) {
		t.Fatal("resent a packet older than the age limit")
	}
	// The other subscriber's history is its own.
	if !downs[0].retransmit(ws[0].lastSeq-3, start) {
		t.Fatal("other subscriber's NACK not answered")
	}
}

// BenchmarkForward measures one incoming packet rewritten for N
// subscribers: the per-packet hot path, without SRTP and sockets.
func BenchmarkForward(b *testing.B) {
	for _, n := range []int{1, 10, 15, 16, 100} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			r, _, _ := newTestReceiver(1, n)
			pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SSRC: 1}, Payload: vp8.Packet{PictureID: 1, TL0PICIDX: 1, Start: true, Keyframe: true, Width: 320, Height: 180}.Append(nil)}
			pkt.Payload = append(pkt.Payload, make([]byte, 1100)...)
			raw, _ := pkt.Marshal()
			l := r.layers[0].Load()
			r.handlePacket(l, raw, &pkt, 1) // the keyframe that starts everyone
			pkt.Payload = vp8.Packet{PictureID: 2, TL0PICIDX: 1, Start: true}.Append(nil)
			pkt.Payload = append(pkt.Payload, make([]byte, 1100)...)
			raw, _ = pkt.Marshal()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				pkt.SequenceNumber++
				pkt.Timestamp += 3000
				r.handlePacket(l, raw, &pkt, int64(i+2))
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/subscriber")
			if l.fan != nil {
				l.fan.close()
			}
		})
	}
}

func TestParallelFanOutReachesEverySubscriber(t *testing.T) {
	n := parallelFanOut * 3
	r, _, ws := newTestReceiver(1, n)
	f := &feeder{}
	now := time.Now().UnixNano()
	f.send(r, 0, true, now)
	for i := 0; i < 50; i++ {
		f.send(r, 0, false, now+int64(i))
	}
	l := r.layers[0].Load()
	if l.fan == nil {
		t.Fatal("fan-out pool not used for many subscribers")
	}
	l.fan.close()
	for i, w := range ws {
		if w.packets != 51 {
			t.Fatalf("subscriber %d got %d packets, want 51", i, w.packets)
		}
	}
}

// udpWriter sends each packet to a loopback UDP socket, as pion's SRTP
// writer ends in a send: that syscall is most of the real cost of
// forwarding, and what the parallel fan-out spreads over the cores.
type udpWriter struct {
	conn *net.UDPConn
	buf  [maxPacketSize]byte
}

func (w *udpWriter) WriteRTP(h *rtp.Header, p []byte) (int, error) {
	n, err := h.MarshalTo(w.buf[:])
	if err != nil {
		return 0, err
	}
	n += copy(w.buf[n:], p)
	return w.conn.Write(w.buf[:n])
}
func (w *udpWriter) Write(b []byte) (int, error) { return w.conn.Write(b) }

// BenchmarkForwardUDP compares writing serially with the parallel fan-out
// when every write is a real loopback UDP send.
func BenchmarkForwardUDP(b *testing.B) {
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	for _, n := range []int{16, 100} {
		for _, parallel := range []bool{false, true} {
			b.Run(fmt.Sprintf("subscribers=%d/parallel=%v", n, parallel), func(b *testing.B) {
				saved := parallelFanOut
				defer func() { parallelFanOut = saved }()
				if !parallel {
					parallelFanOut = 1 << 30
				}
				r, downs, _ := newTestReceiver(1, n)
				for _, d := range downs {
					c, err := net.DialUDP("udp4", nil, sink.LocalAddr().(*net.UDPAddr))
					if err != nil {
						b.Fatal(err)
					}
					defer c.Close()
					d.writer = &udpWriter{conn: c}
				}
				pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SSRC: 1}, Payload: vp8.Packet{PictureID: 1, TL0PICIDX: 1, Start: true, Keyframe: true, Width: 320, Height: 180}.Append(nil)}
				pkt.Payload = append(pkt.Payload, make([]byte, 1100)...)
				raw, _ := pkt.Marshal()
				l := r.layers[0].Load()
				r.handlePacket(l, raw, &pkt, 1)
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					pkt.SequenceNumber++
					r.handlePacket(l, raw, &pkt, int64(i+2))
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/subscriber")
				if l.fan != nil {
					l.fan.close()
				}
			})
		}
	}
}
