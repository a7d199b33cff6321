package loadtest

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
)

// The clips are made by media/generate.sh: a 4 s loop at 30 fps with a
// keyframe every 2 s, in three layers, and 4 s of Opus in 20 ms packets.
//
//go:embed media/video-low.ivf media/video-medium.ivf media/video-high.ivf media/audio.ogg
var mediaFS embed.FS

// layerFiles are the simulcast layers, lowest first, with their RIDs.
var layerFiles = []struct{ rid, file string }{
	{"l", "media/video-low.ivf"},
	{"m", "media/video-medium.ivf"},
	{"h", "media/video-high.ivf"},
}

// videoFrame is one encoded VP8 frame of a clip.
type videoFrame struct {
	data []byte
	key  bool
}

var (
	clipsOnce sync.Once
	clips     [][]videoFrame // by layer
	audioPkts [][]byte
	clipsErr  error
)

// loadClips parses the embedded clips once for every peer of the process.
func loadClips() ([][]videoFrame, [][]byte, error) {
	clipsOnce.Do(func() {
		for _, l := range layerFiles {
			frames, err := readIVF(l.file)
			if err != nil {
				clipsErr = err
				return
			}
			clips = append(clips, frames)
		}
		audioPkts, clipsErr = readOgg("media/audio.ogg")
	})
	return clips, audioPkts, clipsErr
}

func readIVF(name string) ([]videoFrame, error) {
	b, err := mediaFS.ReadFile(name)
	if err != nil {
		return nil, err
	}
	r, _, err := ivfreader.NewWith(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	var out []videoFrame
	for {
		f, _, err := r.ParseNextFrame()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		// VP8 frame tag: bit 0 clear marks a keyframe.
		out = append(out, videoFrame{data: f, key: len(f) > 0 && f[0]&0x01 == 0})
	}
	if len(out) == 0 || !out[0].key {
		return nil, fmt.Errorf("%s: clip must start with a keyframe", name)
	}
	return out, nil
}

func readOgg(name string) ([][]byte, error) {
	b, err := mediaFS.ReadFile(name)
	if err != nil {
		return nil, err
	}
	r, _, err := oggreader.NewWith(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	var out [][]byte
	for {
		page, _, err := r.ParseNextPage()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		if len(page) > 0 && !bytes.HasPrefix(page, []byte("OpusTags")) {
			out = append(out, page)
		}
	}
	return out, nil
}

// VideoSource loops the VP8 clip as a camera would send it: one layer, or
// three simulcast layers on one transceiver. It answers keyframe requests
// by jumping to the next keyframe of the clip.
type VideoSource struct {
	tracks  []*webrtc.TrackLocalStaticRTP
	rids    []string
	frames  [][]videoFrame
	stamper atomic.Pointer[Stamper]
	keyReq  atomic.Bool
	sent    atomic.Uint64 // packets
	bytes   atomic.Uint64 // RTP header and payload
	pace    time.Duration // between frames; tests shorten it
}

// NewVideoSource makes a camera track with id and stream id; simulcast
// sends all three layers, otherwise only layer (0 low .. 2 high).
func NewVideoSource(id, streamID string, simulcast bool, layer int) (*VideoSource, error) {
	all, _, err := loadClips()
	if err != nil {
		return nil, err
	}
	v := &VideoSource{pace: time.Second / 30}
	codec := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
	for i, l := range layerFiles {
		if !simulcast && i != layer {
			continue
		}
		var opts []func(*webrtc.TrackLocalStaticRTP)
		if simulcast {
			opts = append(opts, webrtc.WithRTPStreamID(l.rid))
		}
		t, err := webrtc.NewTrackLocalStaticRTP(codec, id, streamID, opts...)
		if err != nil {
			return nil, err
		}
		v.tracks = append(v.tracks, t)
		v.rids = append(v.rids, l.rid)
		v.frames = append(v.frames, all[i])
	}
	if !simulcast {
		v.rids[0] = ""
	}
	return v, nil
}

// Tracks are the TrackLocals to hand to Peer.Publish.
func (v *VideoSource) Tracks() []webrtc.TrackLocal {
	out := make([]webrtc.TrackLocal, len(v.tracks))
	for i, t := range v.tracks {
		out[i] = t
	}
	return out
}

// SetStamper gives a simulcast source the mid/rid stamper of its sender.
func (v *VideoSource) SetStamper(s *Stamper) { v.stamper.Store(s) }

// RequestKeyframe makes the next frame sent a keyframe (PLI handling).
func (v *VideoSource) RequestKeyframe() { v.keyReq.Store(true) }

// PacketsSent counts RTP packets written.
func (v *VideoSource) PacketsSent() uint64 { return v.sent.Load() }

// BytesSent counts the RTP bytes written (headers and payloads).
func (v *VideoSource) BytesSent() uint64 { return v.bytes.Load() }

// Run sends 30 frames per second until ctx ends.
func (v *VideoSource) Run(ctx context.Context) {
	packetizers := make([]rtp.Packetizer, len(v.tracks))
	for i := range v.tracks {
		packetizers[i] = rtp.NewPacketizer(1200, 96, 0, &codecs.VP8Payloader{EnablePictureID: true}, rtp.NewRandomSequencer(), 90000)
	}
	tick := time.NewTicker(v.pace)
	defer tick.Stop()
	n := len(v.frames[0])
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		idx := i % n
		if v.keyReq.Swap(false) && !v.frames[0][idx].key {
			// Jump forward to the clip's next keyframe.
			for !v.frames[0][idx].key {
				i++
				idx = i % n
			}
		}
		st := v.stamper.Load()
		for l, t := range v.tracks {
			f := v.frames[l][idx%len(v.frames[l])]
			for _, p := range packetizers[l].Packetize(f.data, 3000) {
				if st != nil && v.rids[l] != "" {
					st.Stamp(&p.Header, v.rids[l])
				}
				if err := t.WriteRTP(p); err == nil {
					v.sent.Add(1)
					v.bytes.Add(uint64(p.MarshalSize()))
				}
			}
		}
	}
}

// AudioSource loops the Opus clip in 20 ms packets.
type AudioSource struct {
	track *webrtc.TrackLocalStaticSample
	pkts  [][]byte
	pace  time.Duration // between packets; tests shorten it
	bytes atomic.Uint64
}

// NewAudioSource makes a microphone track.
func NewAudioSource(id, streamID string) (*AudioSource, error) {
	_, pkts, err := loadClips()
	if err != nil {
		return nil, err
	}
	t, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, id, streamID)
	if err != nil {
		return nil, err
	}
	return &AudioSource{track: t, pkts: pkts, pace: 20 * time.Millisecond}, nil
}

// Track is the TrackLocal to hand to Peer.Publish.
func (a *AudioSource) Track() webrtc.TrackLocal { return a.track }

// BytesSent counts the RTP bytes written (a 12-byte header and the payload
// per packet; extensions pion adds are not counted).
func (a *AudioSource) BytesSent() uint64 { return a.bytes.Load() }

// Run sends a packet every 20 ms until ctx ends.
func (a *AudioSource) Run(ctx context.Context) {
	tick := time.NewTicker(a.pace)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		data := a.pkts[i%len(a.pkts)]
		if a.track.WriteSample(media.Sample{Data: data, Duration: 20 * time.Millisecond}) == nil {
			a.bytes.Add(uint64(12 + len(data)))
		}
	}
}
