package record

import (
	"errors"

	"github.com/pion/rtp/codecs"
	"github.com/pion/rtp/codecs/vp9"
)

// depacketizer turns one codec's in-order RTP payloads into frames. The
// track calls begins on the first packet of each frame (a new RTP
// timestamp), add for every packet of the frame, finish after its last.
type depacketizer interface {
	// begins reports whether payload can start a frame (false: the frame's
	// first packet was lost).
	begins(payload []byte) bool
	// add appends payload's media to f. begins or add parsed payload last.
	add(f *frame, payload []byte) error
	// finish checks that f is whole and sets key, the picture size and,
	// for keyframes of H.264 and AV1, the CodecPrivate.
	finish(f *frame) error
	// reset forgets a partial frame after a loss.
	reset()
}

var (
	errBadPayload    = errors.New("record: payload cannot be parsed")
	errPartialFrame  = errors.New("record: frame is missing a part")
	errNoParamSets   = errors.New("record: keyframe without SPS/PPS")
	errNoSeqHeader   = errors.New("record: AV1 keyframe without a sequence header")
	errFrameTooLarge = errors.New("record: frame larger than the recorder keeps")
)

// maxFrame bounds one frame, so a sender that never sets the marker bit
// cannot grow a buffer without end.
const maxFrame = 8 << 20

func newDepacketizer(k codecKind) depacketizer {
	switch k {
	case kindVP8:
		return &vp8Depacketizer{}
	case kindVP9:
		return &vp9Depacketizer{}
	case kindAV1:
		return &av1Depacketizer{}
	case kindH264:
		return &h264Depacketizer{}
	default:
		return opusDepacketizer{}
	}
}

// opusDepacketizer: every Opus RTP payload is one frame (RFC 7587).
type opusDepacketizer struct{}

func (opusDepacketizer) begins([]byte) bool { return true }
func (opusDepacketizer) add(f *frame, payload []byte) error {
	f.data = append(f.data, payload...)
	return nil
}
func (opusDepacketizer) finish(f *frame) error { f.key = true; return nil }
func (opusDepacketizer) reset()                {}

// vp8Depacketizer strips the VP8 payload descriptor (RFC 7741).
type vp8Depacketizer struct {
	pkt codecs.VP8Packet // reused: Unmarshal does not allocate
}

func (d *vp8Depacketizer) begins(payload []byte) bool {
	if _, err := d.pkt.Unmarshal(payload); err != nil {
		return false
	}
	return d.pkt.S == 1 && d.pkt.PID == 0
}

func (d *vp8Depacketizer) add(f *frame, payload []byte) error {
	if _, err := d.pkt.Unmarshal(payload); err != nil {
		return errBadPayload
	}
	f.data = append(f.data, d.pkt.Payload...)
	return nil
}

func (d *vp8Depacketizer) finish(f *frame) error {
	// Frame tag bit 0 clear marks a keyframe, whose header carries the
	// start code 9d 01 2a and then 14-bit width and height (RFC 6386 9.1).
	if len(f.data) < 3 {
		return errPartialFrame
	}
	f.key = f.data[0]&0x01 == 0
	if f.key {
		b := f.data
		if len(b) < 10 || b[3] != 0x9d || b[4] != 0x01 || b[5] != 0x2a {
			return errBadPayload
		}
		f.width = int(uint16(b[6])|uint16(b[7])<<8) & 0x3fff
		f.height = int(uint16(b[8])|uint16(b[9])<<8) & 0x3fff
	}
	return nil
}

func (d *vp8Depacketizer) reset() {}

// vp9Depacketizer strips the VP9 payload descriptor (RFC 9628). Spatial
// layers of one picture arrive as frames with the same timestamp and are
// kept together.
type vp9Depacketizer struct {
	pkt codecs.VP9Packet // reused: allocates only for a keyframe's scalability structure
	key bool             // the picture's first layer frame is intra
}

func (d *vp9Depacketizer) begins(payload []byte) bool {
	if _, err := d.pkt.Unmarshal(payload); err != nil {
		return false
	}
	if d.pkt.B {
		d.key = !d.pkt.P && d.pkt.SID == 0
	}
	return d.pkt.B
}

func (d *vp9Depacketizer) add(f *frame, payload []byte) error {
	if _, err := d.pkt.Unmarshal(payload); err != nil {
		return errBadPayload
	}
	f.data = append(f.data, d.pkt.Payload...)
	return nil
}

func (d *vp9Depacketizer) finish(f *frame) error {
	if len(f.data) == 0 {
		return errPartialFrame
	}
	f.key = d.key
	if f.key {
		var h vp9.Header
		if err := h.Unmarshal(f.data); err != nil || h.NonKeyFrame {
			return errBadPayload
		}
		f.width, f.height = int(h.Width()), int(h.Height())
	}
	return nil
}

func (d *vp9Depacketizer) reset() { d.key = false }
