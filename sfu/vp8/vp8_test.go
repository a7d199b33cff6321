package vp8

import (
	"errors"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// desc describes a payload for build: which descriptor fields it carries.
type desc struct {
	pid      int // -1: none; < 128 with short: 7-bit
	short    bool
	tl0      int // -1: none
	keyIdx   int // -1: none
	tid      bool
	start    bool
	part     byte // partition index
	key      bool
	w, h     uint16
	noHeader bool // keyframe whose header is not in this packet
}

// build makes a VP8 RTP payload: descriptor, then a 10-byte frame header.
func build(d desc) []byte {
	b0 := byte(d.part)
	if d.start {
		b0 |= bitS
	}
	var x byte
	var ext []byte
	if d.pid >= 0 {
		x |= bitI
		if d.short {
			ext = append(ext, byte(d.pid))
		} else {
			ext = append(ext, bitM|byte(d.pid>>8), byte(d.pid))
		}
	}
	if d.tl0 >= 0 {
		x |= bitL
		ext = append(ext, byte(d.tl0))
	}
	if d.tid || d.keyIdx >= 0 {
		var t byte
		if d.tid {
			x |= bitT
			t |= 0x40 | 0x20 // TID 1, Y
		}
		if d.keyIdx >= 0 {
			x |= bitK
			t |= byte(d.keyIdx)
		}
		ext = append(ext, t)
	}
	p := []byte{b0}
	if x != 0 {
		p[0] |= bitX
		p = append(p, x)
		p = append(p, ext...)
	}
	frame := make([]byte, frameHdr)
	if !d.key {
		frame[0] = bitP
	} else if !d.noHeader {
		frame[3], frame[4], frame[5] = 0x9d, 0x01, 0x2a
		frame[6], frame[7] = byte(d.w), byte(d.w>>8)
		frame[8], frame[9] = byte(d.h), byte(d.h>>8)
	}
	return append(p, frame...)
}

// full is a browser's usual descriptor: 15-bit picture id, TL0PICIDX, key index.
func full(pid uint16, tl0, keyIdx uint8, key bool) []byte {
	return build(desc{pid: int(pid), tl0: int(tl0), keyIdx: int(keyIdx), start: true, key: key, w: 640, h: 360})
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		p    []byte
		want Descriptor
	}{
		{"all fields, keyframe", build(desc{pid: 0x1234, tl0: 7, keyIdx: 3, tid: true, start: true, key: true, w: 1280, h: 720}),
			Descriptor{PictureID: 0x1234, PictureID15: true, TL0PICIDX: 7, KeyIdx: 3, HeaderLen: 6, Keyframe: true, Width: 1280, Height: 720,
				pidOffset: 2, tl0Offset: 4, keyIdxOffset: 5}},
		{"7-bit picture id only", build(desc{pid: 5, short: true, tl0: -1, keyIdx: -1, start: true, key: true}),
			Descriptor{PictureID: 5, HeaderLen: 3, Keyframe: true, pidOffset: 2}},
		{"largest 15-bit picture id", build(desc{pid: 0x7fff, tl0: -1, keyIdx: -1, start: true}),
			Descriptor{PictureID: 0x7fff, PictureID15: true, HeaderLen: 4, pidOffset: 2}},
		{"no extension", build(desc{pid: -1, tl0: -1, keyIdx: -1, start: true, key: true, w: 320, h: 180}),
			Descriptor{HeaderLen: 1, Keyframe: true, Width: 320, Height: 180}},
		{"TID without key index", build(desc{pid: -1, tl0: 200, keyIdx: -1, tid: true}),
			Descriptor{TL0PICIDX: 200, HeaderLen: 4, tl0Offset: 2}},
		{"delta frame", full(9, 1, 1, false),
			Descriptor{PictureID: 9, PictureID15: true, TL0PICIDX: 1, KeyIdx: 1, HeaderLen: 6, pidOffset: 2, tl0Offset: 4, keyIdxOffset: 5}},
		{"keyframe continuation (no S bit)", build(desc{pid: 1, tl0: -1, keyIdx: -1, key: true}),
			Descriptor{PictureID: 1, PictureID15: true, HeaderLen: 4, pidOffset: 2}},
		{"keyframe start of partition 1", build(desc{pid: 1, tl0: -1, keyIdx: -1, start: true, part: 1, key: true}),
			Descriptor{PictureID: 1, PictureID15: true, HeaderLen: 4, pidOffset: 2}},
		{"keyframe whose header is elsewhere", build(desc{pid: -1, tl0: -1, keyIdx: -1, start: true, key: true, noHeader: true}),
			Descriptor{HeaderLen: 1, Keyframe: true}},
		{"size uses 14 bits (scaling bits ignored)", build(desc{pid: -1, tl0: -1, keyIdx: -1, start: true, key: true, w: 0xc000 | 1920, h: 0x4000 | 1080}),
			Descriptor{HeaderLen: 1, Keyframe: true, Width: 1920, Height: 1080}},
		{"descriptor without payload", []byte{bitX | bitS, bitI, 0x05},
			Descriptor{PictureID: 5, HeaderLen: 3, pidOffset: 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.p)
			if err != nil || got != tc.want {
				t.Fatalf("Parse(%x)\n got %+v, %v\nwant %+v", tc.p, got, err, tc.want)
			}
		})
	}
}

func TestParseRefusesTruncatedDescriptors(t *testing.T) {
	for _, p := range [][]byte{
		{},
		{bitX},                         // extension byte missing
		{bitX, bitI},                   // picture id missing
		{bitX, bitI, bitM},             // second byte of a 15-bit id missing
		{bitX, bitL},                   // TL0PICIDX missing
		{bitX, bitK},                   // KEYIDX byte missing
		{bitX, bitI | bitL, 0x05},      // TL0PICIDX after a 7-bit id missing
		{bitX, bitI | bitT, bitM, 0x1}, // TID byte after a 15-bit id missing
	} {
		if d, err := Parse(p); !errors.Is(err, ErrTruncated) {
			t.Errorf("Parse(%x) = %+v, %v; want ErrTruncated", p, d, err)
		}
	}
}

func TestKeyframeSize(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    []byte
		w, h int
	}{
		{"keyframe", full(1, 1, 1, true), 640, 360},
		{"delta frame", full(1, 1, 1, false), 0, 0},
		{"continuation", build(desc{pid: 1, tl0: -1, keyIdx: -1, key: true, w: 640, h: 360}), 0, 0},
		{"short", full(1, 1, 1, true)[:12], 0, 0},
		{"empty", nil, 0, 0},
	} {
		if w, h := KeyframeSize(tc.p); w != tc.w || h != tc.h {
			t.Errorf("%s: %dx%d, want %dx%d", tc.name, w, h, tc.w, tc.h)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	p := full(0x1234, 7, 3, true)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if d, _ := Parse(p); !d.Keyframe {
			b.Fatal("not a keyframe")
		}
	}
}
