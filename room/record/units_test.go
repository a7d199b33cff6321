package record

import (
	"testing"
	"time"

	"github.com/confab-sfu/confab/sfu/vp8"
	"github.com/pion/rtp"
)

func pkt(seq uint16, ts uint32, marker bool) *rtp.Packet {
	return &rtp.Packet{Header: rtp.Header{SequenceNumber: seq, Timestamp: ts, SSRC: 1, Marker: marker}, Payload: []byte{byte(seq)}}
}

func TestRecordJitterBuffer(t *testing.T) {
	const ms = int64(1_000_000)
	type step struct {
		push    uint16 // 0: none
		now     int64
		want    []uint16 // released in order; 0 marks a loss
		wantRes pushResult
	}
	cases := []struct {
		name  string
		first uint16
		steps []step
	}{
		{"in order", 10, []step{{10, 0, []uint16{10}, pushed}, {11, 1, []uint16{11}, pushed}}},
		{"reordered", 10, []step{{10, 0, []uint16{10}, pushed}, {12, 1, nil, pushed}, {11, 2, []uint16{11, 12}, pushed}}},
		{"retransmission in time", 10, []step{{10, 0, []uint16{10}, pushed}, {12, 1 * ms, nil, pushed}, {13, 300 * ms, nil, pushed}, {11, 390 * ms, []uint16{11, 12, 13}, pushed}}},
		{"hole given up after the delay", 10, []step{{10, 0, []uint16{10}, pushed}, {12, 1 * ms, nil, pushed}, {13, 401 * ms, []uint16{0, 12, 13}, pushed}, {11, 402 * ms, nil, pushLate}}},
		{"duplicate", 10, []step{{10, 0, []uint16{10}, pushed}, {10, 1, nil, pushLate}}},
		{"wrap", 65534, []step{{65534, 0, []uint16{65534}, pushed}, {0, 1, nil, pushed}, {65535, 2, []uint16{65535, 0}, pushed}}},
		{"jump is a new stream", 10, []step{{10, 0, []uint16{10}, pushed}, {5000, 1, nil, pushNewStream}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			j := newJitterBuffer(64, 400*ms)
			for i, s := range c.steps {
				if res := j.push(pkt(s.push, 0, false), s.now); res != s.wantRes {
					t.Fatalf("step %d: push %d: %v, want %v", i, s.push, res, s.wantRes)
				}
				var got []uint16
				for {
					sl, lost, ok := j.pop(s.now, false)
					if !ok {
						break
					}
					if lost {
						got = append(got, 0)
					} else {
						got = append(got, sl.seq)
					}
				}
				if len(got) != len(s.want) {
					t.Fatalf("step %d: released %v, want %v", i, got, s.want)
				}
				for k := range got {
					if got[k] != s.want[k] {
						t.Fatalf("step %d: released %v, want %v", i, got, s.want)
					}
				}
			}
		})
	}
}

func TestRecordClock(t *testing.T) {
	const ms = int64(1_000_000)
	type packet struct {
		ssrc    uint32
		ts      uint32
		arrival int64
		want    int64 // the frame's time; -1: not a frame's end
	}
	cases := []struct {
		name    string
		packets []packet
	}{
		{"follows RTP time, not jitter", []packet{{1, 1000, 100 * ms, 100 * ms}, {1, 4000, 150 * ms, 133333333}, {1, 7000, 175 * ms, 166666666}}},
		{"a retransmitted first packet does not move the clock", []packet{
			{1, 3000, 133333333, -1}, // the keyframe's first packet was lost; the frame after it came in time
			{1, 0, 250 * ms, 100 * ms}, {1, 3000, 251 * ms, 133333333}}},
		{"timestamp wrap", []packet{{1, 0xffffff00, 0, 0}, {1, 8744, 100 * ms, 100 * ms}}},
		{"new SSRC re-anchors on arrival", []packet{{1, 5000, 0, 0}, {2, 99999, 40 * ms, 40 * ms}, {2, 99999 + 900, 50 * ms, 50 * ms}}},
		{"pause with a running clock", []packet{{1, 0, 0, 0}, {1, 90000 * 3, 3010 * ms, 3000 * ms}}},
		{"pause with a frozen clock", []packet{{1, 0, 0, 0}, {1, 3000, 3000 * ms, 3000 * ms}, {1, 6000, 3040 * ms, 3033333333}}},
		{"never backwards", []packet{{1, 9000, 0, 0}, {1, 6000, 10 * ms, 1 * ms}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clk := mediaClock{rate: 90000}
			for i, p := range c.packets {
				clk.observe(p.ssrc, p.ts, p.arrival)
				if p.want < 0 {
					continue
				}
				if got := clk.pts(p.ts); got != p.want {
					t.Errorf("packet %d: %d ns, want %d", i, got, p.want)
				}
			}
		})
	}
}

