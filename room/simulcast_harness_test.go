package room_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confab-sfu/confab/sfu/vp8"
	"github.com/confab-sfu/confab/signal"
	"github.com/confab-sfu/confab/signal/client"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// layerSpec is one simulcast layer of the synthetic camera.
type layerSpec struct {
	rid           string
	width, height uint16
	bitrate       int // bit/s
}

// cameraLayers resemble a browser's 720p simulcast.
var cameraLayers = []layerSpec{
	{"l", 320, 180, 150_000},
	{"m", 640, 360, 500_000},
	{"h", 1280, 720, 1_500_000},
}

// simulcastCamera publishes three VP8-shaped layers at 30 frames per
// second. Keyframes come every 3 s, or on the next frame after a PLI, and
// carry the layer's resolution so a subscriber can tell layers apart.
type simulcastCamera struct {
	tracks    []*webrtc.TrackLocalStaticRTP
	keyWanted [3]atomic.Bool
	stopped   [3]atomic.Bool // a layer the publisher no longer sends
	stamp     *client.Stamper
	plis      atomic.Int64
	sent      atomic.Int64 // packets written, of every layer
	stop      chan struct{}
	done      chan struct{}
}

func newSimulcastCamera(t *testing.T, name string) *simulcastCamera {
	t.Helper()
	c := &simulcastCamera{stop: make(chan struct{}), done: make(chan struct{})}
	for _, l := range cameraLayers {
		tr, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000},
			name+"-cam", name+"-stream", webrtc.WithRTPStreamID(l.rid))
		if err != nil {
			t.Fatal(err)
		}
		c.tracks = append(c.tracks, tr)
	}
	return c
}

func (c *simulcastCamera) trackLocals() []webrtc.TrackLocal {
	out := make([]webrtc.TrackLocal, len(c.tracks))
	for i, t := range c.tracks {
		out[i] = t
	}
	return out
}

// onKeyframeRequest is the publisher's PLI handler: all layers send a
// keyframe next (a browser does the same).
func (c *simulcastCamera) onKeyframeRequest(string) {
	c.plis.Add(1)
	for i := range c.keyWanted {
		c.keyWanted[i].Store(true)
	}
}

func (c *simulcastCamera) run(ctx context.Context) {
	go func() {
		defer close(c.done)
		tick := time.NewTicker(time.Second / 30)
		defer tick.Stop()
		var seq [3]uint16
		for frame := 0; ; frame++ {
			select {
			case <-ctx.Done():
				return
			case <-c.stop:
				return
			case <-tick.C:
			}
			ts := uint32(frame * 3000)
			for i, l := range cameraLayers {
				if c.stopped[i].Load() {
					continue
				}
				key := frame%90 == 0 || c.keyWanted[i].Swap(false)
				size := l.bitrate / 8 / 30
				for off := 0; off < size; off += 1100 {
					n := min(1100, size-off)
					p := vp8.Packet{PictureID: uint16(frame) & 0x7fff, Start: off == 0, Keyframe: key && off == 0,
						Width: l.width, Height: l.height}.Append(make([]byte, 0, n+16))
					for len(p) < n {
						p = append(p, 0xab)
					}
					pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq[i], Timestamp: ts, Marker: off+1100 >= size}, Payload: p}
					c.stamp.Stamp(&pkt.Header, l.rid)
					_ = c.tracks[i].WriteRTP(pkt)
					c.sent.Add(1)
					seq[i]++
				}
			}
		}
	}()
}

func (c *simulcastCamera) halt() {
	select {
	case <-c.stop:
	default:
		close(c.stop)
		<-c.done
	}
}

// videoLog records what a subscriber received of one video track.
type videoLog struct {
	mu      sync.Mutex
	seqs    []uint16
	tss     []uint32
	at      []time.Time
	keys    []keyRecord
	pids    []uint16
	info    []pktInfo // per entry of seqs
	packets int
}

// pktInfo is what loss accounting needs to know of a received packet.
type pktInfo struct {
	padding bool // no payload: a bandwidth probe
	start   bool // first packet of a frame
	marker  bool // last packet of a frame
	pid     uint16
}

type keyRecord struct {
	at    time.Time
	width uint16
}

func (v *videoLog) read(rt *client.RemoteTrack) {
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	for {
		n, _, err := rt.Track.Read(buf)
		if err != nil {
			return
		}
		if pkt.Unmarshal(buf[:n]) != nil {
			continue
		}
		now := time.Now()
		v.mu.Lock()
		v.packets++
		v.seqs = append(v.seqs, pkt.SequenceNumber)
		v.tss = append(v.tss, pkt.Timestamp)
		v.at = append(v.at, now)
		p := pkt.Payload
		info := pktInfo{padding: len(p) == 0, marker: pkt.Marker}
		if d, err := vp8.Parse(p); err == nil && d.HasPictureID() {
			info.pid = d.PictureID
			info.start = p[0]&0x10 != 0 // the S bit: the first byte's layout never changes
			v.pids = append(v.pids, info.pid)
			if d.Keyframe && d.Width != 0 {
				v.keys = append(v.keys, keyRecord{at: now, width: d.Width})
			}
		}
		v.info = append(v.info, info)
		v.mu.Unlock()
	}
}

