package sfu

import (
	"strings"

	"github.com/pion/webrtc/v4"
)

// codecKind is a codec the forwarding path treats specially.
type codecKind uint8

const (
	codecOther codecKind = iota
	codecOpus
	codecVP8
	codecVP9
	codecH264
	codecAV1
)

func codecKindOf(mime string) codecKind {
	switch {
	case strings.EqualFold(mime, webrtc.MimeTypeOpus):
		return codecOpus
	case strings.EqualFold(mime, webrtc.MimeTypeVP8):
		return codecVP8
	case strings.EqualFold(mime, webrtc.MimeTypeVP9):
		return codecVP9
	case strings.EqualFold(mime, webrtc.MimeTypeH264):
		return codecH264
	case strings.EqualFold(mime, webrtc.MimeTypeAV1):
		return codecAV1
	}
	return codecOther
}

// isKeyframeStart reports whether payload is the first packet of a keyframe:
// the only place a subscriber can start decoding, hence the only place the
// server may start or switch a stream.
func isKeyframeStart(k codecKind, payload []byte) bool {
	switch k {
	case codecVP8:
		d, ok := parseVP8(payload)
		return ok && d.keyframe
	case codecH264:
		return h264Keyframe(payload)
	case codecVP9:
		// Descriptor byte 0: I P L F B E V Z. A frame that starts (B) and is
		// not inter-predicted (P=0) is a keyframe for non-layered VP9.
		if len(payload) < 1 {
			return false
		}
		return payload[0]&0x40 == 0 && payload[0]&0x08 != 0
	case codecAV1:
		// Aggregation header: Z Y W W N - - -; N starts a new coded video sequence.
		return len(payload) > 0 && payload[0]&0x08 != 0 && payload[0]&0x80 == 0
	case codecOther:
		// Unknown video codec: any packet may start the stream; keyframe
		// requests keep the decoder recovering.
		return true
	}
	return true
}

// h264Keyframe finds an SPS or IDR slice at the start of a single NAL unit,
// inside a STAP-A aggregate, or as the first fragment of an FU-A.
func h264Keyframe(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	switch t := p[0] & 0x1f; t {
	case 5, 7:
		return true
	case 24: // STAP-A: 2-byte sizes, each followed by a NAL unit
		for i := 1; i+2 < len(p); {
			size := int(p[i])<<8 | int(p[i+1])
			i += 2
			if size == 0 || i+size > len(p) {
				return false
			}
			if nt := p[i] & 0x1f; nt == 5 || nt == 7 {
				return true
			}
			i += size
		}
	case 28: // FU-A: start bit and the original type
		if len(p) < 2 {
			return false
		}
		nt := p[1] & 0x1f
		return p[1]&0x80 != 0 && (nt == 5 || nt == 7)
	}
	return false
}
