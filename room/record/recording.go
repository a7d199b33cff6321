package record

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// RecordingParams configure a Recording.
type RecordingParams struct {
	// Dir is the recording's own directory, made if missing; it holds the
	// media files and manifest.json.
	Dir  string
	Room string
	// Start is the zero of the recording's clock (time.Now() when zero);
	// arrival times given to tracks are measured against it, so it should
	// carry Go's monotonic reading.
	Start  time.Time
	Logger *slog.Logger
	// Metrics may be shared by all recordings; nil records none.
	Metrics *Metrics
	// OnError is told about every file that stops on an error, once, from
	// that file's writer goroutine. It must not block for long nor close
	// the Recorder or Recording (Close waits for that goroutine).
	OnError func(FileError)
	// JitterDelay is how long a packet waits for those before it
	// (retransmissions) before they are given up; default 400 ms.
	JitterDelay time.Duration
	// QueueFrames bounds the frames waiting for a file's writer; default
	// 512 (about 8 s of audio and video). A full queue drops frames.
	QueueFrames int
	// CreateFile makes a new media file; default a new *os.File.
	CreateFile func(path string) (File, error)
}

// FileError says which file stopped on which error.
type FileError struct {
	File          string // relative to the recording's directory
	ParticipantID string
	Source        Source
	Err           error
}

func (e FileError) Error() string {
	return fmt.Sprintf("recording %s (%s %s): %v", e.File, e.ParticipantID, e.Source, e.Err)
}

func (e FileError) Unwrap() error { return e.Err }

// Recording is one recording of a room: a directory of files on one clock
// and the manifest that lists them.
type Recording struct {
	p     RecordingParams
	start time.Time
	log   *slog.Logger

	mu        sync.Mutex
	manifest  Manifest
	recorders map[*Recorder]struct{}
	closed    bool
}

// Default parameters.
const (
	DefaultJitterDelay = 400 * time.Millisecond
	DefaultQueueFrames = 512
)

// NewRecording makes the directory and writes the first manifest, so that
// an unwritable directory is an error here and not later.
func NewRecording(p RecordingParams) (*Recording, error) {
	if p.Dir == "" {
		return nil, fmt.Errorf("%w: no directory", ErrBadParams)
	}
	if p.Start.IsZero() {
		p.Start = time.Now()
	}
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	if p.JitterDelay <= 0 {
		p.JitterDelay = DefaultJitterDelay
	}
	if p.QueueFrames <= 0 {
		p.QueueFrames = DefaultQueueFrames
	}
	if p.CreateFile == nil {
		p.CreateFile = createFile
	}
	if err := os.MkdirAll(p.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("recording directory: %w", err)
	}
	r := &Recording{p: p, start: p.Start, log: p.Logger.With("room", p.Room),
		recorders: map[*Recorder]struct{}{},
		manifest:  Manifest{Version: ManifestVersion, Room: p.Room, StartedAt: p.Start.UTC(), Files: []FileEntry{}}}
	if err := writeManifest(p.Dir, &r.manifest); err != nil {
		return nil, fmt.Errorf("recording directory %s: %w", p.Dir, err)
	}
	p.Metrics.addActive(1)
	return r, nil
}

// Dir is the recording's directory.
func (r *Recording) Dir() string { return r.p.Dir }

// Start is the zero of the recording's clock.
func (r *Recording) Start() time.Time { return r.start }

// Manifest returns a copy of the manifest as it stands.
func (r *Recording) Manifest() Manifest {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.manifest
	m.Files = append([]FileEntry(nil), m.Files...)
	return m
}

// NewRecorder starts recording one participant's source into a new file.
// The file is created by its writer when the first video keyframe (or,
// without video, the first audio frame) arrives.
func (r *Recording) NewRecorder(p RecorderParams) (*Recorder, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, ErrClosed
	}
	rec, entry, err := newRecorder(r, p, len(r.manifest.Files)+1)
	if err != nil {
		return nil, err
	}
	rec.entry = len(r.manifest.Files)
	r.manifest.Files = append(r.manifest.Files, entry)
	r.recorders[rec] = struct{}{}
	go rec.w.run()
	return rec, nil
}

// Close stops every Recorder still open, waits for their files and writes
// the final manifest. It returns the files' and the manifest's errors.
func (r *Recording) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	r.closed = true
	open := make([]*Recorder, 0, len(r.recorders))
	for rec := range r.recorders {
		open = append(open, rec)
	}
	r.mu.Unlock()
	var errs []error
	for _, rec := range open {
		if err := rec.Close(); err != nil && !errors.Is(err, ErrClosed) {
			errs = append(errs, err)
		}
	}
	r.mu.Lock()
	now := r.start.Add(time.Since(r.start)).UTC()
	r.manifest.EndedAt = &now
	err := writeManifest(r.p.Dir, &r.manifest)
	r.mu.Unlock()
	r.p.Metrics.addActive(-1)
	return errors.Join(append(errs, err)...)
}

// update changes a file's manifest entry and writes the manifest. It runs
// on the file's writer goroutine, never on the packet path.
func (r *Recording) update(rec *Recorder, change func(*FileEntry)) {
	r.mu.Lock()
	change(&r.manifest.Files[rec.entry])
	err := writeManifest(r.p.Dir, &r.manifest)
	r.mu.Unlock()
	if err != nil {
		r.log.Warn("recording manifest not written", "err", err)
		r.report(FileError{File: ManifestName, ParticipantID: rec.p.ParticipantID, Source: rec.p.Source, Err: err})
	}
}

// forget drops a closed Recorder from the open ones.
func (r *Recording) forget(rec *Recorder) {
	r.mu.Lock()
	delete(r.recorders, rec)
	r.mu.Unlock()
}

func (r *Recording) report(e FileError) {
	r.p.Metrics.writeError()
	if r.p.OnError != nil {
		r.p.OnError(e)
	}
}

// fileName makes a file name that says who and what, safe on any
// filesystem: "003-alice-camera.webm".
func fileName(seq int, participant string, src Source, ext string) string {
	var b strings.Builder
	for _, c := range participant {
		if b.Len() >= 40 {
			break
		}
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		b.WriteString("anon")
	}
	return fmt.Sprintf("%03d-%s-%s.%s", seq, b.String(), src, ext)
}
