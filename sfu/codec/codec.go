// Package codec names the codecs the forwarding path treats differently and
// finds where their keyframes start: the only packets at which a
// subscriber's decoder can start, hence the only places a server may start
// a stream or switch it to another encoding.
package codec

import (
	"strings"

	"github.com/confab-sfu/confab/sfu/vp8"
)

// Kind is a codec as far as forwarding cares.
type Kind uint8

// The codecs the server knows; Other is forwarded without inspection.
const (
	Other Kind = iota
	Opus
	VP8
	VP9
	H264
	AV1
)

// mimeTypes are the RTP MIME types of the known codecs (RFC 7587, 7741,
// draft-ietf-payload-vp9, RFC 6184, AV1 RTP specification).
var mimeTypes = [...]struct {
	mime string
	kind Kind
}{
	{"audio/opus", Opus},
	{"video/VP8", VP8},
	{"video/VP9", VP9},
	{"video/H264", H264},
	{"video/AV1", AV1},
}

// KindOf returns the Kind of an RTP MIME type such as "video/VP8" (case
// does not matter).
func KindOf(mime string) Kind {
	for _, m := range mimeTypes {
		if strings.EqualFold(mime, m.mime) {
			return m.kind
		}
	}
	return Other
}

// IsKeyframe reports whether payload is the first packet of a keyframe.
// Audio and unknown codecs have no keyframes: every packet may start a
// stream (keyframe requests keep an unknown video decoder recovering).
func IsKeyframe(k Kind, payload []byte) bool {
	switch k {
	case VP8:
		d, err := vp8.Parse(payload)
		return err == nil && d.Keyframe
	case H264:
		return h264Keyframe(payload)
	case VP9:
		// Descriptor byte 0: I P L F B E V Z. A frame that starts (B) and is
		// not inter-predicted (P=0) is a keyframe for non-layered VP9.
		return len(payload) > 0 && payload[0]&0x40 == 0 && payload[0]&0x08 != 0
	case AV1:
		// Aggregation header: Z Y W W N - - -. N starts a new coded video
		// sequence; Z set means the first OBU continues an earlier packet.
		return len(payload) > 0 && payload[0]&0x08 != 0 && payload[0]&0x80 == 0
	}
	return true
}

// H.264 NAL unit types (RFC 6184 section 5.2).
const (
	nalIDR   = 5
	nalSPS   = 7
	nalSTAPA = 24
	nalFUA   = 28
)

// h264Keyframe finds an SPS or IDR slice as a single NAL unit, inside a
// STAP-A aggregate, or as the first fragment of an FU-A.
func h264Keyframe(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	isKey := func(t byte) bool { return t == nalIDR || t == nalSPS }
	switch t := p[0] & 0x1f; t {
	case nalIDR, nalSPS:
		return true
	case nalSTAPA: // 2-byte sizes, each followed by a NAL unit
		for i := 1; i+2 < len(p); {
			size := int(p[i])<<8 | int(p[i+1])
			i += 2
			if size == 0 || i+size > len(p) {
				return false
			}
			if isKey(p[i] & 0x1f) {
				return true
			}
			i += size
		}
	case nalFUA: // FU header: start bit and the original type
		return len(p) >= 2 && p[1]&0x80 != 0 && isKey(p[1]&0x1f)
	}
	return false
}
