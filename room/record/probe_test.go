package record

import (
	"bytes"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/confab-sfu/confab/internal/mediaprobe"

	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
	"github.com/prometheus/client_golang/prometheus"
)

// probed is what ffprobe says about a file.
type probed struct{ *mediaprobe.File }

func needFFmpeg(t testing.TB) { mediaprobe.Need(t) }

// probe runs ffprobe on path: streams, format, and each stream's first and
// last packet times.
func probe(t testing.TB, path string) *probed { return &probed{mediaprobe.Probe(t, path)} }

// stream returns the stream of a codec, failing when there is not exactly one.
func (p *probed) stream(t testing.TB, codecType string) (idx int, codec string, w, h int) {
	t.Helper()
	s := p.Only(t, codecType)
	return s.Index, s.CodecName, s.Width, s.Height
}

// byIndex is the stream with ffprobe's index idx.
func (p *probed) byIndex(idx int) mediaprobe.Stream {
	for _, s := range p.Streams {
		if s.Index == idx {
			return s
		}
	}
	return mediaprobe.Stream{}
}

// duration is how long a stream lasts: its last packet's end less its first's start.
func (p *probed) duration(idx int) float64 { return p.byIndex(idx).Seconds }

// start is a stream's first packet's time.
func (p *probed) start(idx int) float64 { return p.byIndex(idx).Start }

// decodes runs the decoder over the whole file: no error output allowed.
func decodes(t testing.TB, path string) { mediaprobe.Decodes(t, path) }

// near fails unless got is within tol of want.
func near(t testing.TB, what string, got, want, tol float64) {
	t.Helper()
	if math.Abs(got-want) > tol {
		t.Errorf("%s = %.3f, want %.3f ± %.1f", what, got, want, tol)
	}
}

// lastFrameSize decodes path and returns the size of its last video frame.
func lastFrameSize(t testing.TB, path string) (w, h int) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "frame=width,height", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe frames: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	f := strings.Split(lines[len(lines)-1], ",")
	if len(f) < 2 {
		t.Fatalf("ffprobe frames: %q", lines[len(lines)-1])
	}
	w, _ = strconv.Atoi(f[0])
	h, _ = strconv.Atoi(f[1])
	return w, h
}

// packetTimes returns the times of a stream's packets (video or audio),
// in file order.
func packetTimes(t testing.TB, path, codecType string) []float64 {
	return mediaprobe.PacketTimes(t, path, codecType)
}

// largestGap returns the longest stretch without packets in a stream of
// the type, from the end of one packet to the next one's start.
func largestGap(t testing.TB, path, codecType string) (from, to float64) {
	t.Helper()
	times := packetTimes(t, path, codecType)
	for i := 1; i < len(times); i++ {
		if times[i]-times[i-1] > to-from {
			from, to = times[i-1], times[i]
		}
	}
	return from, to
}

// smallestStep returns the shortest time between two packets in a row
// of a stream of the type, and when the second one came.
func smallestStep(t testing.TB, path, codecType string) (step, at float64) {
	return mediaprobe.SmallestStep(t, path, codecType)
}

// counterValue reads one metric of a collector.
func counterValue(t testing.TB, c prometheus.Collector, name string) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		if m.GetCounter() != nil {
			return m.GetCounter().GetValue()
		}
		return m.GetGauge().GetValue()
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// videoFrames copies the video frames out of path (no decoding) as IVF and
// returns them.
func videoFrames(t testing.TB, path string) [][]byte {
	t.Helper()
	ivf := filepath.Join(t.TempDir(), "frames.ivf")
	out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", path, "-map", "0:v", "-c", "copy", "-f", "ivf", ivf).CombinedOutput()
	if err != nil {
		t.Fatalf("copy frames out of %s: %v\n%s", path, err, out)
	}
	b, err := os.ReadFile(ivf)
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := ivfreader.NewWith(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var frames [][]byte
	for {
		f, _, err := r.ParseNextFrame()
		if err != nil {
			break
		}
		frames = append(frames, f)
	}
	return frames
}

// framesAreWhole checks that every recorded frame is a frame of the clip,
// byte for byte (no frame with a lost packet was written), that the file
// starts with a keyframe, and that every other frame follows the one
// before it in the clip (no frame it refers to was lost).
func framesAreWhole(t testing.TB, path string, layers [][]clipFrame) {
	t.Helper()
	type pos struct{ layer, idx int }
	known := map[string]pos{}
	for l, frames := range layers {
		for i, f := range frames {
			known[string(f.data)] = pos{l, i}
		}
	}
	frames := videoFrames(t, path)
	if len(frames) == 0 || frames[0][0]&1 != 0 {
		t.Fatalf("%d frames, the first not a keyframe", len(frames))
	}
	var prev pos
	for i, f := range frames {
		p, ok := known[string(f)]
		if !ok {
			t.Fatalf("frame %d of %d (%d bytes) is not a frame of the clip: a broken frame was written", i, len(frames), len(f))
		}
		n := len(layers[p.layer])
		if i > 0 && f[0]&1 != 0 && (p.layer != prev.layer || p.idx != (prev.idx+1)%n) {
			t.Fatalf("frame %d is delta frame %d of layer %d, after frame %d of layer %d: a frame it needs is missing",
				i, p.idx, p.layer, prev.idx, prev.layer)
		}
		prev = p
	}
}

// packetBytes adds up the sizes of all packets (frames) in path.
func packetBytes(t testing.TB, path string) int {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "packet=size", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe packets: %v", err)
	}
	n := 0
	for _, line := range strings.Fields(string(out)) {
		v, _ := strconv.Atoi(strings.Trim(line, ","))
		n += v
	}
	return n
}
