package sfu

import (
	"fmt"

	"github.com/pion/webrtc/v4"
)

// Limit is a subscriber's wish for one track it receives.
type Limit struct {
	Track TrackID
	// MaxLayer caps the simulcast layer, 0 (lowest) to 2 (highest).
	MaxLayer int
	// MaxWidth and MaxHeight cap the resolution (0: no cap), judged from
	// the sizes in the keyframes seen so far.
	MaxWidth, MaxHeight int
	// Paused stops forwarding the track entirely (a hidden tile).
	Paused bool
	// Background: the subscriber shows the track in a hidden tab. It is
	// forwarded, but paused first when the node sheds load (shed.go).
	Background bool
}

// SetLimits applies a subscriber's wishes, all or none: when one names a
// track this peer does not receive, it returns ErrUnknownTrack and changes
// nothing.
func (p *Peer) SetLimits(limits []Limit) error {
	downs := make([]*DownTrack, len(limits))
	for i, l := range limits {
		if downs[i] = p.DownTrack(l.Track); downs[i] == nil {
			return fmt.Errorf("limit track %s: %w", l.Track, ErrUnknownTrack)
		}
	}
	for i, l := range limits {
		d := downs[i]
		layer := l.MaxLayer
		if l.MaxWidth > 0 || l.MaxHeight > 0 {
			layer = min(layer, d.recv.layerForSize(l.MaxWidth, l.MaxHeight))
		}
		d.log.Debug("subscriber limits", "maxLayer", l.MaxLayer, "maxWidth", l.MaxWidth, "maxHeight", l.MaxHeight,
			"paused", l.Paused, "layer", layer)
		d.SetMaxLayer(layer)
		d.SetPaused(l.Paused)
		d.SetBackground(l.Background)
	}
	return nil
}

// Decisions reports how each video track this peer receives is forwarded
// now (audio has no layers to decide between).
func (p *Peer) Decisions() []Decision {
	downs := p.DownTracks()
	out := make([]Decision, 0, len(downs))
	for _, d := range downs {
		if d.recv.kind == webrtc.RTPCodecTypeVideo {
			out = append(out, d.Decision())
		}
	}
	return out
}
