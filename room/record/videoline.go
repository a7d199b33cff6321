package record

import "time"

// A video track's frames wait in a short delay line before the writer
// gets them, and are timed when they leave it, by what the clock knows
// then. Two things are only known a little after a frame is complete:
//
//   - Where an epoch's RTP time lies. A stream's first frames (a keyframe,
//     slow to encode and paced out, and the frames queued behind it) come
//     tens of milliseconds later than the frames that follow; the clock
//     moves the epoch earlier as less delayed packets come (a browser's
//     moved 57 ms over its first four frames). Frames timed at once would
//     keep the late times and the next ones would land a millisecond after
//     them; timed on leaving, they move with the epoch and keep the
//     intervals the sender gave.
//   - Whether a layer switch's keyframe shows the instant whose old-layer
//     frame came just before it (a browser sends every instant on every
//     layer, and a switching SFU forwards the old layer up to the new
//     one's keyframe): two frames of one instant, which players and ffmpeg
//     take for time going wrong. The keyframe's own time is only good once
//     its epoch has settled, so the old frame waits with it; if they are
//     within half a frame, the keyframe takes the old frame's place and
//     time, and the clock follows.
//
// Frames wait only while the newest frame's epoch is young: a settled
// stream waits one frame, so a camera turned off mid-stream strands at
// most one frame behind the audio.

const (
	// lineWindow is how long (media time) frames of a young epoch wait.
	lineWindow = int64(400 * time.Millisecond)
	// youngEpoch is how long an epoch is young: the clock has settled
	// well before (a browser's did within 650 ms).
	youngEpoch = int64(time.Second)
	// maxLineFrames bounds the line whatever the times say.
	maxLineFrames = 32
	// defaultFrameStep is the frame interval assumed until one is seen.
	defaultFrameStep = int64(time.Second / 30)
)

// lineFrame is a frame in the line, with what is needed to time it again.
type lineFrame struct {
	f     *frame
	ts    uint32 // RTP timestamp
	epoch int    // the clock's epoch it belongs to
}

// videoLine is a ring of frames in arrival order, and what the line knows
// of the frames it let go.
type videoLine struct {
	ring       [maxLineFrames]lineFrame
	head, n    int
	epoch      int   // epoch of the newest frame
	epochStart int64 // pts of the newest epoch's first frame
	out        bool  // a frame has left the line
	lastOut    int64 // pts of the latest frame that left
	lastEpoch  int   // its epoch
	step       int64 // ns between the latest two frames of one epoch that left
	broken     bool  // the writer lost a frame: what refers to it goes too
}

func newVideoLine() videoLine { return videoLine{step: defaultFrameStep, epoch: -1} }

func (l *videoLine) push(f *frame, ts uint32, epoch int) {
	if epoch != l.epoch {
		l.epoch, l.epochStart = epoch, f.pts
	}
	l.ring[(l.head+l.n)%maxLineFrames] = lineFrame{f: f, ts: ts, epoch: epoch}
	l.n++
}

func (l *videoLine) at(i int) *lineFrame { return &l.ring[(l.head+i)%maxLineFrames] }

func (l *videoLine) pop() lineFrame {
	x := l.ring[l.head]
	l.ring[l.head] = lineFrame{}
	l.head = (l.head + 1) % maxLineFrames
	l.n--
	return x
}

// due says whether the oldest frame should leave now.
func (l *videoLine) due() bool {
	if l.n == 0 {
		return false
	}
	if l.n == maxLineFrames {
		return true
	}
	newest := l.at(l.n - 1).f.pts
	if newest-l.epochStart >= youngEpoch {
		return l.n > 1
	}
	return newest-l.at(0).f.pts > lineWindow
}

// releaseFrames hands the frames that are due (all of them with all) to
// the writer, each timed as the clock stands now.
func (t *Track) releaseFrames(now int64, all bool) {
	l := &t.line
	for l.n > 0 && (all || l.due()) {
		x := l.pop()
		x.f.pts = t.timeOf(x)
		if l.n > 0 && t.replacedBy(x, l.at(0)) {
			t.r.pool.put(x.f)
			continue
		}
		if l.broken && !x.f.key {
			t.r.pool.put(x.f)
			continue
		}
		l.broken = false
		if l.out && x.epoch == l.lastEpoch {
			l.step = min(max(x.f.pts-l.lastOut, int64(5*time.Millisecond)), int64(200*time.Millisecond))
		}
		l.out, l.lastOut, l.lastEpoch = true, x.f.pts, x.epoch
		if !t.r.enqueue(x.f) {
			// The writer lost a frame the next ones may refer to.
			l.broken = true
			t.needKey = true
			t.askKeyframe(now)
		}
	}
}

// timeOf is frame x's time as the clock now says, after the latest frame
// that left.
func (t *Track) timeOf(x lineFrame) int64 {
	pts := x.f.pts
	if x.epoch == t.clock.epochs {
		pts = t.clock.at(x.ts)
	}
	if l := &t.line; l.out {
		pts = max(pts, l.lastOut+minFrameStep)
	}
	return pts
}

// replacedBy says whether keyframe y, next in the line, shows the instant
// of x, which is leaving, and if so gives y x's time (and the clock, y's
// epoch): x then goes. Within one epoch (a rewriting SFU's switch) that is
// a frame less than a millisecond after x; across epochs (a new SSRC), one
// within half a frame of x.
func (t *Track) replacedBy(x lineFrame, y *lineFrame) bool {
	if !y.f.key {
		return false
	}
	within := int64(minFrameStep)
	if y.epoch != x.epoch {
		within = max(t.line.step/2, minFrameStep)
	}
	if t.timeOf(*y)-x.f.pts >= within {
		return false
	}
	if y.epoch == t.clock.epochs {
		t.clock.retime(y.ts, x.f.pts)
	}
	y.f.pts = x.f.pts
	return true
}
