package record

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fullDisk is a real file on a disk that fills up after limit bytes:
// writes past it are cut short with ENOSPC, as a full filesystem does.
type fullDisk struct {
	*os.File
	mu      sync.Mutex
	limit   int64
	written int64
}

func (d *fullDisk) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	room := d.limit - d.written
	if room <= 0 {
		return 0, &fs.PathError{Op: "write", Path: d.Name(), Err: syscall.ENOSPC}
	}
	if int64(len(p)) > room {
		n, _ := d.File.Write(p[:room])
		d.written += int64(n)
		return n, &fs.PathError{Op: "write", Path: d.Name(), Err: syscall.ENOSPC}
	}
	n, err := d.File.Write(p)
	d.written += int64(n)
	return n, err
}

func TestRecordDiskFull(t *testing.T) {
	needFFmpeg(t)
	c := mustClips(t)
	metrics := NewMetrics()
	var disk *fullDisk
	rec, errs := newTestRecording(t, RecordingParams{Metrics: metrics, CreateFile: func(path string) (File, error) {
		f, err := createFile(path)
		if err != nil {
			return nil, err
		}
		disk = &fullDisk{File: f.(*os.File), limit: 600 << 10}
		return disk, nil
	}})
	r, err := recordClip(t, rec, simParams{duration: 10 * time.Second, layers: c.layers[:], layer: 1, audio: c.audio, net: lossy, seed: 7}, "frank", SourceCamera, 0)
	if !errors.Is(err, syscall.ENOSPC) || !errors.Is(r.Err(), syscall.ENOSPC) {
		t.Fatalf("Close: %v, Err: %v; want ENOSPC", err, r.Err())
	}
	reported := errs.list()
	if len(reported) != 1 || reported[0].File != r.File() || reported[0].ParticipantID != "frank" || !errors.Is(reported[0], syscall.ENOSPC) {
		t.Fatalf("reported %v, want one ENOSPC for %s", reported, r.File())
	}
	if got := counterValue(t, metrics, "confab_recording_write_errors_total"); got != 1 {
		t.Errorf("write errors metric %v, want 1", got)
	}
	if err := rec.Close(); err != nil {
		t.Fatalf("Recording.Close: %v", err)
	}
	e := rec.Manifest().Files[0]
	path := filepath.Join(rec.Dir(), r.File())
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if e.State != FileFailed || e.Error == "" || e.Bytes != st.Size() || st.Size() > 600<<10 {
		t.Errorf("manifest entry %+v, file %d bytes", e, st.Size())
	}
	// Cut back to the last whole cluster: what is there plays cleanly.
	p := probe(t, path)
	vi, _, _, _ := p.stream(t, "video")
	if d := p.duration(vi); d < 1 || d > 9 {
		t.Errorf("%.1f s of video kept, want what fit in 600 KiB", d)
	}
	decodes(t, path)
	framesAreWhole(t, path, c.layers[:])
	// The header and the manifest count what the muxer was given: at most
	// the cluster that was cut off more.
	if kept, said := p.duration(vi), float64(e.DurationMS)/1000; said < kept-0.1 || said > kept+float64(maxClusterMS)/1000+0.5 {
		t.Errorf("manifest says %.1f s, the file keeps %.1f s", said, kept)
	}
	t.Logf("disk full after %d bytes: %d bytes kept, %.1f s of video", disk.limit, st.Size(), p.duration(vi))
}

func TestRecordUnwritableDirectory(t *testing.T) {
	c := mustClips(t)
	// A directory that cannot be made: its parent is a file.
	parent := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(parent, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := NewRecording(RecordingParams{Dir: filepath.Join(parent, "rec")}); !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("NewRecording under a file: %v, want ENOTDIR", err)
	}
	// A directory that stops taking files mid-recording.
	dir := filepath.Join(t.TempDir(), "rec")
	rec, errs := newTestRecording(t, RecordingParams{Dir: dir})
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o755)
	if os.Geteuid() == 0 {
		// Root ignores permission bits; take the directory away instead.
		if err := os.Rename(dir, dir+".gone"); err != nil {
			t.Fatal(err)
		}
		defer os.Rename(dir+".gone", dir)
	}
	r, err := recordClip(t, rec, simParams{duration: 2 * time.Second, layers: c.layers[:], audio: c.audio, seed: 8}, "gina", SourceScreen, 0)
	if err == nil || r.Err() == nil {
		t.Fatalf("Close: %v, Err: %v; want the create error", err, r.Err())
	}
	var fe FileError
	if list := errs.list(); len(list) == 0 || !errors.As(error(list[0]), &fe) || fe.File != r.File() {
		t.Fatalf("reported %v", list)
	}
	if fe.Source != SourceScreen || fe.Err == nil {
		t.Errorf("reported %+v", fe)
	}
	if err := rec.Close(); err == nil {
		t.Errorf("Recording.Close wrote its manifest into a directory that is gone")
	}
}

// stuckDisk is a real file whose writes wait until the disk is released.
type stuckDisk struct {
	*os.File
	release chan struct{}
}

func (d *stuckDisk) Write(p []byte) (int, error) {
	<-d.release
	return d.File.Write(p)
}

// TestRecordStuckDisk: a disk that stops answering fills the frame queue;
// the live path goes on without waiting, drops whole frames, asks for a
// keyframe, and the file resumes cleanly when the disk comes back.
func TestRecordStuckDisk(t *testing.T) {
	needFFmpeg(t)
	c := mustClips(t)
	metrics := NewMetrics()
	release := make(chan struct{})
	rec, errs := newTestRecording(t, RecordingParams{Metrics: metrics, QueueFrames: 64, CreateFile: func(path string) (File, error) {
		f, err := createFile(path)
		if err != nil {
			return nil, err
		}
		return &stuckDisk{File: f.(*os.File), release: release}, nil
	}})
	s := newSim(simParams{duration: 6 * time.Second, layers: c.layers[:], audio: c.audio, seed: 9}, rec.Start())
	r, err := rec.NewRecorder(RecorderParams{ParticipantID: "ivy", Source: SourceCamera, Video: vp8Codec, Audio: opusCodec, RequestKeyframe: s.requestKeyframe})
	if err != nil {
		t.Fatal(err)
	}
	fed := make(chan struct{})
	go func() { defer close(fed); s.run(r) }()
	select {
	case <-fed: // all 6 s went in while nothing could be written
	case <-time.After(30 * time.Second):
		close(release)
		t.Fatal("WriteRTP waited for the disk")
	}
	dropped := counterValue(t, metrics, "confab_recording_dropped_frames_total")
	if dropped == 0 || r.Video().KeyframeRequests() < 2 {
		t.Errorf("%v frames dropped, %d keyframe requests: the queue of 64 should have overflowed", dropped, r.Video().KeyframeRequests())
	}
	close(release)
	// The disk is back: more media, starting with the keyframe asked for.
	s.p.duration = 10 * time.Second
	s.runFrom(r, 6*time.Second)
	if err := r.Close(); err != nil || len(errs.list()) > 0 {
		t.Fatalf("close: %v, reported %v", err, errs.list())
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(rec.Dir(), r.File())
	decodes(t, path)
	framesAreWhole(t, path, c.layers[:])
	t.Logf("%v frames dropped while the disk was stuck", dropped)
}
