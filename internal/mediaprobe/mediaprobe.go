// Package mediaprobe asks ffprobe and ffmpeg about a recorded file, for
// the recording tests (room/record, the room's and the browser's recordings):
// its streams, how long each lasts, and whether it decodes without an
// error. Without ffmpeg a test skips (fails under CONFAB_E2E, see
// internal/needtool).
package mediaprobe

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/confab-sfu/confab/internal/needtool"
)

// Need skips the test without ffprobe and ffmpeg.
func Need(t testing.TB) {
	t.Helper()
	needtool.Path(t, "ffprobe", "ffmpeg")
	needtool.Path(t, "ffmpeg", "ffmpeg")
}

// Stream is one stream of a file.
type Stream struct {
	Index     int    `json:"index"`
	CodecName string `json:"codec_name"`
	CodecType string `json:"codec_type"`
	Width     int    `json:"width"`
	Height    int    `json:"height"`
	// Start is its first packet's time; Seconds is from that packet's
	// start to its last packet's end.
	Start   float64 `json:"-"`
	Seconds float64 `json:"-"`
}

// File is what ffprobe says of a file.
type File struct {
	Streams []Stream `json:"streams"`
	Format  struct {
		FormatName string `json:"format_name"`
	} `json:"format"`
}

// Probe runs ffprobe on path.
func Probe(t testing.TB, path string) *File {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var f File
	if err := json.Unmarshal(out, &f); err != nil {
		t.Fatalf("ffprobe output: %v", err)
	}
	out, err = exec.Command("ffprobe", "-v", "error", "-show_entries", "packet=stream_index,pts_time,duration_time", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe packets of %s: %v", path, err)
	}
	first, last := map[int]float64{}, map[int]float64{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fs := strings.Split(line, ",")
		if len(fs) < 2 {
			continue
		}
		idx, _ := strconv.Atoi(fs[0])
		pts, err := strconv.ParseFloat(fs[1], 64)
		if err != nil {
			continue
		}
		end := pts
		if len(fs) > 2 {
			if d, err := strconv.ParseFloat(fs[2], 64); err == nil {
				end += d
			}
		}
		if _, ok := first[idx]; !ok {
			first[idx] = pts
		}
		last[idx] = math.Max(last[idx], end)
	}
	for i := range f.Streams {
		s := &f.Streams[i]
		s.Start, s.Seconds = first[s.Index], last[s.Index]-first[s.Index]
	}
	return &f
}

// Only returns the one stream of a type ("audio", "video"), failing the
// test unless there is exactly one.
func (f *File) Only(t testing.TB, codecType string) Stream {
	t.Helper()
	var found []Stream
	for _, s := range f.Streams {
		if s.CodecType == codecType {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d %s streams, want 1: %+v", len(found), codecType, f.Streams)
	}
	return found[0]
}

// Decodes runs ffmpeg's decoders over the whole file: it must say nothing.
// Frames keep the file's own times (Matroska's milliseconds): by default
// ffmpeg would round video times to its guess of a frame rate, and two
// frames of a camera whose capture jitters (37 ms apart at 20 frames a
// second) would then share a time and make it complain; two frames of
// one millisecond still do (SmallestStep checks closer calls).
func Decodes(t testing.TB, path string) {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", path, "-enc_time_base:v", "1:1000", "-f", "null", "-")
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Fatalf("ffmpeg decoding %s: %v\n%s%s", path, err, stderr.String(), videoTimes(path))
	}
}

// videoTimes says, for a failure's message, the video stream's frame rate
// as ffmpeg guesses it (a decoder's time base) and its first packets'
// times; under CONFAB_TEST_OUTPUT the file itself is kept there too.
func videoTimes(path string) string {
	var b strings.Builder
	if dir := os.Getenv("CONFAB_TEST_OUTPUT"); dir != "" {
		kept := filepath.Join(dir, filepath.Base(path))
		if data, err := os.ReadFile(path); err == nil && os.MkdirAll(dir, 0o755) == nil && os.WriteFile(kept, data, 0o644) == nil {
			fmt.Fprintf(&b, "kept as %s\n", kept)
		}
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0",
		"-show_entries", "stream=r_frame_rate,avg_frame_rate:packet=pts_time,flags", "-of", "csv=p=0", path).Output()
	if err != nil {
		return b.String()
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	fmt.Fprintf(&b, "video (frame rates last, times of the first packets):\n%s\n", strings.Join(lines[max(0, len(lines)-1):], "\n"))
	b.WriteString(strings.Join(lines[:min(len(lines)-1, 120)], " "))
	return b.String()
}

// PacketTimes returns the times of a stream's packets ("video" or
// "audio"), in file order.
func PacketTimes(t testing.TB, path, codecType string) []float64 {
	t.Helper()
	sel := map[string]string{"video": "v", "audio": "a"}[codecType]
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", sel, "-show_entries", "packet=pts_time", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe packets of %s: %v", path, err)
	}
	var times []float64
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if pts, err := strconv.ParseFloat(strings.Trim(line, ","), 64); err == nil {
			times = append(times, pts)
		}
	}
	return times
}

// SmallestStep returns the shortest time between two packets in a row of
// a stream of the type, and when the second one came.
func SmallestStep(t testing.TB, path, codecType string) (step, at float64) {
	t.Helper()
	times := PacketTimes(t, path, codecType)
	step = math.Inf(1)
	for i := 1; i < len(times); i++ {
		if d := times[i] - times[i-1]; d < step {
			step, at = d, times[i]
		}
	}
	return step, at
}
