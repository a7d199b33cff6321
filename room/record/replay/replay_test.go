package replay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/needtool"

	"github.com/confab-sfu/confab/room/record"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func entry(id string, src record.Source, video, audio bool, startMS, durMS int64) record.FileEntry {
	e := record.FileEntry{File: id + "-" + string(src) + ".webm", ParticipantID: id, Source: src,
		StartOffsetMS: startMS, DurationMS: durMS, State: record.FileDone}
	if video {
		e.Video = &record.VideoStream{Codec: "video/VP8", Width: 640, Height: 360}
	}
	if audio {
		e.Audio = &record.AudioStream{Codec: "audio/opus", SampleRate: 48000, Channels: 2}
	}
	return e
}

func TestRecordReplayGraph(t *testing.T) {
	lecture := &record.Manifest{Version: 1, Files: []record.FileEntry{
		entry("pat", record.SourceCamera, true, true, 0, 10000),
		entry("pat", record.SourceScreen, true, false, 2000, 10000),
		entry("quinn", record.SourceCamera, true, true, 1500, 3000),
		{File: "x.webm", ParticipantID: "late", Source: record.SourceCamera, State: record.FileEmpty},
	}}
	p, err := Build(lecture, "/rec", "out.mp4", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Duration != 12*time.Second {
		t.Errorf("duration %v, want 12s (the screen's end)", p.Duration)
	}
	for _, want := range []string{
		"color=c=black:s=1280x720:r=30:d=12.000",
		// pat's screen large, at 2 s.
		"[2:v]setpts=PTS+2.000/TB,scale=1280:720:force_original_aspect_ratio=decrease",
		// pat's camera as the inset: a quarter wide, bottom right.
		"[0:v]setpts=PTS+0.000/TB,scale=320:-2",
		"overlay=W-w-20:H-h-20",
		// Both voices, shifted, mixed.
		"[0:a]asetpts=PTS+0.000/TB", "[1:a]asetpts=PTS+1.500/TB",
		"[a0][a1]amix=inputs=2",
	} {
		if !strings.Contains(p.Filter, want) {
			t.Errorf("filter lacks %q:\n%s", want, p.Filter)
		}
	}
	if strings.Contains(p.Filter, "[1:v]") {
		t.Errorf("quinn's camera is in the picture:\n%s", p.Filter)
	}
	if n := strings.Count(strings.Join(p.Args, " "), "-i /rec/"); n != 3 {
		t.Errorf("%d inputs, want 3 (the empty file left out): %v", n, p.Args)
	}

	// Without a screen, the presenter's camera fills the picture.
	talk := &record.Manifest{Version: 1, Files: []record.FileEntry{entry("pat", record.SourceCamera, true, true, 500, 4000)}}
	p, err = Build(talk, "/rec", "out.mp4", Options{Width: 640, Height: 360, FPS: 25})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.Filter, "[0:v]setpts=PTS+0.500/TB,scale=640:360") || strings.Contains(p.Filter, "W-w-") ||
		!strings.Contains(p.Filter, "[a0]anull[aout]") {
		t.Errorf("camera-only filter:\n%s", p.Filter)
	}

	bad := []struct {
		name string
		m    *record.Manifest
		o    Options
		want string
	}{
		{"odd size", talk, Options{Width: 641, Height: 360}, "size"},
		{"tiny", talk, Options{Width: 16, Height: 16}, "size"},
		{"fps", talk, Options{FPS: 1000}, "fps"},
		{"crf", talk, Options{CRF: 99}, "crf"},
		{"unknown presenter", talk, Options{Presenter: "nobody"}, "nobody"},
		{"nothing", &record.Manifest{Version: 1}, Options{}, ErrNothingToReplay.Error()},
	}
	for _, b := range bad {
		if _, err := Build(b.m, "/rec", "out.mp4", b.o); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%s: %v, want an error about %q", b.name, err, b.want)
		}
	}
}

func TestRecordReplayWithoutFFmpeg(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	if _, err := FindFFmpeg(""); !errors.Is(err, ErrNoFFmpeg) {
		t.Errorf("FindFFmpeg with an empty PATH: %v", err)
	}
	if _, err := FindFFmpeg("/nonexistent/ffmpeg"); !errors.Is(err, ErrNoFFmpeg) {
		t.Errorf("FindFFmpeg of a missing path: %v", err)
	}
}

// clipDir holds the clips the load tool publishes.
const clipDir = "../../../signal/client/clip/media"

