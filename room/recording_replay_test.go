package room_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/mediaprobe"
	"github.com/confab-sfu/confab/internal/wait"
	"github.com/confab-sfu/confab/room"
	"github.com/confab-sfu/confab/room/access"
	"github.com/confab-sfu/confab/room/record"
	"github.com/confab-sfu/confab/room/record/replay"
	"github.com/confab-sfu/confab/signal"
	"github.com/confab-sfu/confab/signal/client"
	"github.com/confab-sfu/confab/signal/client/clip"
)

// A presenter whose token says "record" opens a lecture, which records
// from its start; they share their screen besides camera and microphone,
// and the audience watches. When the lecture ends (the room empties) the
// recording is finished: a camera file and a screen file, which the
// replay composes into one MP4 that decodes and lasts as long as the
// lecture.
func TestRecordLectureReplay(t *testing.T) {
	mediaprobe.Need(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	dir := t.TempDir()
	_, url := startServer(t, room.Config{AuthSecret: testSecret, RecordDir: dir})
	tok, err := access.Mint(testSecret, access.TokenParams{Room: "lecture", Identity: "prof", Name: "Prof", Role: access.Moderator,
		TTL: time.Hour, Lecture: true, Record: true}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var camera, screen *clip.VideoSource
	var mu sync.Mutex
	prof := joinWith(t, ctx, url, "lecture", "prof", client.APIOptions{Loopback: true}, func(o *client.Params) {
		o.Token = tok
		o.OnKeyframeRequest = func(id string) {
			mu.Lock()
			defer mu.Unlock()
			if id == "prof-screen" && screen != nil {
				screen.RequestKeyframe()
			} else if camera != nil {
				camera.RequestKeyframe()
			}
		}
	})
	if w := prof.Welcome(); !w.Lecture || w.Recording == nil || !*w.Recording {
		t.Fatalf("welcome: lecture %v, recording %v; the token asked for a recorded lecture", w.Lecture, w.Recording)
	}
	viewer := joinWithToken(t, ctx, url, "lecture", "student", mint(t, testSecret, "lecture", "student", access.Viewer, time.Hour, time.Now()))
	if w := viewer.Welcome(); w.Recording == nil || !*w.Recording {
		t.Error("the audience was not told the lecture is recorded")
	}

	runCtx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	audio, err := clip.NewAudioSource("prof-mic", "prof")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := prof.Publish(ctx, signal.SourceMicrophone, audio.Track()); err != nil {
		t.Fatal(err)
	}
	cam, err := clip.NewVideoSource("prof-cam", "prof", false, 0)
	if err != nil {
		t.Fatal(err)
	}
	scr, err := clip.NewVideoSource("prof-screen", "prof-screen", false, 2)
	if err != nil {
		t.Fatal(err)
	}
	for src, v := range map[string]*clip.VideoSource{signal.SourceCamera: cam, signal.SourceScreen: scr} {
		if _, err := prof.Publish(ctx, src, v.Tracks()...); err != nil {
			t.Fatalf("publish %s: %v", src, err)
		}
	}
	mu.Lock()
	camera, screen = cam, scr
	mu.Unlock()
	started := time.Now()
	for _, run := range []func(context.Context){audio.Run, cam.Run, scr.Run} {
		wg.Add(1)
		go func() { defer wg.Done(); run(runCtx) }()
	}
	flowing(t, viewer, prof.ID(), "to the audience")
	waitFile(t, dir, 2)
	lecture := time.NewTimer(8*time.Second - time.Since(started))
	select {
	case <-lecture.C:
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	_ = viewer.Leave()
	_ = prof.Leave() // the lecture ends: the room closes, the recording with it
	wait.Until(t, 15*time.Second, "the recording to be finished", func() (bool, string) {
		m := currentManifest(dir)
		return m != nil && m.EndedAt != nil, "the manifest has no end"
	})

	m, recDir := onlyManifest(t, dir)
	sources := map[record.Source]record.FileEntry{}
	var end time.Duration
	for _, f := range m.Files {
		if f.ParticipantID != "prof" || f.State != record.FileDone {
			t.Errorf("file %+v", f)
		}
		sources[f.Source] = f
		end = max(end, f.End())
	}
	if len(m.Files) != 2 || sources[record.SourceCamera].Audio == nil || sources[record.SourceScreen].Video == nil {
		t.Fatalf("files %+v: want the camera with the microphone, and the screen", m.Files)
	}
	out := filepath.Join(t.TempDir(), "lecture.mp4")
	plan, err := replay.Build(m, recDir, out, replay.Options{})
	if err != nil {
		t.Fatal(err)
	}
	bin, err := replay.FindFFmpeg("")
	if err != nil {
		t.Fatal(err)
	}
	if err := replay.Run(ctx, bin, plan); err != nil {
		t.Fatal(err)
	}
	p := mediaprobe.Probe(t, out)
	a, v := p.Only(t, "audio"), p.Only(t, "video")
	if v.Width != 1280 || v.Height != 720 || v.CodecName != "h264" || a.CodecName != "aac" {
		t.Errorf("replay streams: video %+v, audio %+v", v, a)
	}
	if d := v.Seconds - end.Seconds(); d < -0.5 || d > 0.5 {
		t.Errorf("the replay lasts %.2f s, the lecture %.2f s", v.Seconds, end.Seconds())
	}
	mediaprobe.Decodes(t, out)
	t.Logf("replay: %.2f s of video, %.2f s of audio; the lecture's files end at %.2f s (camera %d ms from %d, screen %d ms from %d)",
		v.Seconds, a.Seconds, end.Seconds(), sources[record.SourceCamera].DurationMS, sources[record.SourceCamera].StartOffsetMS,
		sources[record.SourceScreen].DurationMS, sources[record.SourceScreen].StartOffsetMS)
}
