package room

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confab-sfu/confab/room/record"
	"github.com/confab-sfu/confab/sfu"
	"github.com/confab-sfu/confab/signal"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// Recording a room (docs/recording.md). A moderator starts and stops it
// over signaling; a token's record claim, or Config.RecordLectures for a
// lecture, starts it with the room. While it runs, each participant's
// camera (with its microphone) and screen (with its audio) go into one
// file each through room/record, fed by an sfu.Sink on every track: the
// best layer this node receives, after NACK repair, from a keyframe. A
// change in a source's tracks (a track added or ended by a renegotiation,
// a participant who leaves and comes back) closes its file and starts a
// new one. The first write error stops the whole recording: everyone is
// told it stopped, the moderators why; the live room never notices.
//
// In a cluster a recording belongs to the node where it was started: it
// records that node's participants and the tracks relayed to it (every
// track its members receive), and each node's state says whether it
// records, so the members of every node are told.

var recordMetrics = record.NewMetrics()

func init() { prometheus.MustRegister(recordMetrics) }

// sourceSettle is how long a change of a source's tracks waits for its
// sibling's (a camera's for its microphone's) before the file follows: a
// file's tracks are fixed when it starts.
const sourceSettle = 300 * time.Millisecond

// fileKey names one recorded source of one participant.
type fileKey struct {
	owner  ParticipantID
	screen bool // the screen and its audio; else the camera and microphone
}

func keyOf(t *publishedTrack) fileKey {
	return fileKey{owner: t.owner.id, screen: t.info.Source == sfu.SourceScreen || t.info.Source == sfu.SourceScreenAudio}
}

// roomRecording is a recording this node runs for a room.
type roomRecording struct {
	room *Room
	rec  *record.Recording

	// tmu guards the scheduled regroups; it is a leaf lock, taken under
	// the room's lock.
	tmu    sync.Mutex
	timers map[fileKey]*time.Timer
	ending bool
	wg     sync.WaitGroup // regroups scheduled or running

	mu      sync.Mutex // serializes changes of files; taken before the room's lock
	stopped bool
	files   map[fileKey]*sourceFile
}

// sourceFile is one file being written: the tracks that feed it.
type sourceFile struct {
	recvs []*sfu.Receiver // video (if any) first, then audio
	sinks []*sfu.Sink
	rec   *record.Recorder
	video atomic.Pointer[sfu.Sink] // where the recorder's keyframe requests go
}

// recordedTracks is what a source publishes now: at most one video and one
// audio track, with who publishes them.
type recordedTracks struct {
	video, audio *sfu.Receiver
	id, name     string
}

func (t recordedTracks) receivers() []*sfu.Receiver {
	var out []*sfu.Receiver
	for _, r := range []*sfu.Receiver{t.video, t.audio} {
		if r != nil {
			out = append(out, r)
		}
	}
	return out
}

// setRecording serves a moderator's record request.
func (r *Room) setRecording(mod *participant, on bool) *signal.Error {
	if !mod.permissions().Moderate {
		return signal.Errorf(signal.CodeForbidden, "only a moderator may start or stop recording")
	}
	if r.mgr.cfg.RecordDir == "" {
		return signal.Errorf(signal.CodeRecordingUnavailable, "this server does not record (it has no recording directory)")
	}
	if on {
		if e := r.startRecording(); e != nil {
			return e
		}
		mod.log.Info("recording started")
		return nil
	}
	if r.stopRecording(nil, nil) {
		mod.log.Info("recording stopped")
		return nil
	}
	if node := r.recordingNode(); node != "" {
		return r.askModeration(mod, node, reqRecordStop, modRequest{})
	}
	return signal.Errorf(signal.CodeInvalidState, "the room is not being recorded")
}

