package vp8

import "testing"

// What Append builds, Parse reads back.
func TestPacketRoundTrip(t *testing.T) {
	for _, p := range []Packet{
		{PictureID: 0x7fff, TL0PICIDX: 255, KeyIdx: 31, Start: true, Keyframe: true, Width: 1280, Height: 720},
		{PictureID: 1, TL0PICIDX: 2, KeyIdx: 3, Start: true},
		{PictureID: 300, TL0PICIDX: 9, KeyIdx: 4},
	} {
		b := p.Append([]byte{0xee}) // appends, leaving what was there
		if b[0] != 0xee {
			t.Fatalf("%+v: Append overwrote dst", p)
		}
		d, err := Parse(b[1:])
		if err != nil {
			t.Fatalf("%+v: %v", p, err)
		}
		if d.PictureID != p.PictureID || !d.PictureID15 || d.TL0PICIDX != p.TL0PICIDX || d.KeyIdx != p.KeyIdx ||
			!d.HasPictureID() || !d.HasTL0PICIDX() || !d.HasKeyIdx() || d.HeaderLen != 6 {
			t.Errorf("%+v: parsed %+v", p, d)
		}
		key := p.Start && p.Keyframe
		if d.Keyframe != key || (key && (d.Width != p.Width || d.Height != p.Height)) {
			t.Errorf("%+v: keyframe %v %dx%d", p, d.Keyframe, d.Width, d.Height)
		}
		if w, h := KeyframeSize(b[1:]); key && (w != int(p.Width) || h != int(p.Height)) {
			t.Errorf("%+v: KeyframeSize %dx%d", p, w, h)
		}
	}
}
