package record

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	vp8Codec  = &Codec{MimeType: "video/VP8", ClockRate: 90000}
	opusCodec = &Codec{MimeType: "audio/opus", ClockRate: 48000, Channels: 2}
	// The uplink of the issue: 5 % loss, most of it repaired by NACK in
	// time (a tenth is lost for good), some reordering.
	lossy = network{loss: 0.05, retransmit: 0.9, reorder: 0.05}
	// The same with every loss repaired: the high layer's keyframes are
	// ~15 packets, and a permanent loss near the end of a 10 s clip leaves
	// the rest of it waiting for the next keyframe.
	repaired = network{loss: 0.05, retransmit: 1, reorder: 0.05}
)

// fileErrors collects what a Recording reports.
type fileErrors struct {
	mu   sync.Mutex
	errs []FileError
}

func (f *fileErrors) add(e FileError) { f.mu.Lock(); f.errs = append(f.errs, e); f.mu.Unlock() }
func (f *fileErrors) list() []FileError {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]FileError(nil), f.errs...)
}

func newTestRecording(t *testing.T, p RecordingParams) (*Recording, *fileErrors) {
	t.Helper()
	errs := &fileErrors{}
	if p.Dir == "" {
		p.Dir = filepath.Join(t.TempDir(), "rec")
	}
	p.Room, p.OnError = "lecture", errs.add
	if p.QueueFrames == 0 {
		// The simulations send far faster than real time: a queue that
		// holds all of it keeps a slow (race-detector) writer from dropping.
		p.QueueFrames = 1 << 14
	}
	r, err := NewRecording(p)
	if err != nil {
		t.Fatalf("NewRecording: %v", err)
	}
	return r, errs
}

// recordClip plays p into a new Recorder of rec, starting offset after
// the recording's start, and closes the Recorder.
func recordClip(t *testing.T, rec *Recording, p simParams, who string, src Source, offset time.Duration) (*Recorder, error) {
	t.Helper()
	s := newSim(p, rec.Start().Add(offset))
	rp := RecorderParams{ParticipantID: who, ParticipantName: "Name of " + who, Source: src, RequestKeyframe: s.requestKeyframe}
	if len(p.layers) > 0 || p.gen != nil {
		rp.Video = vp8Codec
	}
	if p.audio != nil {
		rp.Audio = opusCodec
	}
	if p.videoCodec != nil {
		rp.Video = p.videoCodec
	}
	r, err := rec.NewRecorder(rp)
	if err != nil {
		t.Fatalf("NewRecorder: %v", err)
	}
	s.run(r)
	return r, r.Close()
}

// checkFile probes a recorded file: one video stream of codec and size,
// one Opus stream, both lasting about want, and a clean decode.
func checkFile(t *testing.T, path, videoCodec string, w, h int, want float64) *probed {
	t.Helper()
	p := probe(t, path)
	vi, vc, gw, gh := p.stream(t, "video")
	ai, ac, _, _ := p.stream(t, "audio")
	if vc != videoCodec || ac != "opus" {
		t.Errorf("codecs %s and %s, want %s and opus", vc, ac, videoCodec)
	}
	if gw != w || gh != h {
		t.Errorf("video %dx%d, want %dx%d", gw, gh, w, h)
	}
	// Lip sync: the publisher starts both at once.
	near(t, "audio start after video start", p.start(ai)-p.start(vi), 0, 0.06)
	near(t, "video duration", p.duration(vi), want, 0.5)
	near(t, "audio duration", p.duration(ai), want, 0.5)
	decodes(t, path)
	return p
}

