package sfu

import "testing"

func TestKeyframeDetection(t *testing.T) {
	tests := []struct {
		name string
		k    codecKind
		p    []byte
		want bool
	}{
		{"h264 idr", codecH264, []byte{0x65, 0}, true},
		{"h264 sps", codecH264, []byte{0x67, 0}, true},
		{"h264 non-idr", codecH264, []byte{0x41, 0}, false},
		{"h264 stap-a with sps", codecH264, []byte{0x78, 0, 2, 0x67, 0, 0, 2, 0x68, 0}, true},
		{"h264 stap-a without", codecH264, []byte{0x78, 0, 2, 0x41, 0}, false},
		{"h264 stap-a truncated", codecH264, []byte{0x78, 0, 9, 0x67}, false},
		{"h264 fu-a idr start", codecH264, []byte{0x7c, 0x85}, true},
		{"h264 fu-a idr middle", codecH264, []byte{0x7c, 0x05}, false},
		{"vp9 key start", codecVP9, []byte{0x08}, true},
		{"vp9 inter", codecVP9, []byte{0x48}, false},
		{"av1 new sequence", codecAV1, []byte{0x18}, true},
		{"av1 continuation", codecAV1, []byte{0x98}, false},
		{"vp8 key", codecVP8, vp8Packet(1, 1, 1, true, true, 2, 2), true},
		{"empty", codecH264, nil, false},
	}
	for _, tc := range tests {
		if got := isKeyframeStart(tc.k, tc.p); got != tc.want {
			t.Errorf("%s: got %v want %v", tc.name, got, tc.want)
		}
	}
}

func TestLayerIndexOfRID(t *testing.T) {
	lmh := []string{"l", "m", "h"}
	qhf := []string{"q", "h", "f"}
	cases := []struct {
		rid  string
		all  []string
		want int8
	}{
		{"l", lmh, 0}, {"m", lmh, 1}, {"h", lmh, 2},
		{"q", qhf, 0}, {"h", qhf, 1}, {"f", qhf, 2},
		{"b", []string{"a", "b"}, 1}, {"", nil, 0},
	}
	for _, c := range cases {
		if got := layerIndexOfRID(c.rid, c.all); got != c.want {
			t.Errorf("rid %q of %v: got %d want %d", c.rid, c.all, got, c.want)
		}
	}
}
