package record

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/rtp/codecs/vp9"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
)

// encode makes a 4 s, 30 fps test picture with a keyframe every 2 s with
// ffmpeg's encoder args into a file of format, and returns its path.
func encode(t *testing.T, size, format string, args ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "video."+format)
	cmd := append([]string{"-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=" + size + ":rate=30", "-t", "4", "-g", "60", "-pix_fmt", "yuv420p"}, args...)
	cmd = append(cmd, "-f", format, out)
	if b, err := exec.Command("ffmpeg", cmd...).CombinedOutput(); err != nil {
		t.Skipf("ffmpeg cannot make this codec here: %v\n%s", err, b)
	}
	return out
}

// h264Frames splits an Annex B stream with access unit delimiters into
// frames (Annex B access units, as pion's H264Payloader takes them).
func h264Frames(t *testing.T, path string) []clipFrame {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var frames []clipFrame
	aud := []byte{0, 0, 0, 1, 0x09}
	for len(b) > 0 {
		next := bytes.Index(b[len(aud):], aud)
		au := b
		if next >= 0 {
			au, b = b[:next+len(aud)], b[next+len(aud):]
		} else {
			b = nil
		}
		frames = append(frames, clipFrame{data: au, key: bytes.Contains(au, []byte{0, 0, 1, 0x65})})
	}
	return frames
}

// ivfFrames reads an IVF file's frames; key tells a keyframe.
func ivfFrames(t *testing.T, path string, key func([]byte) bool) []clipFrame {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := ivfreader.NewWith(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var frames []clipFrame
	for {
		f, _, err := r.ParseNextFrame()
		if err != nil {
			break
		}
		frames = append(frames, clipFrame{data: f, key: key(f)})
	}
	return frames
}

func vp9Key(f []byte) bool {
	var h vp9.Header
	return h.Unmarshal(f) == nil && !h.NonKeyFrame
}

// av1Key: a temporal unit that carries a sequence header starts a coded
// video sequence (libaom sends one with every keyframe).
func av1Key(f []byte) bool {
	for off := 0; off < len(f); {
		hdr := 1 + int(f[off]>>2&1)
		size, k := leb128(f[off+hdr:])
		if f[off]>>3&0x0f == obuSequenceHeader {
			return true
		}
		off += hdr + k + int(size)
	}
	return false
}

func TestRecordOtherCodecs(t *testing.T) {
	needFFmpeg(t)
	c := mustClips(t)
	cases := []struct {
		name, mime, probeName, ext string
		w, h                       int
		frames                     func(t *testing.T) []clipFrame
		payloader                  func() rtp.Payloader
	}{
		{"H264", "video/H264", "h264", ".mkv", 640, 360, func(t *testing.T) []clipFrame {
			return h264Frames(t, encode(t, "640x360", "h264", "-c:v", "libx264", "-profile:v", "baseline", "-bf", "0", "-x264-params", "aud=1"))
		}, func() rtp.Payloader { return &codecs.H264Payloader{} }},
		{"VP9", "video/VP9", "vp9", ".webm", 640, 360, func(t *testing.T) []clipFrame {
			return ivfFrames(t, encode(t, "640x360", "ivf", "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-lag-in-frames", "0", "-b:v", "500k"), vp9Key)
		}, func() rtp.Payloader { return &codecs.VP9Payloader{} }},
		{"AV1", "video/AV1", "av1", ".webm", 320, 180, func(t *testing.T) []clipFrame {
			return ivfFrames(t, encode(t, "320x180", "ivf", "-c:v", "libaom-av1", "-usage", "realtime", "-cpu-used", "8", "-lag-in-frames", "0", "-b:v", "200k"), av1Key)
		}, func() rtp.Payloader { return &codecs.AV1Payloader{} }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			frames := tc.frames(t)
			if len(frames) < 100 || !frames[0].key {
				t.Fatalf("%d frames from ffmpeg, first keyframe %v", len(frames), len(frames) > 0 && frames[0].key)
			}
			rec, errs := newTestRecording(t, RecordingParams{})
			r, err := recordClip(t, rec, simParams{duration: 10 * time.Second, layers: [][]clipFrame{frames}, audio: c.audio,
				payloader: tc.payloader, videoCodec: &Codec{MimeType: tc.mime, ClockRate: 90000}, net: lossy, seed: 6}, "erin", SourceScreen, 0)
			if err != nil || len(errs.list()) > 0 {
				t.Fatalf("close: %v, reported: %v", err, errs.list())
			}
			if err := rec.Close(); err != nil {
				t.Fatal(err)
			}
			if filepath.Ext(r.File()) != tc.ext {
				t.Errorf("file %s, want a %s file", r.File(), tc.ext)
			}
			checkFile(t, filepath.Join(rec.Dir(), r.File()), tc.probeName, tc.w, tc.h, 10)
			if e := rec.Manifest().Files[0]; e.Video.Width != tc.w || e.Video.Height != tc.h {
				t.Errorf("manifest: %dx%d", e.Video.Width, e.Video.Height)
			}
		})
	}
}