func TestRecordVP8OpusWithLoss(t *testing.T) {
	needFFmpeg(t)
	c := mustClips(t)
	metrics := NewMetrics()
	rec, errs := newTestRecording(t, RecordingParams{Metrics: metrics})
	r, err := recordClip(t, rec, simParams{duration: 10 * time.Second, layers: c.layers[:], layer: 1, audio: c.audio,
		net: lossy, seed: 1, tsStart: 0xffffffff - 150000}, "alice", SourceCamera, 0)
	if err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := rec.Close(); err != nil {
		t.Fatalf("Recording.Close: %v", err)
	}
	if len(errs.list()) > 0 {
		t.Fatalf("errors reported: %v", errs.list())
	}
	path := filepath.Join(rec.Dir(), r.File())
	checkFile(t, path, "vp8", 640, 360, 10)
	framesAreWhole(t, path, c.layers[:])
	if n := r.Video().KeyframeRequests(); n < 1 {
		t.Errorf("%d keyframe requests, want at least the first", n)
	}
	m, err := ReadManifest(filepath.Join(rec.Dir(), ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Files) != 1 || m.EndedAt == nil {
		t.Fatalf("manifest: %+v", m)
	}
	e := m.Files[0]
	st, _ := os.Stat(path)
	if e.State != FileDone || e.ParticipantID != "alice" || e.Source != SourceCamera || e.Video.Width != 640 ||
		e.Audio == nil || e.Bytes != st.Size() || e.DurationMS < 9500 || e.StartOffsetMS > 100 {
		t.Errorf("manifest entry %+v (file has %d bytes)", e, st.Size())
	}
	t.Logf("%d bytes for %.1f s of 640x360 VP8 + Opus: %.0f KB/min; %d keyframe requests",
		st.Size(), float64(e.DurationMS)/1000, float64(st.Size())/1024/(float64(e.DurationMS)/60000), r.Video().KeyframeRequests())
	if got := counterValue(t, metrics, "confab_recording_dropped_frames_total"); got != 0 {
		t.Errorf("%v frames dropped", got)
	}
	if got := counterValue(t, metrics, "confab_recording_bytes_written_total"); got != float64(st.Size()) {
		t.Errorf("bytes written metric %v, file %d", got, st.Size())
	}
}

// A layer switch mid-recording: the file goes on, decodes cleanly and
// ends on the new layer. As a browser publishes, every layer sends every
// instant, and the SFU's sink switches at the new layer's keyframe, after
// the old layer's frame of the same instant: the keyframe must take that
// frame's place, not follow it a millisecond later (ffmpeg then reports
// timestamps that do not increase).
func TestRecordLayerSwitch(t *testing.T) {
	needFFmpeg(t)
	c := mustClips(t)
	for _, tc := range []struct {
		name            string
		munged, overlap bool
		net             network
	}{
		{"new SSRC", false, false, repaired},
		{"rewritten stream", true, false, repaired},
		{"new SSRC after the same instant", false, true, network{steady: true}},
		{"rewritten stream after the same instant", true, true, network{steady: true}},
		{"new SSRC, keyframes sent late", false, false, network{steady: true, keyDelay: 60 * time.Millisecond}},
		{"new SSRC after the same instant, keyframes sent late", false, true, network{steady: true, keyDelay: 60 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, _ := newTestRecording(t, RecordingParams{})
			r, err := recordClip(t, rec, simParams{duration: 10 * time.Second, layers: c.layers[:], layer: 0, switchAt: 5 * time.Second,
				switchTo: 2, munged: tc.munged, overlap: tc.overlap, audio: c.audio, net: tc.net, seed: 2}, "bob", SourceCamera, 0)
			if err != nil {
				t.Fatal(err)
			}
			if err := rec.Close(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(rec.Dir(), r.File())
			checkFile(t, path, "vp8", 320, 180, 10)
			framesAreWhole(t, path, c.layers[:])
			w, h := lastFrameSize(t, path)
			if w != 1280 || h != 720 {
				t.Errorf("after the switch the picture is %dx%d, want 1280x720", w, h)
			}
			if e := rec.Manifest().Files[0]; e.Video.Width != 1280 || e.Video.Height != 720 {
				t.Errorf("manifest gives %dx%d, want the largest, 1280x720", e.Video.Width, e.Video.Height)
			}
			if step, at := smallestStep(t, path, "video"); step < 0.02 {
				t.Errorf("two frames %.0f ms apart at %.3f s; the clip has 30 frames a second", step*1000, at)
			}
		})
	}
}

func TestRecordMuteGap(t *testing.T) {
	needFFmpeg(t)
	c := mustClips(t)
	for _, frozen := range []bool{false, true} {
		name := map[bool]string{false: "sender clock runs", true: "sender clock stands still"}[frozen]
		t.Run(name, func(t *testing.T) {
			rec, _ := newTestRecording(t, RecordingParams{})
			r, err := recordClip(t, rec, simParams{duration: 10 * time.Second, layers: c.layers[:], audio: c.audio,
				muteFrom: 3 * time.Second, muteTo: 6 * time.Second, frozenMute: frozen, net: lossy, seed: 3}, "carol", SourceCamera, 0)
			if err != nil {
				t.Fatal(err)
			}
			if err := rec.Close(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(rec.Dir(), r.File())
			// The gap stays a gap: the file lasts the 10 s, media resumes at 6 s.
			checkFile(t, path, "vp8", 320, 180, 10)
			for _, typ := range []string{"video", "audio"} {
				gapFrom, gapTo := largestGap(t, path, typ)
				near(t, typ+" gap start", gapFrom, 3, 0.3)
				near(t, typ+" gap end", gapTo, 6, 0.3)
			}
		})
	}
}

func TestRecordLeaveAndRejoin(t *testing.T) {
	needFFmpeg(t)
	c := mustClips(t)
	rec, errs := newTestRecording(t, RecordingParams{})
	p := simParams{duration: 4 * time.Second, layers: c.layers[:], audio: c.audio, net: lossy, seed: 4}
	first, err := recordClip(t, rec, p, "dave", SourceCamera, 0)
	if err != nil {
		t.Fatal(err)
	}
	p.seed = 5
	second, err := recordClip(t, rec, p, "dave", SourceCamera, 6*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := rec.Close(); err != nil || len(errs.list()) > 0 {
		t.Fatalf("close: %v, reported %v", err, errs.list())
	}
	if first.File() == second.File() {
		t.Fatalf("both files are %s", first.File())
	}
	m, err := ReadManifest(filepath.Join(rec.Dir(), ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Files) != 2 {
		t.Fatalf("%d files in the manifest, want 2", len(m.Files))
	}
	for i, wantOffset := range []float64{0, 6} {
		e := m.Files[i]
		near(t, e.File+" start offset", float64(e.StartOffsetMS)/1000, wantOffset, 0.2)
		near(t, e.File+" duration", float64(e.DurationMS)/1000, 4, 0.5)
		if e.State != FileDone {
			t.Errorf("%s: state %s", e.File, e.State)
		}
		checkFile(t, filepath.Join(rec.Dir(), e.File), "vp8", 320, 180, 4)
	}
}

func TestRecordBadParams(t *testing.T) {
	rec, _ := newTestRecording(t, RecordingParams{})
	cases := []struct {
		name string
		p    RecorderParams
		want error
	}{
		{"no tracks", RecorderParams{ParticipantID: "x", Source: SourceCamera}, ErrNoTracks},
		{"bad source", RecorderParams{ParticipantID: "x", Source: "webcam", Audio: opusCodec}, ErrBadParams},
		{"unknown codec", RecorderParams{ParticipantID: "x", Source: SourceCamera, Video: &Codec{MimeType: "video/H265", ClockRate: 90000}}, ErrUnsupportedCodec},
		{"audio codec as video", RecorderParams{ParticipantID: "x", Source: SourceCamera, Video: opusCodec}, ErrUnsupportedCodec},
		{"no clock rate", RecorderParams{ParticipantID: "x", Source: SourceCamera, Video: &Codec{MimeType: "video/VP8"}}, ErrBadParams},
	}
	for _, c := range cases {
		if _, err := rec.NewRecorder(c.p); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := rec.NewRecorder(RecorderParams{ParticipantID: "x", Source: SourceCamera, Audio: opusCodec}); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v, want ErrClosed", err)
	}
	if err := rec.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close: %v, want ErrClosed", err)
	}
	if _, err := NewRecording(RecordingParams{}); !errors.Is(err, ErrBadParams) {
		t.Errorf("no directory: %v", err)
	}
}

// TestRecordDiskSizing records each layer for 10 s without loss and checks
// that the file is its frames plus a small container overhead; the log
// gives the bytes per minute docs/recording.md quotes.
func TestRecordDiskSizing(t *testing.T) {
	needFFmpeg(t)
	c := mustClips(t)
	for layer, name := range []string{"320x180", "640x360", "1280x720"} {
		rec, _ := newTestRecording(t, RecordingParams{})
		r, err := recordClip(t, rec, simParams{duration: 10 * time.Second, layers: c.layers[:], layer: layer, audio: c.audio, seed: 10}, "sizer", SourceCamera, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := rec.Close(); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(filepath.Join(rec.Dir(), r.File()))
		if err != nil {
			t.Fatal(err)
		}
		media := packetBytes(t, filepath.Join(rec.Dir(), r.File()))
		overhead := float64(st.Size()-cuesReserve)/float64(media) - 1
		if overhead < 0 || overhead > 0.05 {
			t.Errorf("%s: file %d bytes for %d bytes of media: %.1f%% overhead", name, st.Size(), media, overhead*100)
		}
		t.Logf("%s VP8 + Opus: %.1f MB per minute (%d bytes for 10 s, container overhead %.1f%% plus the %d KiB index)",
			name, float64(st.Size()-cuesReserve)*6/1e6, st.Size(), overhead*100, cuesReserve>>10)
	}
}