func readClips(t *testing.T) (layers [3][][]byte, audio [][]byte) {
	t.Helper()
	for i, name := range []string{"video-low.ivf", "video-medium.ivf", "video-high.ivf"} {
		b, err := os.ReadFile(filepath.Join(clipDir, name))
		if err != nil {
			t.Fatal(err)
		}
		r, _, err := ivfreader.NewWith(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		for {
			f, _, err := r.ParseNextFrame()
			if err != nil {
				break
			}
			layers[i] = append(layers[i], f)
		}
	}
	b, err := os.ReadFile(filepath.Join(clipDir, "audio.ogg"))
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := oggreader.NewWith(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	for {
		page, _, err := r.ParseNextPage()
		if errors.Is(err, io.EOF) || err != nil {
			break
		}
		if !bytes.HasPrefix(page, []byte("OpusTags")) {
			audio = append(audio, page)
		}
	}
	return layers, audio
}

// publish records a clip for dur, starting at offset on the recording's
// clock: video from frames (nil: none), the Opus clip when audio is set.
func publish(t *testing.T, rec *record.Recording, who string, src record.Source, frames [][]byte, audio [][]byte, offset, dur time.Duration) {
	t.Helper()
	p := record.RecorderParams{ParticipantID: who, Source: src}
	if frames != nil {
		p.Video = &record.Codec{MimeType: "video/VP8", ClockRate: 90000}
	}
	if audio != nil {
		p.Audio = &record.Codec{MimeType: "audio/opus", ClockRate: 48000, Channels: 2}
	}
	r, err := rec.NewRecorder(p)
	if err != nil {
		t.Fatal(err)
	}
	vp := rtp.NewPacketizerWithOptions(1200, &codecs.VP8Payloader{EnablePictureID: true}, rtp.NewRandomSequencer(), 90000, rtp.WithSSRC(1))
	ap := rtp.NewPacketizerWithOptions(1200, &codecs.OpusPayloader{}, rtp.NewRandomSequencer(), 48000, rtp.WithSSRC(2))
	var tv, ta time.Duration
	for vi, ai := 0, 0; (frames != nil && tv < dur) || (audio != nil && ta < dur); {
		if frames != nil && tv <= ta || audio == nil {
			at := rec.Start().Add(offset + tv + 20*time.Millisecond)
			for _, pkt := range vp.Packetize(frames[vi%len(frames)], 3000) {
				r.Video().WriteRTP(pkt, at)
			}
			vi, tv = vi+1, tv+time.Second/30
			continue
		}
		at := rec.Start().Add(offset + ta + 20*time.Millisecond)
		for _, pkt := range ap.Packetize(audio[ai%len(audio)], 960) {
			r.Audio().WriteRTP(pkt, at)
		}
		ai, ta = ai+1, ta+20*time.Millisecond
		if frames == nil {
			tv = ta
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestRecordReplayComposes(t *testing.T) {
	ffmpeg, err := FindFFmpeg(needtool.Path(t, "ffmpeg", "ffmpeg"))
	if err != nil {
		t.Fatal(err)
	}
	layers, audio := readClips(t)
	dir := filepath.Join(t.TempDir(), "rec")
	// publish sends far faster than real time: a queue that holds it all
	// keeps a slow (race-detector) writer from dropping frames.
	rec, err := record.NewRecording(record.RecordingParams{Dir: dir, Room: "lecture", QueueFrames: 1 << 14})
	if err != nil {
		t.Fatal(err)
	}
	// The presenter talks on camera from 0 to 8 s and shares the screen
	// from 2 s to 11 s; a listener asks a question from 3 s to 6 s.
	publish(t, rec, "pat", record.SourceCamera, layers[0], audio, 0, 8*time.Second)
	publish(t, rec, "pat", record.SourceScreen, layers[2], nil, 2*time.Second, 9*time.Second)
	publish(t, rec, "quinn", record.SourceCamera, layers[1], audio, 3*time.Second, 3*time.Second)
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	m, err := record.ReadManifest(filepath.Join(dir, record.ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	if err := Files(m, dir); err != nil {
		t.Fatal(err)
	}
	for i, want := range []int64{8000, 9000, 3000} {
		if f := m.Files[i]; f.DurationMS < want-200 || f.DurationMS > want+100 {
			t.Fatalf("%s lasts %d ms, want %d", f.File, f.DurationMS, want)
		}
	}
	out := filepath.Join(t.TempDir(), "lecture.mp4")
	p, err := Build(m, dir, out, Options{Width: 640, Height: 360})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := Run(ctx, ffmpeg, p); err != nil {
		t.Fatal(err)
	}
	probeOut, err := exec.Command("ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", out).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	var got struct {
		Streams []struct {
			CodecName string `json:"codec_name"`
			Width     int    `json:"width"`
			Height    int    `json:"height"`
		} `json:"streams"`
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
	}
	if err := json.Unmarshal(probeOut, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Streams) != 2 || got.Streams[0].CodecName != "h264" || got.Streams[0].Width != 640 || got.Streams[0].Height != 360 || got.Streams[1].CodecName != "aac" {
		t.Errorf("streams %+v, want h264 640x360 and aac", got.Streams)
	}
	d, _ := strconv.ParseFloat(got.Format.Duration, 64)
	if want := p.Duration.Seconds(); d < want-0.5 || d > want+0.5 || want < 10.5 {
		t.Errorf("replay lasts %.2f s, the lecture %.2f s (the screen ends at ~11 s)", d, want)
	}
	var stderr bytes.Buffer
	cmd := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", out, "-f", "null", "-")
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Errorf("decoding the replay: %v\n%s", err, stderr.String())
	}
}

func TestRecordReplayReportsFFmpegErrors(t *testing.T) {
	ffmpeg, err := FindFFmpeg(needtool.Path(t, "ffmpeg", "ffmpeg"))
	if err != nil {
		t.Fatal(err)
	}
	m := &record.Manifest{Version: 1, Files: []record.FileEntry{entry("pat", record.SourceCamera, true, true, 0, 1000)}}
	dir := t.TempDir()
	if err := Files(m, dir); err == nil {
		t.Error("Files: a missing file was not noticed")
	}
	// A file that is not media: ffmpeg's own message comes back.
	if err := os.WriteFile(filepath.Join(dir, m.Files[0].File), []byte("not media"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Build(m, dir, filepath.Join(dir, "out.mp4"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = Run(context.Background(), ffmpeg, p)
	if err == nil || !strings.Contains(err.Error(), "ffmpeg failed") || !strings.Contains(err.Error(), "pat-camera.webm") {
		t.Errorf("Run: %v, want ffmpeg's message about the file", err)
	}
}