// startRecording starts recording the room on this node.
func (r *Room) startRecording() *signal.Error {
	r.mu.Lock()
	if r.rec != nil || r.recStarting || r.recordingNodeLocked() != "" {
		r.mu.Unlock()
		return signal.Errorf(signal.CodeInvalidState, "the room is already being recorded")
	}
	r.recStarting = true
	r.mu.Unlock()

	start := time.Now()
	rr := &roomRecording{room: r, timers: map[fileKey]*time.Timer{}, files: map[fileKey]*sourceFile{}}
	rec, err := record.NewRecording(record.RecordingParams{
		Dir:  filepath.Join(r.mgr.cfg.RecordDir, r.name, start.UTC().Format("2006-01-02T150405.000Z")),
		Room: r.name, Start: start, Logger: r.log, Metrics: recordMetrics, CreateFile: r.mgr.recordFile,
		// It must not block nor close the recording: the stop runs apart.
		OnError: func(e record.FileError) { go r.recordingFailed(rr, e) },
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recStarting = false
	if err != nil {
		r.log.Warn("recording could not start", "err", err)
		return signal.Errorf(signal.CodeRecordingFailed, "the recording could not start: %v", err)
	}
	select {
	case <-r.stop: // the room closed meanwhile
		go func() { _ = rec.Close() }()
		return signal.Errorf(signal.CodeInvalidState, "the room closed")
	default:
	}
	rr.rec = rec
	r.rec = rr
	r.log.Info("recording", "dir", rec.Dir())
	for _, t := range r.tracks {
		rr.later(keyOf(t), 0)
	}
	r.markDirtyLocked()
	r.recordingChangedLocked(nil)
	return nil
}

// stopRecording stops this node's recording of the room, if it runs one
// (only is not nil: if it is that one): everyone is told (the moderators
// with failure, when one stopped it), and the files and manifest are
// finished before it returns.
func (r *Room) stopRecording(only *roomRecording, failure error) bool {
	r.mu.Lock()
	rr := r.rec
	if only != nil && rr != only {
		rr = nil
	}
	if rr != nil {
		r.rec = nil
		r.markDirtyLocked()
		r.recordingChangedLocked(failure)
	}
	r.mu.Unlock()
	if rr == nil {
		return false
	}
	if err := rr.stop(); err != nil {
		r.log.Warn("recording finished with errors", "dir", rr.rec.Dir(), "err", err)
	} else {
		r.log.Info("recording finished", "dir", rr.rec.Dir())
	}
	return true
}

// recordingFailed stops the recording a write error broke (a full disk
// breaks every file soon), with a word to the moderators.
func (r *Room) recordingFailed(rr *roomRecording, e record.FileError) {
	who := e.ParticipantID
	for _, f := range rr.rec.Manifest().Files {
		if f.File == e.File && f.ParticipantName != "" {
			who = f.ParticipantName
		}
	}
	r.log.Warn("recording stopped by a write error", "file", e.File, "err", e.Err)
	r.stopRecording(rr, fmt.Errorf("recording stopped: %s's %s could not be written: %w", who, e.Source, e.Err))
}

// recordingOnLocked reports whether the room is being recorded, here or
// on another node.
func (r *Room) recordingOnLocked() bool { return r.rec != nil || r.recordingNodeLocked() != "" }

// recordingNodeLocked is the other node that records the room, or "".
func (r *Room) recordingNodeLocked() string {
	if r.cl == nil {
		return ""
	}
	for _, rn := range r.remoteNodesLocked() {
		if rn.recording {
			return rn.id
		}
	}
	return ""
}

// recordingNode is the other node that records the room, or "".
func (r *Room) recordingNode() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.recordingNodeLocked()
}

// recordingChangedLocked tells the members here when the room's recording
// went on or off; the moderators learn what stopped it.
func (r *Room) recordingChangedLocked(failure error) {
	on := r.recordingOnLocked()
	if on == r.recOn && failure == nil {
		return
	}
	r.recOn = on
	plain := &signal.Message{Type: signal.TypeRecording, Recording: &on}
	toMods := plain
	if failure != nil {
		toMods = &signal.Message{Type: signal.TypeRecording, Recording: &on, Code: signal.CodeRecordingFailed, Message: failure.Error()}
	}
	for _, p := range r.participants {
		if p.permissions().Moderate {
			p.send(toMods)
		} else {
			p.send(plain)
		}
	}
}

// recordTrackLocked schedules a source for recording again when one of its
// tracks came or went, after settle: its sibling may follow (a publisher
// adds both in one offer, and a leaving one ends both).
func (r *Room) recordTrackLocked(t *publishedTrack, settle time.Duration) {
	if r.rec != nil {
		r.rec.later(keyOf(t), settle)
	}
}

// later regroups a source's file after d (a timer per source: a second
// change within d is seen by the same regroup).
func (rr *roomRecording) later(key fileKey, d time.Duration) {
	rr.tmu.Lock()
	defer rr.tmu.Unlock()
	if rr.ending || rr.timers[key] != nil {
		return
	}
	rr.wg.Add(1)
	rr.timers[key] = time.AfterFunc(d, func() {
		defer rr.wg.Done()
		rr.tmu.Lock()
		delete(rr.timers, key)
		rr.tmu.Unlock()
		rr.regroup(key)
	})
}

// regroup makes a source's file follow its tracks: unchanged tracks keep
// their file; otherwise the file ends and, if tracks remain, a new one
// starts.
func (rr *roomRecording) regroup(key fileKey) {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	if rr.stopped {
		return
	}
	now := rr.room.sourceTracks(key)
	cur := rr.files[key]
	if cur != nil && slices.Equal(cur.recvs, now.receivers()) {
		return
	}
	if cur != nil {
		delete(rr.files, key)
		cur.close(rr.room)
	}
	if now.video == nil && now.audio == nil {
		return
	}
	f, err := rr.open(key, now)
	if err != nil {
		rr.room.log.Warn("recording: a source is not recorded", "participant", string(key.owner), "screen", key.screen, "err", err)
		return
	}
	rr.files[key] = f
}

// sourceTracks finds the live tracks of a source that can be recorded.
func (r *Room) sourceTracks(key fileKey) recordedTracks {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out recordedTracks
	ids := make([]sfu.TrackID, 0, 2)
	for id, t := range r.tracks {
		if keyOf(t) == key {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids) // the same pick every time when a source has two of a kind
	for _, id := range ids {
		t := r.tracks[id]
		recv := receiverOf(t.up)
		if recv == nil {
			continue
		}
		out.id, out.name = t.owner.recordingID(), t.owner.name
		if recv.Kind() == webrtc.RTPCodecTypeVideo && out.video == nil {
			out.video = recv
		} else if recv.Kind() == webrtc.RTPCodecTypeAudio && out.audio == nil {
			out.audio = recv
		}
	}
	return out
}

// receiverOf is the Receiver a track's media arrives on here: its own, or
// the one relayed from its node (nil while it is not pulled here).
func receiverOf(up UpTrack) *sfu.Receiver {
	switch u := up.(type) {
	case *sfu.Receiver:
		return u
	case *remoteUp:
		return u.relayed()
	}
	return nil
}

// recordingID names a participant in the manifest and file names: its
// token identity when it has one (a participant who comes back is the same
// person), else its participant id.
func (p *participant) recordingID() string {
	if p.identity != "" {
		return p.identity
	}
	return string(p.id)
}

// open starts a file for a source's tracks: the recorder, then a sink on
// each track (which asks for a keyframe to start the file with).
func (rr *roomRecording) open(key fileKey, t recordedTracks) (*sourceFile, error) {
	f := &sourceFile{recvs: t.receivers()}
	src := record.SourceCamera
	if key.screen {
		src = record.SourceScreen
	}
	p := record.RecorderParams{ParticipantID: t.id, ParticipantName: t.name, Source: src,
		RequestKeyframe: func() {
			if s := f.video.Load(); s != nil {
				s.RequestKeyframe()
			}
		}}
	if t.video != nil {
		p.Video = codecOf(t.video)
	}
	if t.audio != nil {
		p.Audio = codecOf(t.audio)
	}
	rec, err := rr.rec.NewRecorder(p)
	if err != nil {
		return nil, err
	}
	f.rec = rec
	if t.audio != nil {
		f.attach(t.audio, rec.Audio())
	}
	if t.video != nil {
		if s := f.attach(t.video, rec.Video()); s != nil {
			f.video.Store(s)
		}
	}
	return f, nil
}

func codecOf(recv *sfu.Receiver) *record.Codec {
	c := recv.CodecParams()
	return &record.Codec{MimeType: c.MimeType, ClockRate: c.ClockRate, Channels: c.Channels, Fmtp: c.Fmtp}
}

// attach feeds a track into the file; a track that ended meanwhile is
// left out (its end regroups the source anyway).
func (f *sourceFile) attach(recv *sfu.Receiver, to *record.Track) *sfu.Sink {
	s, err := recv.AddSink(to)
	if err != nil {
		return nil
	}
	f.sinks = append(f.sinks, s)
	return s
}

// close ends the file: no packet reaches it after its sinks close, then
// the recorder finishes it.
func (f *sourceFile) close(r *Room) {
	for _, s := range f.sinks {
		s.Close()
	}
	if err := f.rec.Close(); err != nil && !errors.Is(err, record.ErrClosed) {
		r.log.Warn("recording: a file ended with an error", "file", f.rec.File(), "err", err)
	}
}

// stop ends every file and the recording: no regroup runs after it, the
// manifest is final when it returns.
func (rr *roomRecording) stop() error {
	rr.tmu.Lock()
	rr.ending = true
	for key, t := range rr.timers {
		if t.Stop() {
			rr.wg.Done()
		}
		delete(rr.timers, key)
	}
	rr.tmu.Unlock()
	rr.wg.Wait()
	rr.mu.Lock()
	rr.stopped = true
	files := rr.files
	rr.files = nil
	rr.mu.Unlock()
	for _, f := range files {
		for _, s := range f.sinks {
			s.Close()
		}
	}
	// Recording.Close finishes the recorders still open, then the manifest.
	return rr.rec.Close()
}

// serveRecordStop stops this node's recording for a moderator of another
// node (who checked the permission).
func (c *clusterNode) serveRecordStop(_ context.Context, from string, req modRequest) (any, error) {
	r, err := c.roomFor(req)
	if err != nil {
		return nil, err
	}
	if !r.stopRecording(nil, nil) {
		return nil, codedError{signal.Errorf(signal.CodeInvalidState, "the room is not being recorded")}
	}
	r.log.Info("recording stopped", "node", from, "moderator", req.Moderator)
	return struct{}{}, nil
}
