package clip

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
)

// AudioSource loops the Opus clip in 20 ms packets.
type AudioSource struct {
	track  *webrtc.TrackLocalStaticSample
	pkts   [][]byte
	pace   time.Duration // between packets; tests shorten it
	bytes  atomic.Uint64
	onSend func(payload []byte)
}

// NewAudioSource makes a microphone track.
func NewAudioSource(id, streamID string) (*AudioSource, error) {
	c, err := loadClips()
	if err != nil {
		return nil, err
	}
	t, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, id, streamID)
	if err != nil {
		return nil, fmt.Errorf("audio track: %w", err)
	}
	return &AudioSource{track: t, pkts: c.audio, pace: 20 * time.Millisecond}, nil
}

// Track is the TrackLocal to publish (client.Peer.Publish).
func (a *AudioSource) Track() webrtc.TrackLocal { return a.track }

// BytesSent counts the RTP bytes written (a 12-byte header and the payload
// per packet; extensions pion adds are not counted).
func (a *AudioSource) BytesSent() uint64 { return a.bytes.Load() }

// OnSend makes the source call f with each Opus packet (the RTP payload)
// just before it writes it, on the sending goroutine: the load tool times
// forwarding from there. f must not keep or change payload. Set it before
// Run.
func (a *AudioSource) OnSend(f func(payload []byte)) { a.onSend = f }

// Run sends a packet every 20 ms until ctx ends. Like a microphone's, its
// clock does not slow down: ticks a busy machine lost are made up at the
// next one, so the audio's media time keeps up with real time.
func (a *AudioSource) Run(ctx context.Context) {
	tick := time.NewTicker(a.pace)
	defer tick.Stop()
	start := time.Now()
	for i := 0; ; {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for due := int(time.Since(start) / a.pace); i < due; i++ {
			data := a.pkts[i%len(a.pkts)]
			if a.onSend != nil {
				a.onSend(data)
			}
			if a.track.WriteSample(media.Sample{Data: data, Duration: 20 * time.Millisecond}) == nil {
				a.bytes.Add(uint64(12 + len(data)))
			}
		}
	}
}
