// Package vp8 reads the VP8 RTP payload descriptor (RFC 7741 section 4.2)
// and rewrites the fields a forwarding server must keep continuous when it
// splices several encodings of one track into one stream: the picture id,
// TL0PICIDX and the key index. It also finds keyframes and reads their
// resolution from the VP8 frame header (RFC 6386 section 9.1).
//
// Nothing here allocates: a Descriptor is a small value that records where
// each field sits, so a payload can be rewritten in place.
package vp8

import "errors"

// ErrTruncated is returned for a payload too short for the descriptor its
// first bytes announce.
var ErrTruncated = errors.New("vp8: payload descriptor truncated")

// Descriptor is a parsed payload descriptor. Fields that the packet does
// not carry are zero; the Has methods tell them apart from a zero value.
type Descriptor struct {
	PictureID   uint16 // 7 or 15 bits
	PictureID15 bool   // the picture id is 15 bits long (M bit)
	TL0PICIDX   uint8
	KeyIdx      uint8 // 5 bits
	// HeaderLen is the descriptor's length: the VP8 payload starts there.
	HeaderLen int
	// Keyframe is set on the first packet of a keyframe: the only packet a
	// decoder can start from.
	Keyframe bool
	// Width and Height are the keyframe's size in pixels, when its first
	// packet holds the frame header (0 otherwise).
	Width, Height uint16

	// Byte offsets of the fields in the payload, 0 when absent (offset 0 is
	// always the descriptor's first byte, never one of these fields).
	pidOffset, tl0Offset, keyIdxOffset int
}

// HasPictureID reports whether the packet carries a picture id.
func (d *Descriptor) HasPictureID() bool { return d.pidOffset != 0 }

// HasTL0PICIDX reports whether the packet carries a TL0PICIDX.
func (d *Descriptor) HasTL0PICIDX() bool { return d.tl0Offset != 0 }

// HasKeyIdx reports whether the packet carries a key index.
func (d *Descriptor) HasKeyIdx() bool { return d.keyIdxOffset != 0 }

// Descriptor bits (RFC 7741 section 4.2).
const (
	bitX     = 0x80 // first byte: extension byte follows
	bitS     = 0x10 // first byte: start of a partition
	maskPID  = 0x07 // first byte: partition index
	bitI     = 0x80 // extension: picture id present
	bitL     = 0x40 // extension: TL0PICIDX present
	bitT     = 0x20 // extension: TID/Y present
	bitK     = 0x10 // extension: KEYIDX present
	bitM     = 0x80 // picture id: 15-bit form
	bitP     = 0x01 // frame tag: inter frame (clear on keyframes)
	frameHdr = 10   // keyframe header bytes: 3-byte tag, start code, sizes
)

// Parse reads the descriptor at the start of an RTP payload.
func Parse(p []byte) (d Descriptor, err error) {
	if len(p) < 1 {
		return d, ErrTruncated
	}
	i := 1
	if p[0]&bitX != 0 {
		if len(p) < 2 {
			return d, ErrTruncated
		}
		x := p[1]
		i = 2
		if x&bitI != 0 {
			if len(p) < i+1 {
				return d, ErrTruncated
			}
			d.pidOffset = i
			if p[i]&bitM != 0 {
				if len(p) < i+2 {
					return d, ErrTruncated
				}
				d.PictureID15 = true
				d.PictureID = uint16(p[i]&0x7f)<<8 | uint16(p[i+1])
				i += 2
			} else {
				d.PictureID = uint16(p[i])
				i++
			}
		}
		if x&bitL != 0 {
			if len(p) < i+1 {
				return d, ErrTruncated
			}
			d.tl0Offset = i
			d.TL0PICIDX = p[i]
			i++
		}
		if x&(bitT|bitK) != 0 { // one byte holds TID, Y and KEYIDX
			if len(p) < i+1 {
				return d, ErrTruncated
			}
			if x&bitK != 0 {
				d.keyIdxOffset = i
				d.KeyIdx = p[i] & 0x1f
			}
			i++
		}
	}
	d.HeaderLen = i
	// A keyframe starts in partition 0 with the P bit of the frame tag clear.
	start := p[0]&bitS != 0 && p[0]&maskPID == 0
	if start && len(p) > i && p[i]&bitP == 0 {
		d.Keyframe = true
		d.Width, d.Height = frameSize(p[i:])
	}
	return d, nil
}

// frameSize reads a keyframe header: 3-byte frame tag, start code 9d 01 2a,
// then 14-bit width and height, little endian (the top 2 bits scale).
func frameSize(f []byte) (w, h uint16) {
	if len(f) < frameHdr || f[3] != 0x9d || f[4] != 0x01 || f[5] != 0x2a {
		return 0, 0
	}
	w = (uint16(f[6]) | uint16(f[7])<<8) & 0x3fff
	h = (uint16(f[8]) | uint16(f[9])<<8) & 0x3fff
	return w, h
}

// KeyframeSize returns the resolution in the first packet of a keyframe, or
// 0, 0 when p is not one (or is too short to tell).
func KeyframeSize(p []byte) (width, height int) {
	d, err := Parse(p)
	if err != nil || !d.Keyframe {
		return 0, 0
	}
	return int(d.Width), int(d.Height)
}
