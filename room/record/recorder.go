package record

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
)

// RecorderParams say whose source a Recorder records and how its tracks
// were negotiated.
type RecorderParams struct {
	ParticipantID   string
	ParticipantName string
	Source          Source
	Video           *Codec // nil: no video
	Audio           *Codec // nil: no audio
	// RequestKeyframe asks the sender for a keyframe (the caller sends a
	// PLI). The recorder calls it on the packet path, at most every
	// keyframeRequestInterval, when it starts and after a loss it could
	// not repair; it must not block.
	RequestKeyframe func()
}

// Recorder records one participant's source (a video track and its audio
// track) into one file.
type Recorder struct {
	rec   *Recording
	p     RecorderParams
	entry int // index in the manifest's files
	name  string
	video *Track
	audio *Track
	queue chan *frame
	pool  *framePool
	w     *writer

	failed    atomic.Bool
	closeOnce sync.Once
	done      chan struct{} // closed when the writer has finished
	err       error         // the file's error, set before done closes
}

func newRecorder(r *Recording, p RecorderParams, seq int) (*Recorder, FileEntry, error) {
	if p.Video == nil && p.Audio == nil {
		return nil, FileEntry{}, ErrNoTracks
	}
	if p.Source != SourceCamera && p.Source != SourceScreen {
		return nil, FileEntry{}, fmt.Errorf("%w: source %q", ErrBadParams, p.Source)
	}
	rec := &Recorder{rec: r, p: p, queue: make(chan *frame, r.p.QueueFrames), pool: newFramePool(r.p.QueueFrames + framesOutsideQueue),
		done: make(chan struct{})}
	entry := FileEntry{ParticipantID: p.ParticipantID, ParticipantName: p.ParticipantName, Source: p.Source, State: FileRecording}
	ext := "webm"
	if p.Video != nil {
		k, err := kindOf(p.Video, true)
		if err != nil {
			return nil, FileEntry{}, err
		}
		if !k.webmAllowed() {
			ext = "mkv"
		}
		rec.video = newTrack(rec, k, p.Video, videoTrackNumber, 512)
		entry.Video = &VideoStream{Codec: p.Video.MimeType}
	}
	if p.Audio != nil {
		k, err := kindOf(p.Audio, false)
		if err != nil {
			return nil, FileEntry{}, err
		}
		rec.audio = newTrack(rec, k, p.Audio, audioTrackNumber, 64)
		ch := 2
		if p.Audio.Channels == 1 {
			ch = 1
		}
		entry.Audio = &AudioStream{Codec: p.Audio.MimeType, SampleRate: 48000, Channels: ch}
	}
	rec.name = fileName(seq, p.ParticipantID, p.Source, ext)
	entry.File = rec.name
	rec.w = newWriter(rec)
	return rec, entry, nil
}

// Video is the video track, nil when the source has none.
func (r *Recorder) Video() *Track { return r.video }

// Audio is the audio track, nil when the source has none.
func (r *Recorder) Audio() *Track { return r.audio }

// File is the file's name in the recording's directory.
func (r *Recorder) File() string { return r.name }

// Err is the error that stopped the file, or nil.
func (r *Recorder) Err() error {
	select {
	case <-r.done:
		return r.err
	default:
	}
	if r.failed.Load() {
		return r.w.stoppedBy()
	}
	return nil
}

// Close finishes the file: the tracks give up what they still wait for,
// the writer writes what is queued, the muxer writes the index. It returns
// the file's error, if one stopped it; closing again returns ErrClosed.
func (r *Recorder) Close() error {
	err := ErrClosed
	r.closeOnce.Do(func() {
		for _, t := range []*Track{r.video, r.audio} {
			if t != nil {
				t.close()
			}
		}
		close(r.queue)
		<-r.done
		r.rec.forget(r)
		err = r.err
	})
	return err
}

// enqueue hands a frame to the writer without waiting; a full queue drops it.
func (r *Recorder) enqueue(f *frame) bool {
	select {
	case r.queue <- f:
		return true
	default:
		r.pool.put(f)
		r.rec.p.Metrics.droppedFrame()
		return false
	}
}

// framesOutsideQueue are the frames a Recorder uses besides those queued:
// one being put together and those held back (videoLine) per track, those the writer holds to interleave
// and the one the muxer is writing. The pool keeps as many frames as were
// ever in flight at once, up to the queue's size and these.
const framesOutsideQueue = 64 + maxLineFrames

// keyframeRequestInterval spaces keyframe requests: a keyframe takes a
// round trip and the encoder's time to come.
const keyframeRequestInterval = 500 * time.Millisecond