func TestRecordH264Depacketizer(t *testing.T) {
	// SPS of x264 baseline 640x360 and a PPS, then an IDR split into FU-A.
	sps := []byte{0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x0f, 0x16, 0x2e, 0x48}
	pps := []byte{0x68, 0xcb, 0x83, 0xcb, 0x20}
	stap := []byte{24, 0, byte(len(sps))}
	stap = append(append(stap, sps...), 0, byte(len(pps)))
	stap = append(stap, pps...)
	idr := []byte{0x65, 1, 2, 3, 4, 5, 6}
	fuStart := append([]byte{0x7c, 0x80 | 5}, idr[1:4]...)
	fuEnd := append([]byte{0x7c, 0x40 | 5}, idr[4:]...)
	d := &h264Depacketizer{}
	pool := newFramePool(4)
	f := pool.get()
	if !d.begins(stap) {
		t.Fatal("STAP-A does not begin a frame")
	}
	for _, p := range [][]byte{stap, fuStart, fuEnd} {
		if err := d.add(f, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.finish(f); err != nil || !f.key || f.width != 640 || f.height != 360 || len(f.config) == 0 {
		t.Fatalf("finish: %v, key %v, %dx%d, config %x", err, f.key, f.width, f.height, f.config)
	}
	want := []byte{0, 0, 0, byte(len(sps))}
	want = append(append(want, sps...), 0, 0, 0, byte(len(pps)))
	want = append(append(want, pps...), 0, 0, 0, byte(len(idr)))
	want = append(want, idr...)
	if string(f.data) != string(want) {
		t.Fatalf("sample\n%x\nwant\n%x", f.data, want)
	}
	// A FU-A middle without its start is a broken frame.
	d.reset()
	g := pool.get()
	if d.begins(fuEnd) {
		t.Error("a FU-A end begins a frame")
	}
	if err := d.add(g, fuEnd); err == nil {
		t.Error("a FU-A end without a start was taken")
	}
}

// A padding-only packet (a browser probing its bandwidth on the video
// SSRC, no RTX negotiated) is in sequence but carries no media: it is
// neither a lost frame start nor a reason to ask for a keyframe.
func TestRecordPaddingBetweenFrames(t *testing.T) {
	rec, errs := newTestRecording(t, RecordingParams{})
	r, err := rec.NewRecorder(RecorderParams{ParticipantID: "p", Source: SourceCamera, Video: vp8Codec, RequestKeyframe: func() {}})
	if err != nil {
		t.Fatal(err)
	}
	frame := func(seq uint16, key bool) *rtp.Packet {
		p := vp8.Packet{PictureID: seq, Start: true, Keyframe: key, Width: 320, Height: 180}.Append(nil)
		p = append(p, make([]byte, 100)...)
		return &rtp.Packet{Header: rtp.Header{SequenceNumber: seq, Timestamp: uint32(seq) * 90000, SSRC: 1, Marker: true}, Payload: p}
	}
	at := rec.Start()
	for seq := uint16(0); seq < 20; seq++ {
		p := frame(seq, seq == 0)
		if seq%2 == 1 {
			// A second apart: keyframe requests are not throttled away.
			p = &rtp.Packet{Header: rtp.Header{SequenceNumber: seq, Timestamp: uint32(seq-1) * 90000, SSRC: 1, Padding: true, PaddingSize: 255}}
		}
		r.Video().WriteRTP(p, at)
		at = at.Add(time.Second)
	}
	if n := r.Video().KeyframeRequests(); n != 1 {
		t.Errorf("%d keyframe requests, want the one at the start", n)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := rec.Close(); err != nil || len(errs.list()) > 0 {
		t.Fatal(err, errs.list())
	}
	if m := rec.Manifest(); m.Files[0].State != FileDone || m.Files[0].DurationMS < 17000 {
		t.Fatalf("manifest %+v: want a done file of 18 s", m.Files[0])
	}
}
