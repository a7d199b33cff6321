package vp8

// Offsets are what a Munger adds to the fields of a source descriptor; a
// forwarder remembers them per packet sent, so a retransmission is
// rewritten exactly as the original was.
type Offsets struct {
	PictureID uint16 // modulo 2^15 (2^7 for 7-bit ids)
	TL0PICIDX uint8
	KeyIdx    uint8 // modulo 2^5
}

// IsZero reports whether applying o would change nothing.
func (o Offsets) IsZero() bool { return o == Offsets{} }

// Apply writes the shifted fields of d into p, the payload d was parsed
// from (a private copy: other receivers may share the original).
func (o Offsets) Apply(p []byte, d *Descriptor) {
	if d.pidOffset != 0 {
		pid := (d.PictureID + o.PictureID) & 0x7fff
		if d.PictureID15 {
			p[d.pidOffset] = bitM | byte(pid>>8)
			p[d.pidOffset+1] = byte(pid)
		} else {
			p[d.pidOffset] = byte(pid & 0x7f)
		}
	}
	if d.tl0Offset != 0 {
		p[d.tl0Offset] = d.TL0PICIDX + o.TL0PICIDX
	}
	if d.keyIdxOffset != 0 {
		p[d.keyIdxOffset] = p[d.keyIdxOffset]&0xe0 | (d.KeyIdx+o.KeyIdx)&0x1f
	}
}

// Munger keeps picture id, TL0PICIDX and key index continuous for one
// receiver across switches between encodings and pauses, so its decoder
// sees one stream. It is pure state: the caller tells it where segments
// start and what was sent.
type Munger struct {
	started    bool
	off        Offsets
	lastPID    uint16 // newest picture id sent
	lastTL0    uint8
	lastKeyIdx uint8
	sentAny    bool
}

// StartSegment is called with the keyframe that begins a new segment: its
// picture continues right after the last one sent. The first segment
// keeps the source's values.
func (m *Munger) StartSegment(d *Descriptor) {
	if !m.started {
		m.started = true
		m.off = Offsets{}
		return
	}
	m.off = Offsets{
		PictureID: (m.lastPID + 1 - d.PictureID) & 0x7fff,
		TL0PICIDX: m.lastTL0 + 1 - d.TL0PICIDX,
		KeyIdx:    (m.lastKeyIdx + 1 - d.KeyIdx) & 0x1f,
	}
}

// Offsets returns the current segment's offsets.
func (m *Munger) Offsets() Offsets { return m.off }

// NeedsRewrite reports whether packets of the current segment must have
// their descriptor changed (false until the first switch).
func (m *Munger) NeedsRewrite() bool { return !m.off.IsZero() }

// Rewrite writes the munged fields into p, a private copy of the payload
// that d was parsed from.
func (m *Munger) Rewrite(p []byte, d *Descriptor) { m.off.Apply(p, d) }

// Sent records the (munged) values of a forwarded packet. Values older
// than the newest sent (a reordered packet) do not move it back.
func (m *Munger) Sent(d *Descriptor) {
	if d.pidOffset != 0 {
		pid := (d.PictureID + m.off.PictureID) & 0x7fff
		// Compare in the id's own width: 7-bit ids wrap at 128.
		newer := int16((pid-m.lastPID)<<1) > 0
		if !d.PictureID15 {
			pid &= 0x7f
			newer = int8(uint8(pid-m.lastPID)<<1) > 0
		}
		if !m.sentAny || newer {
			m.lastPID = pid
		}
	}
	if d.tl0Offset != 0 {
		v := d.TL0PICIDX + m.off.TL0PICIDX
		if !m.sentAny || int8(v-m.lastTL0) > 0 {
			m.lastTL0 = v
		}
	}
	if d.keyIdxOffset != 0 {
		m.lastKeyIdx = (d.KeyIdx + m.off.KeyIdx) & 0x1f
	}
	m.sentAny = true
}
