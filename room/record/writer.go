package record

import (
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/at-wat/ebml-go/mkvcore"
	"github.com/at-wat/ebml-go/webm"
)

// Muxer settings.
const (
	// Clusters start at a video keyframe once they are a second long and
	// end after two seconds anyway: a full disk costs at most the cluster
	// being written, and seeking lands near a keyframe.
	minClusterMS = 1000
	maxClusterMS = 2000
	// cuesReserve is the room kept at the file's start for its index: a
	// cue per cluster is ~20 bytes, so 256 KiB indexes 7 hours before the
	// muxer thins the index out.
	cuesReserve = 256 << 10
	// maxSkew is how far (media time) one track's frames wait for the
	// other's before they are written anyway: the other is muted.
	maxSkew = int64(time.Second)
)

// writer is a Recorder's file: it runs on its own goroutine, takes frames
// from the queue, writes them in time order and keeps the manifest entry.
type writer struct {
	r        *Recorder
	sink     *sink
	tracks   [3]mkvcore.BlockWriteCloser // by track number
	pending  [3]frameQueue               // by track number
	inflight *frame                      // given to the muxer, not yet known to be written
	open     bool
	failed   bool
	start    int64 // pts of the file's first frame
	last     int64 // pts of the latest frame written
	width    int
	height   int

	mu  sync.Mutex
	err error // what stopped the file
}

func newWriter(r *Recorder) *writer { return &writer{r: r} }

func (w *writer) run() {
	defer close(w.r.done)
	for f := range w.r.queue {
		if w.failed {
			w.r.pool.put(f)
			continue
		}
		w.accept(f)
	}
	w.finish()
}

func (w *writer) accept(f *frame) {
	if !w.open {
		if !w.opens(f) {
			return
		}
		if err := w.create(f); err != nil {
			w.r.pool.put(f)
			w.fail(err)
			return
		}
		// Audio that waited for the keyframe: what is older goes.
		a := &w.pending[audioTrackNumber]
		for a.n > 0 && a.peek().pts < w.start {
			w.r.pool.put(a.pop())
		}
	}
	if f.pts < w.start {
		w.r.pool.put(f) // audio from before the first keyframe
		return
	}
	if f.width > w.width || f.height > w.height {
		w.width, w.height = max(f.width, w.width), max(f.height, w.height)
	}
	w.pending[f.track].push(f)
	w.interleave(false)
}

// opens says whether f can start the file: a video keyframe, or without
// video any audio frame. Audio waits (at most maxSkew of it) for the
// keyframe, which may complete later than audio sent after it.
func (w *writer) opens(f *frame) bool {
	if w.r.video == nil || (f.track == videoTrackNumber && f.key) {
		return true
	}
	if f.track == audioTrackNumber {
		a := &w.pending[audioTrackNumber]
		a.push(f)
		for a.tail().pts-a.peek().pts > maxSkew {
			w.r.pool.put(a.pop())
		}
		return false
	}
	w.r.pool.put(f)
	return false
}

// interleave writes pending frames in time order. A frame waits while the
// other track has nothing pending, unless that track is muted (this one
// got ahead by maxSkew) or all is flushed.
func (w *writer) interleave(all bool) {
	v, a := &w.pending[videoTrackNumber], &w.pending[audioTrackNumber]
	for !w.failed {
		var q *frameQueue
		switch {
		case v.n > 0 && a.n > 0:
			q = v
			if a.peek().pts < v.peek().pts {
				q = a
			}
		case v.n > 0 && (all || w.r.audio == nil || v.tail().pts-v.peek().pts > maxSkew):
			q = v
		case a.n > 0 && (all || w.r.video == nil || a.tail().pts-a.peek().pts > maxSkew):
			q = a
		default:
			return
		}
		w.write(q.pop())
	}
}

func (w *writer) write(f *frame) {
	ms := (f.pts - w.start) / int64(time.Millisecond)
	if _, err := w.tracks[f.track].Write(f.key, ms, f.data); err != nil {
		w.r.pool.put(f)
		w.fail(err)
		return
	}
	// The muxer took f; it has written the frame before, so that is free.
	w.r.pool.put(w.inflight)
	w.inflight = f
	w.last = max(w.last, f.pts)
	if err := w.failure(); err != nil {
		w.fail(err)
	}
}

