package vp8

// Packet describes a VP8 RTP payload to build, as a browser sends it: a
// descriptor with a 15-bit picture id, TL0PICIDX and key index, and on a
// frame's first packet the start of the frame (a keyframe's holds its
// size). Synthetic senders (tests, load generators) use it, so that what
// they send is what Parse reads.
type Packet struct {
	PictureID     uint16 // 15 bits
	TL0PICIDX     uint8
	KeyIdx        uint8 // 5 bits
	Start         bool  // the first packet of a frame
	Keyframe      bool  // of a keyframe (with Start: the frame header carries the size)
	Width, Height uint16
}

// Append appends the payload's descriptor and, on a frame's first packet,
// a 10-byte frame header to dst, and returns the extended slice.
func (p Packet) Append(dst []byte) []byte {
	b0 := byte(bitX)
	if p.Start {
		b0 |= bitS
	}
	dst = append(dst, b0, bitI|bitL|bitK, bitM|byte(p.PictureID>>8&0x7f), byte(p.PictureID), p.TL0PICIDX, p.KeyIdx&0x1f)
	if !p.Start {
		return dst
	}
	if !p.Keyframe {
		return append(dst, bitP, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	}
	// Frame tag (key, shown), start code, then width and height, 14 bits
	// each, little-endian (RFC 6386 section 9.1).
	return append(dst, 0, 0, 0, 0x9d, 0x01, 0x2a, byte(p.Width), byte(p.Width>>8), byte(p.Height), byte(p.Height>>8))
}