// Track takes one track's RTP packets. WriteRTP may be called from one
// goroutine at a time per track; audio and video may be fed concurrently.
type Track struct {
	r     *Recorder
	kind  codecKind
	video bool
	num   int
	jb    *jitterBuffer
	dep   depacketizer
	clock mediaClock

	mu          sync.Mutex
	closed      bool
	cur         *frame // the frame being put together
	curTS       uint32
	curSSRC     uint32
	line        videoLine // video: whole frames not yet handed to the writer (videoline.go)
	needKey     bool
	asked       bool
	lastAsk     int64
	keyRequests atomic.Uint64
}

func newTrack(r *Recorder, k codecKind, c *Codec, num, slots int) *Track {
	return &Track{r: r, kind: k, video: k != kindOpus, num: num, needKey: k != kindOpus, line: newVideoLine(),
		jb:    newJitterBuffer(slots, r.rec.p.JitterDelay.Nanoseconds()),
		dep:   newDepacketizer(k),
		clock: mediaClock{rate: int64(c.ClockRate)}}
}

// KeyframeRequests counts the keyframes this track asked for.
func (t *Track) KeyframeRequests() uint64 { return t.keyRequests.Load() }

// WriteRTP takes one packet that arrived at arrival. The packet is copied;
// the caller may reuse it at once. It never blocks on disk.
func (t *Track) WriteRTP(p *rtp.Packet, arrival time.Time) {
	now := arrival.Sub(t.r.rec.start).Nanoseconds()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed || t.r.failed.Load() {
		return
	}
	if t.needKey {
		t.askKeyframe(now)
	}
	switch t.jb.push(p, now) {
	case pushNewStream:
		// Another SSRC (a layer switch) or a restarted stream: what it
		// sends refers to nothing recorded yet, so video waits for a
		// keyframe (which a switching SFU sends first anyway).
		t.drain(now, true)
		t.lose(now)
		t.jb.reset(p)
		t.jb.push(p, now)
	case pushTooBig, pushLate:
		return
	}
	t.clock.observe(p.SSRC, p.Timestamp, now)
	t.drain(now, false)
}

// drain hands every packet the buffer releases to the depacketizer.
func (t *Track) drain(now int64, force bool) {
	for {
		s, lost, ok := t.jb.pop(now, force)
		if !ok {
			return
		}
		if lost {
			t.lose(now)
			continue
		}
		t.handle(s, now)
	}
}

func (t *Track) handle(s *slot, now int64) {
	if len(s.payload) == 0 {
		// Padding: a sender probing its bandwidth on the media SSRC (no
		// RTX is negotiated). In sequence, but no part of any frame.
		return
	}
	if t.cur != nil && (s.ts != t.curTS || s.ssrc != t.curSSRC) {
		t.lose(now) // the frame ended without its marker bit
	}
	if t.cur == nil {
		if !t.dep.begins(s.payload) {
			t.lose(now) // the rest of a frame whose start was lost
			return
		}
		t.cur, t.curTS, t.curSSRC = t.r.pool.get(), s.ts, s.ssrc
	}
	if err := t.dep.add(t.cur, s.payload); err != nil {
		t.lose(now)
		return
	}
	if s.marker || !t.video {
		t.complete(now)
	}
}

// lose drops the frame being put together; video then waits for a keyframe.
func (t *Track) lose(now int64) {
	if t.cur != nil {
		t.r.pool.put(t.cur)
		t.cur = nil
	}
	t.dep.reset()
	if t.video {
		t.needKey = true
		t.askKeyframe(now)
	}
}

func (t *Track) complete(now int64) {
	f := t.cur
	t.cur = nil
	if err := t.dep.finish(f); err != nil {
		t.r.pool.put(f)
		t.lose(now)
		return
	}
	if t.video {
		if t.needKey && !f.key {
			t.r.pool.put(f)
			t.askKeyframe(now)
			return
		}
		if f.key {
			t.needKey = false
		}
	}
	f.track = t.num
	f.pts = t.clock.pts(t.curTS)
	if !t.video {
		t.r.enqueue(f)
		return
	}
	t.line.push(f, t.curTS, t.clock.epochs)
	t.releaseFrames(now, false)
}

func (t *Track) askKeyframe(now int64) {
	if t.closed || t.r.p.RequestKeyframe == nil || (t.asked && now-t.lastAsk < keyframeRequestInterval.Nanoseconds()) {
		return
	}
	t.asked, t.lastAsk = true, now
	t.keyRequests.Add(1)
	t.r.p.RequestKeyframe()
}

// close gives up on missing packets, writes what is whole, and stops.
func (t *Track) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true // first: no keyframe requests while draining
	if !t.r.failed.Load() {
		t.drain(0, true)
		t.releaseFrames(0, true)
	}
	if t.cur != nil {
		t.r.pool.put(t.cur)
		t.cur = nil
	}
	for t.line.n > 0 {
		t.r.pool.put(t.line.pop().f)
	}
}
