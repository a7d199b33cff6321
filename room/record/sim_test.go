package record

import (
	"bytes"
	"container/heap"
	"errors"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
)

// The clips the load tool publishes: VP8 in three simulcast layers (4 s,
// 30 fps, a keyframe every 2 s) and Opus in 20 ms packets.
const clipDir = "../../signal/client/clip/media"

type clipFrame struct {
	data []byte
	key  bool
}

type clips struct {
	layers [3][]clipFrame // low, medium, high
	audio  [][]byte
}

var loadClips = sync.OnceValues(func() (*clips, error) {
	c := &clips{}
	for i, name := range []string{"video-low.ivf", "video-medium.ivf", "video-high.ivf"} {
		b, err := os.ReadFile(filepath.Join(clipDir, name))
		if err != nil {
			return nil, err
		}
		r, _, err := ivfreader.NewWith(bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		for {
			f, _, err := r.ParseNextFrame()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, err
			}
			c.layers[i] = append(c.layers[i], clipFrame{data: f, key: f[0]&1 == 0})
		}
	}
	b, err := os.ReadFile(filepath.Join(clipDir, "audio.ogg"))
	if err != nil {
		return nil, err
	}
	r, _, err := oggreader.NewWith(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	for {
		page, _, err := r.ParseNextPage()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if len(page) > 0 && !bytes.HasPrefix(page, []byte("OpusTags")) {
			c.audio = append(c.audio, page)
		}
	}
	return c, nil
})

func mustClips(t testing.TB) *clips {
	t.Helper()
	c, err := loadClips()
	if err != nil {
		t.Fatalf("load clips: %v", err)
	}
	return c
}

// network impairs the uplink: loss, retransmission of some lost packets
// (a NACK round trip later), reordering and jitter.
type network struct {
	loss       float64 // of packets lost at first
	retransmit float64 // of lost packets sent again
	reorder    float64 // of packets held back 10-60 ms
	steady     bool    // every packet takes 20 ms: no jitter, so no reordering
	// keyDelay is how much later than its instant a keyframe leaves the
	// sender (a browser's keyframe is slow to encode and paced out); the
	// frames behind it queue, each leaving 5 ms after the one before.
	keyDelay time.Duration
}

// simParams describe a publisher and its uplink, in media time.
type simParams struct {
	duration   time.Duration
	layers     [][]clipFrame // video layers; none for audio only
	layer      int           // starting layer
	switchAt   time.Duration // 0: never; else switch to switchTo
	switchTo   int
	munged     bool // a layer switch keeps SSRC, sequence and timestamps (an SFU that rewrites)
	overlap    bool // at the switch the old layer's frame of the same instant comes first (every layer sends every instant)
	payloader  func() rtp.Payloader
	videoCodec *Codec // default VP8
	videoRate  uint32
	audio      [][]byte      // Opus packets to loop; nil: no audio
	muteFrom   time.Duration // packets stop from muteFrom to muteTo
	muteTo     time.Duration
	frozenMute bool // the sender's RTP clock stands still while muted
	tsStart    uint32
	net        network
	seed       int64
	gen        func(layer, idx int) clipFrame // frames of generated video; nil: layers
}

// arrival is a packet on its way to the recorder.
type arrival struct {
	at    time.Duration
	n     int // tie-break: send order
	track *Track
	pkt   *rtp.Packet
}

type arrivals []arrival

func (a arrivals) Len() int { return len(a) }
func (a arrivals) Less(i, j int) bool {
	return a[i].at < a[j].at || (a[i].at == a[j].at && a[i].n < a[j].n)
}
func (a arrivals) Swap(i, j int) { a[i], a[j] = a[j], a[i] }
func (a *arrivals) Push(x any)   { *a = append(*a, x.(arrival)) }
func (a *arrivals) Pop() any {
	old := *a
	x := old[len(old)-1]
	*a = old[:len(old)-1]
	return x
}

// sim plays a publisher through the network into a Recorder, as fast as
// the CPU allows but on simulated time: arrival times are start+at.
type sim struct {
	p       simParams
	rec     *Recorder
	start   time.Time
	rng     *rand.Rand
	queue   arrivals
	sent    int
	keyReq  bool // the recorder asked for a keyframe
	layer   int
	idx     int // next frame of the clip
	vpack   []rtp.Packetizer
	apack   rtp.Packetizer
	aidx    int
	packets int
	busy    time.Duration // with keyDelay: when the sender may send the next frame
}

func newSim(p simParams, start time.Time) *sim {
	s := &sim{p: p, start: start, rng: rand.New(rand.NewSource(p.seed)), layer: p.layer}
	if p.videoRate == 0 {
		s.p.videoRate = 90000
	}
	if p.payloader == nil {
		s.p.payloader = func() rtp.Payloader { return &codecs.VP8Payloader{EnablePictureID: true} }
	}
	for i := range max(len(p.layers), 1) {
		s.vpack = append(s.vpack, rtp.NewPacketizerWithOptions(1200, s.p.payloader(), rtp.NewFixedSequencer(uint16(1000*i+65500)), s.p.videoRate,
			rtp.WithSSRC(uint32(100+i)), rtp.WithPayloadType(96), rtp.WithTimestamp(p.tsStart+uint32(i)*777777)))
	}
	s.apack = rtp.NewPacketizerWithOptions(1200, &codecs.OpusPayloader{}, rtp.NewFixedSequencer(65000), 48000,
		rtp.WithSSRC(200), rtp.WithPayloadType(111), rtp.WithTimestamp(p.tsStart+12345))
	return s
}

// requestKeyframe is the Recorder's RequestKeyframe: the publisher's next
// frame is a keyframe (it jumps to the clip's next one).
func (s *sim) requestKeyframe() { s.keyReq = true }

// run sends the whole clip and delivers every packet.
func (s *sim) run(rec *Recorder) { s.runFrom(rec, 0) }

// runFrom sends the clip from media time from on.
func (s *sim) runFrom(rec *Recorder, from time.Duration) {
	s.rec = rec
	const videoStep, audioStep = time.Second / 30, 20 * time.Millisecond
	tv, ta := from, from
	hasVideo := rec.Video() != nil
	for {
		if !hasVideo {
			tv = s.p.duration
		}
		next := min(tv, ta)
		if next >= s.p.duration || (s.p.audio == nil && tv >= s.p.duration) {
			break
		}
		s.deliver(next)
		if hasVideo && tv <= ta {
			s.video(tv)
			tv += videoStep
		} else if s.p.audio != nil {
			s.audioFrame(ta)
			ta += audioStep
		} else {
			ta = s.p.duration
		}
	}
	s.deliver(s.p.duration + 10*time.Second)
}

func (s *sim) muted(at time.Duration) bool { return at >= s.p.muteFrom && at < s.p.muteTo }

func (s *sim) video(at time.Duration) {
	if s.muted(at) {
		if !s.p.frozenMute {
			for _, p := range s.vpack {
				p.SkipSamples(3000)
			}
		}
		s.idx++
		return
	}
	if s.p.switchAt > 0 && at >= s.p.switchAt && s.layer != s.p.switchTo {
		if s.p.overlap {
			// Sent a little earlier: a switching SFU hands on all of it
			// before the keyframe, never a packet of it after.
			s.sendOn(at-6*time.Millisecond, s.frame(s.idx), 0)
		}
		s.layer, s.keyReq = s.p.switchTo, true // an SFU switches on the new layer's keyframe
	}
	f := s.frame(s.idx)
	if s.keyReq && !f.key {
		for !f.key {
			s.idx++
			f = s.frame(s.idx)
		}
	}
	s.keyReq = false
	s.idx++
	s.sendFrame(at, f)
}

// sendFrame sends f on the current layer; the others skip its instant.
func (s *sim) sendFrame(at time.Duration, f clipFrame) { s.sendOn(at, f, 3000) }

// sendOn packetizes f on the current layer and advances every layer's
// clock by step (0: the next frame is of the same instant).
func (s *sim) sendOn(at time.Duration, f clipFrame, step uint32) {
	pk := 0
	if !s.p.munged {
		pk = s.layer
	}
	for i, p := range s.vpack {
		if i != pk {
			p.SkipSamples(step) // the other layers go on being sent
		}
	}
	if d := s.p.net.keyDelay; d > 0 {
		if f.key {
			at += d
		}
		at = max(at, s.busy)
		s.busy = at + 5*time.Millisecond
	}
	for _, p := range s.vpack[pk].Packetize(f.data, step) {
		s.send(at, s.rec.Video(), p)
	}
}

func (s *sim) frame(idx int) clipFrame {
	if s.p.gen != nil {
		return s.p.gen(s.layer, idx)
	}
	l := s.p.layers[s.layer]
	return l[idx%len(l)]
}

func (s *sim) audioFrame(at time.Duration) {
	if s.muted(at) {
		if !s.p.frozenMute {
			s.apack.SkipSamples(960)
		}
		return
	}
	data := s.p.audio[s.aidx%len(s.p.audio)]
	s.aidx++
	for _, p := range s.apack.Packetize(data, 960) {
		s.send(at, s.rec.Audio(), p)
	}
}

// send puts a packet on the simulated network.
func (s *sim) send(at time.Duration, tr *Track, p *rtp.Packet) {
	s.packets++
	delay := 20 * time.Millisecond
	if !s.p.net.steady {
		delay += time.Duration(s.rng.Int63n(int64(5 * time.Millisecond)))
	}
	if s.rng.Float64() < s.p.net.loss {
		if s.rng.Float64() >= s.p.net.retransmit {
			return
		}
		delay += 80*time.Millisecond + time.Duration(s.rng.Int63n(int64(150*time.Millisecond)))
	} else if s.rng.Float64() < s.p.net.reorder {
		delay += 10*time.Millisecond + time.Duration(s.rng.Int63n(int64(50*time.Millisecond)))
	}
	s.sent++
	heap.Push(&s.queue, arrival{at: at + delay, n: s.sent, track: tr, pkt: p})
}

// deliver hands the recorder every packet that arrived by until.
func (s *sim) deliver(until time.Duration) {
	for s.queue.Len() > 0 && s.queue[0].at <= until {
		a := heap.Pop(&s.queue).(arrival)
		a.track.WriteRTP(a.pkt, s.start.Add(a.at))
	}
}