// count is how many packets arrived, padding (bandwidth probes) included.
func (v *videoLog) count() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.packets
}

// media is how many packets of media arrived.
func (v *videoLog) media() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	n := 0
	for _, in := range v.info {
		if !in.padding {
			n++
		}
	}
	return n
}

// keyWidthsSince lists the resolutions of the keyframes received after t.
func (v *videoLog) keyWidthsSince(t time.Time) []uint16 {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []uint16
	for _, k := range v.keys {
		if !k.at.Before(t) {
			out = append(out, k.width)
		}
	}
	return out
}

// lastWidth is the resolution of the latest keyframe received.
func (v *videoLog) lastWidth() uint16 {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.keys) == 0 {
		return 0
	}
	return v.keys[len(v.keys)-1].width
}

// lossSince returns the fraction of media packets missing among those
// received after t (so far): gaps inside the received range count as lost, except a
// gap between the end of one frame and the start of the next, which only
// padding (bandwidth probes, never retransmitted) can have held.
func (v *videoLog) lossSince(t time.Time) (loss float64, received int) {
	return v.lossBetween(t, time.Now())
}

// lossBetween is lossSince for the range of sequence numbers first
// received between from and to.
func (v *videoLog) lossBetween(from, to time.Time) (loss float64, received int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	got := map[uint16]pktInfo{}
	var first, last uint16
	have := false
	for i, s := range v.seqs {
		if v.at[i].Before(from) || v.at[i].After(to) {
			continue
		}
		if !have {
			first, last, have = s, s, true
		}
		if s-first < 0x8000 && s-last < 0x8000 {
			last = s
		}
	}
	// Whatever arrived, whenever: a repair of a loss near the end of the
	// window lands after it.
	for i, s := range v.seqs {
		if have && s-first <= last-first {
			got[s] = v.info[i]
		}
	}
	if !have {
		return 1, 0
	}
	lost, media := 0, 0
	var prev pktInfo
	var lastPID uint16
	havePID := false
	for s := first; ; s++ {
		if in, ok := got[s]; ok {
			if !in.padding {
				media++
			}
			prev = in
			if !in.padding {
				lastPID, havePID = in.pid, true
			}
		} else {
			// A run of missing numbers: find where it ends.
			end := s
			for {
				if _, ok := got[end]; ok {
					break
				}
				end++
			}
			next := got[end]
			betweenFrames := (prev.marker || prev.padding) &&
				(next.padding || (next.start && havePID && next.pid == (lastPID+1)&0x7fff))
			if !betweenFrames {
				n := int(end - s)
				lost += n
				media += n
			}
			s = end - 1
		}
		if s == last {
			break
		}
	}
	if media == 0 {
		return 0, 0
	}
	return float64(lost) / float64(media), media - lost
}

// subscriber joins with an optional impaired downlink and logs its video.
type subscriber struct {
	*testPeer
	link  *link
	video *videoLog
}

func joinSubscriber(t *testing.T, ctx context.Context, url, roomName, name string, l *link) *subscriber {
	t.Helper()
	opts := client.APIOptions{Loopback: true}
	if l != nil {
		n, err := newImpairedNet(l)
		if err != nil {
			t.Fatal(err)
		}
		opts.Net = n
	}
	api, err := client.NewAPI(opts)
	if err != nil {
		t.Fatal(err)
	}
	s := &subscriber{link: l, video: &videoLog{}}
	p, err := client.Join(ctx, client.Params{URL: url, Room: roomName, Name: name, API: api, OnTrack: func(rt *client.RemoteTrack) {
		if rt.Info.Kind == "video" {
			go s.video.read(rt)
		}
	}})
	if err != nil {
		t.Fatalf("%s joins: %v", name, err)
	}
	t.Cleanup(func() { _ = p.Leave() })
	s.testPeer = &testPeer{Peer: p, rec: newRecorder()}
	go s.collect()
	return s
}

// decision returns the latest layer decision the server reported for a
// track ("" before any).
func (s *subscriber) decision(trackID string) signal.LayerDecision {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.events) - 1; i >= 0; i-- {
		m := s.events[i]
		if m.Type != signal.TypeLayers {
			continue
		}
		for _, d := range m.Decisions {
			if d.TrackID == trackID {
				return d
			}
		}
	}
	return signal.LayerDecision{}
}

// videoTrackID returns the id of the one video track the subscriber knows.
func (s *subscriber) videoTrackID() string {
	for _, t := range s.Tracks() {
		if t.Kind == "video" {
			return t.ID
		}
	}
	return ""
}
