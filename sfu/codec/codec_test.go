package codec

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestKindOf(t *testing.T) {
	for _, tc := range []struct {
		mime string
		want Kind
	}{
		{"audio/opus", Opus}, {"audio/OPUS", Opus}, {"video/VP8", VP8}, {"video/vp8", VP8},
		{"video/VP9", VP9}, {"video/H264", H264}, {"video/AV1", AV1},
		{"audio/PCMU", Other}, {"", Other}, {"video/H265", Other},
	} {
		if got := KindOf(tc.mime); got != tc.want {
			t.Errorf("KindOf(%q) = %d, want %d", tc.mime, got, tc.want)
		}
	}
}

func TestIsKeyframe(t *testing.T) {
	vp8Key := []byte{0x90, 0x80, 0x81, 0x02, 0x00, 0, 0, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xb4, 0x00}
	vp8Delta := []byte{0x90, 0x80, 0x81, 0x02, 0x01, 0, 0}
	tests := []struct {
		name string
		k    Kind
		p    []byte
		want bool
	}{
		{"h264 idr", H264, []byte{0x65, 0}, true},
		{"h264 sps", H264, []byte{0x67, 0}, true},
		{"h264 non-idr slice", H264, []byte{0x41, 0}, false},
		{"h264 stap-a with sps", H264, []byte{0x78, 0, 2, 0x67, 0, 0, 2, 0x68, 0}, true},
		{"h264 stap-a with idr second", H264, []byte{0x78, 0, 2, 0x68, 0, 0, 2, 0x65, 0}, true},
		{"h264 stap-a without", H264, []byte{0x78, 0, 2, 0x41, 0}, false},
		{"h264 stap-a truncated", H264, []byte{0x78, 0, 9, 0x67}, false},
		{"h264 stap-a zero size", H264, []byte{0x78, 0, 0, 0x67, 0}, false},
		{"h264 fu-a idr start", H264, []byte{0x7c, 0x85}, true},
		{"h264 fu-a idr middle", H264, []byte{0x7c, 0x05}, false},
		{"h264 fu-a header missing", H264, []byte{0x7c}, false},
		{"h264 empty", H264, nil, false},
		{"vp8 keyframe", VP8, vp8Key, true},
		{"vp8 delta", VP8, vp8Delta, false},
		{"vp8 truncated", VP8, []byte{0x80}, false},
		{"vp9 key start", VP9, []byte{0x08}, true},
		{"vp9 inter", VP9, []byte{0x48}, false},
		{"vp9 not a start", VP9, []byte{0x00}, false},
		{"vp9 empty", VP9, nil, false},
		{"av1 new sequence", AV1, []byte{0x18}, true},
		{"av1 continuation", AV1, []byte{0x98}, false},
		{"av1 empty", AV1, nil, false},
		{"opus: any packet", Opus, []byte{0xfc}, true},
		{"unknown codec: any packet", Other, nil, true},
	}
	for _, tc := range tests {
		if got := IsKeyframe(tc.k, tc.p); got != tc.want {
			t.Errorf("%s: got %v want %v", tc.name, got, tc.want)
		}
	}
}

func BenchmarkIsKeyframe(b *testing.B) {
	stap := []byte{0x78, 0, 2, 0x68, 0, 0, 2, 0x65, 0}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if !IsKeyframe(H264, stap) {
			b.Fatal("missed")
		}
	}
}
