package room_test

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/mediaprobe"
	"github.com/confab-sfu/confab/internal/wait"
	"github.com/confab-sfu/confab/room"
	"github.com/confab-sfu/confab/room/access"
	"github.com/confab-sfu/confab/room/record"
	"github.com/confab-sfu/confab/signal"
	"go.uber.org/goleak"
)

// checkRecordedFile probes one recorded camera file: one Opus and one VP8
// stream of want seconds (± 0.5 s), the top layer's size, and it decodes
// without an error.
func checkRecordedFile(t *testing.T, path string, want float64) {
	t.Helper()
	f := mediaprobe.Probe(t, path)
	a, v := f.Only(t, "audio"), f.Only(t, "video")
	if a.CodecName != "opus" || v.CodecName != "vp8" {
		t.Errorf("%s: codecs %s and %s, want opus and vp8", path, a.CodecName, v.CodecName)
	}
	if v.Width != 1280 || v.Height != 720 {
		t.Errorf("%s: video %dx%d, want the top layer's 1280x720", path, v.Width, v.Height)
	}
	for _, s := range []mediaprobe.Stream{a, v} {
		if s.Seconds < want-0.5 || s.Seconds > want+0.5 {
			t.Errorf("%s: %s lasts %.2f s, want %.2f ± 0.5", path, s.CodecType, s.Seconds, want)
		}
	}
	mediaprobe.Decodes(t, path)
	t.Logf("%s: audio %.2f s, video %.2f s %dx%d, want %.2f s", filepath.Base(path), a.Seconds, v.Seconds, v.Width, v.Height, want)
}

