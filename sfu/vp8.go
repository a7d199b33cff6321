package sfu

// vp8Descriptor locates the fields of a VP8 payload descriptor (RFC 7741
// section 4.2) that the server rewrites when it splices simulcast layers.
type vp8Descriptor struct {
	pictureID    uint16
	pidOffset    int  // byte offset of the picture id, 0 when absent
	pid15        bool // 15-bit picture id (M bit set)
	tl0          uint8
	tl0Offset    int // 0 when absent
	keyIdx       uint8
	keyIdxOffset int // 0 when absent (the byte also holds TID and Y)
	headerLen    int
	keyframe     bool // first packet of a keyframe
	width        uint16
	height       uint16
}

// parseVP8 reads the descriptor; it never allocates.
func parseVP8(p []byte) (d vp8Descriptor, ok bool) {
	if len(p) < 1 {
		return d, false
	}
	i := 1
	start := p[0]&0x10 != 0 && p[0]&0x07 == 0 // S bit, partition 0
	if p[0]&0x80 != 0 {                       // X: extension byte follows
		if len(p) < 2 {
			return d, false
		}
		x := p[1]
		i = 2
		if x&0x80 != 0 { // I: picture id
			if len(p) < i+1 {
				return d, false
			}
			d.pidOffset = i
			if p[i]&0x80 != 0 {
				if len(p) < i+2 {
					return d, false
				}
				d.pid15 = true
				d.pictureID = uint16(p[i]&0x7f)<<8 | uint16(p[i+1])
				i += 2
			} else {
				d.pictureID = uint16(p[i])
				i++
			}
		}
		if x&0x40 != 0 { // L: TL0PICIDX
			if len(p) < i+1 {
				return d, false
			}
			d.tl0Offset = i
			d.tl0 = p[i]
			i++
		}
		if x&0x30 != 0 { // T or K: TID/Y/KEYIDX byte
			if len(p) < i+1 {
				return d, false
			}
			if x&0x10 != 0 {
				d.keyIdxOffset = i
				d.keyIdx = p[i] & 0x1f
			}
			i++
		}
	}
	d.headerLen = i
	if start && len(p) > i && p[i]&0x01 == 0 { // P bit clear: keyframe
		d.keyframe = true
		// Keyframe header: 3-byte frame tag, start code 9d 01 2a, then
		// 14-bit width and height (little endian, 2 bits of scaling each).
		if len(p) >= i+10 && p[i+3] == 0x9d && p[i+4] == 0x01 && p[i+5] == 0x2a {
			d.width = (uint16(p[i+6]) | uint16(p[i+7])<<8) & 0x3fff
			d.height = (uint16(p[i+8]) | uint16(p[i+9])<<8) & 0x3fff
		}
	}
	return d, true
}

// vp8Munger keeps picture id, TL0PICIDX and key index continuous for one
// subscriber across layer switches and pauses, so its decoder sees one stream.
type vp8Munger struct {
	started    bool
	pidOff     uint16 // added to the source picture id (mod 2^15)
	tl0Off     uint8
	keyIdxOff  uint8
	lastPID    uint16 // last picture id sent
	lastTL0    uint8
	lastKeyIdx uint8
	sentAny    bool
}

// startSegment is called on the keyframe that begins a new segment: the
// first picture of it continues right after the last one sent.
func (m *vp8Munger) startSegment(d *vp8Descriptor) {
	if !m.started {
		m.started = true
		m.pidOff, m.tl0Off, m.keyIdxOff = 0, 0, 0
	} else {
		m.pidOff = (m.lastPID + 1 - d.pictureID) & 0x7fff
		m.tl0Off = m.lastTL0 + 1 - d.tl0
		m.keyIdxOff = (m.lastKeyIdx + 1 - d.keyIdx) & 0x1f
	}
}

// needsRewrite reports whether packets of the current segment must have
// their descriptor changed (true after the first switch).
func (m *vp8Munger) needsRewrite() bool {
	return m.pidOff != 0 || m.tl0Off != 0 || m.keyIdxOff != 0
}

// rewrite writes the munged fields into p (a private copy of the payload)
// and remembers what was sent.
func (m *vp8Munger) rewrite(p []byte, d *vp8Descriptor) {
	if d.pidOffset != 0 {
		pid := (d.pictureID + m.pidOff) & 0x7fff
		if d.pid15 {
			p[d.pidOffset] = 0x80 | byte(pid>>8)
			p[d.pidOffset+1] = byte(pid)
		} else {
			p[d.pidOffset] = byte(pid & 0x7f)
		}
	}
	if d.tl0Offset != 0 {
		p[d.tl0Offset] = d.tl0 + m.tl0Off
	}
	if d.keyIdxOffset != 0 {
		p[d.keyIdxOffset] = p[d.keyIdxOffset]&0xe0 | (d.keyIdx+m.keyIdxOff)&0x1f
	}
}

// sent records the (munged) values of a forwarded packet.
func (m *vp8Munger) sent(d *vp8Descriptor) {
	if d.pidOffset != 0 {
		pid := (d.pictureID + m.pidOff) & 0x7fff
		if !d.pid15 {
			pid &= 0x7f
		}
		if !m.sentAny || int16((pid-m.lastPID)<<1) > 0 {
			m.lastPID = pid
		}
	}
	if d.tl0Offset != 0 {
		v := d.tl0 + m.tl0Off
		if !m.sentAny || int8(v-m.lastTL0) > 0 {
			m.lastTL0 = v
		}
	}
	if d.keyIdxOffset != 0 {
		m.lastKeyIdx = (d.keyIdx + m.keyIdxOff) & 0x1f
	}
	m.sentAny = true
}
