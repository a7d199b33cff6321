package sfu

import "testing"

// vp8Packet builds a payload: descriptor with 15-bit picture id, TL0PICIDX
// and KEYIDX, then a VP8 frame header.
func vp8Packet(pid uint16, tl0, keyIdx uint8, start, key bool, w, h uint16) []byte {
	b0 := byte(0x80) // X
	if start {
		b0 |= 0x10
	}
	p := []byte{b0, 0x80 | 0x40 | 0x10, 0x80 | byte(pid>>8), byte(pid), tl0, 0x20 | keyIdx}
	frame := make([]byte, 10)
	if !key {
		frame[0] = 0x01
	} else {
		frame[3], frame[4], frame[5] = 0x9d, 0x01, 0x2a
		frame[6], frame[7] = byte(w), byte(w>>8)
		frame[8], frame[9] = byte(h), byte(h>>8)
	}
	return append(p, frame...)
}

func TestParseVP8(t *testing.T) {
	d, ok := parseVP8(vp8Packet(0x1234, 7, 3, true, true, 1280, 720))
	if !ok || !d.keyframe || d.pictureID != 0x1234 || !d.pid15 || d.tl0 != 7 || d.keyIdx != 3 || d.width != 1280 || d.height != 720 {
		t.Fatalf("parsed %+v ok=%v", d, ok)
	}
	if d, _ := parseVP8(vp8Packet(1, 1, 1, false, true, 0, 0)); d.keyframe {
		t.Fatal("continuation packet taken for a keyframe start")
	}
	if d, _ := parseVP8(vp8Packet(1, 1, 1, true, false, 0, 0)); d.keyframe {
		t.Fatal("delta frame taken for a keyframe")
	}
	for _, bad := range [][]byte{{}, {0x80}, {0x80, 0x80}, {0x80, 0x80, 0x80}} {
		if _, ok := parseVP8(bad); ok {
			t.Fatalf("truncated descriptor %x accepted", bad)
		}
	}
	// 7-bit picture id, no extension fields.
	d, ok = parseVP8([]byte{0x90, 0x80, 0x05, 0x00, 0, 0})
	if !ok || d.pid15 || d.pictureID != 5 || !d.keyframe {
		t.Fatalf("7-bit: %+v %v", d, ok)
	}
}

func TestVP8MungerContinuesAcrossSwitch(t *testing.T) {
	var m vp8Munger
	// Layer A: pictures 100..104.
	for i := uint16(0); i < 5; i++ {
		p := vp8Packet(100+i, 20+uint8(i), 4, true, i == 0, 320, 180)
		d, _ := parseVP8(p)
		if i == 0 {
			m.startSegment(&d)
		}
		m.sent(&d)
	}
	// Switch to layer B whose numbering is elsewhere, incl. 15-bit wrap.
	for i := uint16(0); i < 3; i++ {
		p := vp8Packet((0x7ffe+i)&0x7fff, 250+uint8(i), 30, true, i == 0, 1280, 720)
		d, _ := parseVP8(p)
		if i == 0 {
			m.startSegment(&d)
		}
		if !m.needsRewrite() {
			t.Fatal("switch needs rewriting")
		}
		m.rewrite(p, &d)
		got, _ := parseVP8(p)
		if got.pictureID != 105+i || got.tl0 != 25+uint8(i) || got.keyIdx != 5 {
			t.Fatalf("picture %d: pid %d tl0 %d keyidx %d", i, got.pictureID, got.tl0, got.keyIdx)
		}
		m.sent(&d)
	}
}
