package room

import (
	"slices"

	"github.com/confab-sfu/confab/signal"
)

// The room's video codec is the first of signal.VideoCodecs that every
// member can send and decode (a join's videoCodecs; none listed means
// any). Publishers are told it (welcome, room_codec) and publish with it,
// so an H.264-only browser in a room of VP8 publishers gets H.264 from all
// of them. With no codec in common the room keeps VP8; a member then sees,
// from each track's codec, which videos it cannot show.

// videoCodecLocked computes the codec the members have in common.
func (r *Room) videoCodecLocked() string {
	for _, c := range signal.VideoCodecs {
		all := true
		for _, p := range r.participants {
			if len(p.videoCodecs) > 0 && !slices.Contains(p.videoCodecs, c) {
				all = false
				break
			}
		}
		if all {
			return c
		}
	}
	return signal.VideoCodecs[0]
}

// recodecLocked recomputes the room's codec after a member came or went,
// and tells everyone (but except, who learns it otherwise) when it changed.
func (r *Room) recodecLocked(except ParticipantID) {
	c := r.videoCodecLocked()
	if c == r.codec() {
		return
	}
	r.videoCodec = c
	r.broadcastLocked(&signal.Message{Type: signal.TypeRoomCodec, VideoCodec: c}, except)
}

// codec is the room's video codec ("" before any member: VP8).
func (r *Room) codec() string {
	if r.videoCodec == "" {
		return signal.VideoCodecs[0]
	}
	return r.videoCodec
}