// A moderator records the load tool's publisher (VP8 simulcast and Opus)
// for 10 s while its uplink loses 5 % of its packets: everyone is told
// when recording starts and stops, and the file holds the top layer and
// the audio for the time recorded, decodable from end to end.
func TestRecordLossyPublisher(t *testing.T) {
	mediaprobe.Need(t)
	// Registered first, so it runs last: after everyone left and the
	// server closed, goroutines (the files' writers too) are back.
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dir := t.TempDir()
	_, url := startServer(t, room.Config{AuthSecret: testSecret, RecordDir: dir})
	mod := joinWithToken(t, ctx, url, "physics", "mod", modToken(t, "physics", "mod"))
	uplink := newLossyUplink(t, 0.05)
	pub := joinClipPublisher(t, ctx, url, "physics", "ada",
		mint(t, testSecret, "physics", "ada", access.Speaker, time.Hour, time.Now()), uplink)
	flowing(t, mod, pub.ID(), "before recording")

	started := time.Now()
	if code := recordReq(t, ctx, mod, true); code != "" {
		t.Fatalf("start: %s", code)
	}
	waitRecordingEvent(t, true, mod, pub.testPeer)
	waitFile(t, dir, 1)
	record10s := time.NewTimer(10*time.Second - time.Since(started))
	select {
	case <-record10s.C:
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	if code := recordReq(t, ctx, mod, false); code != "" {
		t.Fatalf("stop: %s", code)
	}
	stopped := time.Now()
	waitRecordingEvent(t, false, mod, pub.testPeer)
	flowing(t, mod, pub.ID(), "after recording")

	if d, s := uplink.dropped.Load(), uplink.sent.Load(); d == 0 || float64(d) < 0.03*float64(s) {
		t.Fatalf("the uplink dropped %d of %d packets: not the 5 %% loss asked for", d, s)
	} else {
		t.Logf("uplink dropped %d of %d packets (%.1f %%)", d, s, 100*float64(d)/float64(s))
	}
	m, recDir := onlyManifest(t, dir)
	if len(m.Files) != 1 || m.EndedAt == nil {
		t.Fatalf("manifest: %+v, want one file and an end", m)
	}
	f := m.Files[0]
	offset := time.Duration(f.StartOffsetMS) * time.Millisecond
	recorded := stopped.Sub(started) - offset
	if f.State != record.FileDone || f.ParticipantID != "ada" || f.Source != record.SourceCamera || f.Video == nil || f.Audio == nil {
		t.Fatalf("file entry %+v", f)
	}
	if offset > 2*time.Second {
		t.Errorf("the file starts %v after the recording: the keyframe request was not answered", offset)
	}
	checkRecordedFile(t, filepath.Join(recDir, f.File), recorded.Seconds())
}

// A participant who leaves and comes back during a recording gets a
// second file; both are whole.
func TestRecordLeaveAndRejoin(t *testing.T) {
	mediaprobe.Need(t)
	// Registered first, so it runs last: after everyone left and the
	// server closed, goroutines (the files' writers too) are back.
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dir := t.TempDir()
	_, url := startServer(t, room.Config{AuthSecret: testSecret, RecordDir: dir})
	mod := joinWithToken(t, ctx, url, "meet", "mod", modToken(t, "meet", "mod"))
	if code := recordReq(t, ctx, mod, true); code != "" {
		t.Fatalf("start: %s", code)
	}
	adaTok := mint(t, testSecret, "meet", "ada", access.Speaker, time.Hour, time.Now())
	first := joinClipPublisher(t, ctx, url, "meet", "ada", adaTok, nil)
	if w := first.Welcome(); w.Recording == nil || !*w.Recording {
		t.Error("a participant joining a recorded room was not told in welcome")
	}
	fileWrites := func(n int) {
		waitFile(t, dir, n)
		select { // the file records for 4 s
		case <-time.After(4 * time.Second):
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
	fileWrites(1)
	if err := first.Leave(); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, 10*time.Second, "the first file to end", func() (bool, string) {
		m := currentManifest(dir)
		return m != nil && m.Files[0].State == record.FileDone, "still recording"
	})
	second := joinClipPublisher(t, ctx, url, "meet", "ada", adaTok, nil)
	fileWrites(2)
	flowing(t, mod, second.ID(), "after the rejoin")
	if code := recordReq(t, ctx, mod, false); code != "" {
		t.Fatalf("stop: %s", code)
	}
	m, recDir := onlyManifest(t, dir)
	if len(m.Files) != 2 {
		t.Fatalf("%d files, want 2: %+v", len(m.Files), m.Files)
	}
	for _, f := range m.Files {
		if f.State != record.FileDone || f.ParticipantID != "ada" || f.DurationMS < 3500 {
			t.Errorf("file %+v", f)
		}
		checkRecordedFile(t, filepath.Join(recDir, f.File), float64(f.DurationMS)/1000)
	}
	if m.Files[1].StartOffsetMS < m.Files[0].StartOffsetMS+m.Files[0].DurationMS {
		t.Errorf("the second file starts at %d ms, before the first ended (%d ms)", m.Files[1].StartOffsetMS, m.Files[0].End().Milliseconds())
	}
}

// Requests that cannot be served are refused with their documented code,
// and the room goes on as before.
func TestRecordBadRequests(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// A server without a recording directory records nothing.
	_, url := startServer(t, room.Config{AuthSecret: testSecret})
	mod := joinWithToken(t, ctx, url, "r", "mod", modToken(t, "r", "mod"))
	if code := recordReq(t, ctx, mod, true); code != signal.CodeRecordingUnavailable {
		t.Errorf("start without -record-dir: %q, want %s", code, signal.CodeRecordingUnavailable)
	}

	// A directory that cannot be made (a file is in the way).
	blocked := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocked, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, url = startServer(t, room.Config{AuthSecret: testSecret, RecordDir: filepath.Join(blocked, "rec")})
	mod = joinWithToken(t, ctx, url, "r", "mod", modToken(t, "r", "mod"))
	pub := joinClipPublisher(t, ctx, url, "r", "ada", mint(t, testSecret, "r", "ada", access.Speaker, time.Hour, time.Now()), nil)
	flowing(t, mod, pub.ID(), "before")
	if code := recordReq(t, ctx, mod, true); code != signal.CodeRecordingFailed {
		t.Errorf("start into an unwritable directory: %q, want %s", code, signal.CodeRecordingFailed)
	}
	if sawRecording(mod, true, "") || sawRecording(pub.testPeer, true, "") {
		t.Error("told the recording started, though it could not")
	}
	flowing(t, mod, pub.ID(), "after the unwritable directory")

	// A speaker may not; a stop without a start, a second start: refused.
	dir := t.TempDir()
	_, url = startServer(t, room.Config{AuthSecret: testSecret, RecordDir: dir})
	mod = joinWithToken(t, ctx, url, "r", "mod", modToken(t, "r", "mod"))
	pub = joinClipPublisher(t, ctx, url, "r", "ada", mint(t, testSecret, "r", "ada", access.Speaker, time.Hour, time.Now()), nil)
	for _, c := range []struct {
		what string
		who  *testPeer
		on   bool
		want string
	}{
		{"a speaker starts", pub.testPeer, true, signal.CodeForbidden},
		{"stop without start", mod, false, signal.CodeInvalidState},
		{"start", mod, true, ""},
		{"start twice", mod, true, signal.CodeInvalidState},
		{"a speaker stops", pub.testPeer, false, signal.CodeForbidden},
		{"stop", mod, false, ""},
		{"stop twice", mod, false, signal.CodeInvalidState},
	} {
		if code := recordReq(t, ctx, c.who, c.on); code != c.want {
			t.Errorf("%s: %q, want %q", c.what, code, c.want)
		}
		flowing(t, mod, pub.ID(), "after "+c.what)
	}
	m, _ := onlyManifest(t, dir)
	if m.EndedAt == nil {
		t.Error("the recording's manifest has no end")
	}
}

// fullDisk is a media file that takes limit bytes, then fails as a full
// disk does.
type fullDisk struct {
	*os.File
	left int64
}

func (f *fullDisk) Write(b []byte) (int, error) {
	if int64(len(b)) > f.left {
		n, _ := f.File.Write(b[:f.left])
		f.left = 0
		return n, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	f.left -= int64(len(b))
	return f.File.Write(b)
}

// A disk that fills up stops the recording: the moderator is told why,
// everyone that it stopped, the file is valid up to the failure, and the
// room's media never stops.
func TestRecordDiskFull(t *testing.T) {
	mediaprobe.Need(t)
	// Registered first, so it runs last: after everyone left and the
	// server closed, goroutines (the files' writers too) are back.
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	m, url := startServer(t, room.Config{AuthSecret: testSecret, RecordDir: dir})
	var files atomic.Int32
	m.SetRecordFiles(func(path string) (record.File, error) {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return nil, err
		}
		if files.Add(1) > 1 {
			return f, nil // the disk has room again
		}
		return &fullDisk{File: f, left: 1 << 20}, nil
	})
	mod := joinWithToken(t, ctx, url, "r", "mod", modToken(t, "r", "mod"))
	pub := joinClipPublisher(t, ctx, url, "r", "ada", mint(t, testSecret, "r", "ada", access.Speaker, time.Hour, time.Now()), nil)
	if code := recordReq(t, ctx, mod, true); code != "" {
		t.Fatalf("start: %s", code)
	}
	wait.Until(t, 20*time.Second, "the moderator to hear the recording failed", func() (bool, string) {
		return sawRecording(mod, false, signal.CodeRecordingFailed), ""
	})
	wait.Until(t, 5*time.Second, "the speaker to hear the recording stopped", func() (bool, string) {
		return sawRecording(pub.testPeer, false, ""), ""
	})
	if sawRecording(pub.testPeer, false, signal.CodeRecordingFailed) {
		t.Error("a speaker was sent the moderators' error")
	}
	flowing(t, mod, pub.ID(), "after the disk filled up")
	man, recDir := onlyManifest(t, dir)
	if len(man.Files) != 1 || man.Files[0].State != record.FileFailed || man.EndedAt == nil {
		t.Fatalf("manifest %+v, want one failed file and an end", man)
	}
	mediaprobe.Decodes(t, filepath.Join(recDir, man.Files[0].File))
	// The room may record again (onto a disk with room now).
	if code := recordReq(t, ctx, mod, true); code != "" {
		t.Fatalf("start again: %s", code)
	}
	if code := recordReq(t, ctx, mod, false); code != "" {
		t.Fatalf("stop again: %s", code)
	}
}