// create makes the file and the muxer; first is the file's first frame.
func (w *writer) create(first *frame) error {
	rec := w.r.rec
	path := filepath.Join(rec.p.Dir, w.r.name)
	f, err := rec.p.CreateFile(path)
	if err != nil {
		return fmt.Errorf("create %s: %w", w.r.name, err)
	}
	w.sink = newSink(f, rec.p.Metrics.addBytes)
	header := *webm.DefaultEBMLHeader
	var descs []mkvcore.TrackDescription
	main := uint64(audioTrackNumber)
	if w.r.video != nil {
		main = videoTrackNumber
		descs = append(descs, mkvcore.TrackDescription{TrackNumber: videoTrackNumber,
			TrackEntry: videoEntry(w.r.video.kind, first.width, first.height, first.config)})
		if !w.r.video.kind.webmAllowed() {
			header.DocType = "matroska"
		}
	}
	if w.r.audio != nil {
		descs = append(descs, mkvcore.TrackDescription{TrackNumber: audioTrackNumber, TrackEntry: audioEntry(w.r.p.Audio)})
	}
	info := &webm.Info{TimecodeScale: 1_000_000, MuxingApp: "confab", WritingApp: "confab",
		DateUTC: rec.start.Add(time.Duration(first.pts)).UTC()}
	ws, err := mkvcore.NewSimpleBlockWriter(w.sink, descs,
		mkvcore.WithEBMLHeader(&header), mkvcore.WithSegmentInfo(info),
		mkvcore.WithSeekHead(true), mkvcore.WithCues(cuesReserve),
		mkvcore.WithMinMaxClusterDuration(main, minClusterMS, maxClusterMS),
		mkvcore.WithOnFatalHandler(w.setFailure),
		mkvcore.WithOnErrorHandler(func(error) {}), // a frame too old for its cluster: dropped
	)
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("start %s: %w", w.r.name, err)
	}
	for i, d := range descs {
		w.tracks[d.TrackNumber] = ws[i]
	}
	w.open, w.start, w.last = true, first.pts, first.pts
	rec.p.Metrics.addFiles(1)
	rec.update(w.r, func(e *FileEntry) {
		e.StartOffsetMS = first.pts / int64(time.Millisecond)
	})
	return nil
}

// setFailure records the first error; the muxer's goroutine calls it too.
func (w *writer) setFailure(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
}

// stoppedBy is the error recorded so far; any goroutine may ask.
func (w *writer) stoppedBy() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// failure is the error that stopped the file: the muxer's, or the sink's.
// Only the writer's goroutine calls it.
func (w *writer) failure() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil && w.sink != nil {
		w.err = w.sink.failure()
	}
	return w.err
}

// fail stops the file: the muxer finishes what it has, the tracks stop
// taking packets, the error is reported once.
func (w *writer) fail(err error) {
	if w.failed {
		return
	}
	w.setFailure(err)
	w.closeMuxer()
	w.stop(w.failure())
}

// stop reports the error that stopped the file.
func (w *writer) stop(err error) {
	w.setFailure(err)
	w.failed = true
	w.r.failed.Store(true)
	w.r.rec.log.Warn("recording file stopped", "file", w.r.name, "participant", w.r.p.ParticipantID, "err", err)
	w.r.rec.report(FileError{File: w.r.name, ParticipantID: w.r.p.ParticipantID, Source: w.r.p.Source, Err: err})
	w.r.err = err
	w.updateEntry(FileFailed, err)
}

// closeMuxer closes the track writers; closing the last one waits until
// the muxer has written the index and closed the file.
func (w *writer) closeMuxer() {
	if !w.open {
		return
	}
	w.open = false
	for _, t := range w.tracks {
		if t != nil {
			_ = t.Close()
		}
	}
	w.r.pool.put(w.inflight)
	w.inflight = nil
	for i := range w.pending {
		for w.pending[i].n > 0 {
			w.r.pool.put(w.pending[i].pop())
		}
	}
	w.r.rec.p.Metrics.addFiles(-1)
}

// finish runs when the queue is closed: write what is pending, close.
func (w *writer) finish() {
	if w.failed {
		return
	}
	if !w.open {
		w.updateEntry(FileEmpty, nil)
		return
	}
	w.interleave(true)
	if w.failed {
		return
	}
	w.closeMuxer()
	if err := w.failure(); err != nil {
		w.stop(err)
		return
	}
	w.updateEntry(FileDone, nil)
}

func (w *writer) updateEntry(state string, err error) {
	var size int64
	if w.sink != nil {
		size = w.sink.size()
	}
	w.r.rec.update(w.r, func(e *FileEntry) {
		e.State, e.Bytes = state, size
		if err != nil {
			e.Error = err.Error()
		}
		if w.sink != nil {
			e.DurationMS = (w.last - w.start) / int64(time.Millisecond)
		}
		if e.Video != nil {
			e.Video.Width, e.Video.Height = w.width, w.height
		}
	})
}

// frameQueue is a growable ring of frames waiting to be interleaved.
type frameQueue struct {
	buf     []*frame
	head, n int
}

func (q *frameQueue) push(f *frame) {
	if q.n == len(q.buf) {
		grown := make([]*frame, max(64, 2*len(q.buf)))
		for i := range q.n {
			grown[i] = q.buf[(q.head+i)%len(q.buf)]
		}
		q.buf, q.head = grown, 0
	}
	q.buf[(q.head+q.n)%len(q.buf)] = f
	q.n++
}

func (q *frameQueue) peek() *frame { return q.buf[q.head] }
func (q *frameQueue) tail() *frame { return q.buf[(q.head+q.n-1)%len(q.buf)] }

func (q *frameQueue) pop() *frame {
	if q.n == 0 {
		return nil
	}
	f := q.buf[q.head]
	q.buf[q.head] = nil
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	return f
}
