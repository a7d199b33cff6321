package record

// av1Depacketizer turns RTP payloads (the AV1 RTP specification: an
// aggregation header, then OBU elements that may be fragmented across
// packets) into a Matroska sample: OBUs in low-overhead format, each with
// its size field, temporal delimiters dropped. The sequence header makes
// the CodecPrivate (an AV1CodecConfigurationRecord).
type av1Depacketizer struct {
	frag    []byte // an OBU continued in the next packet
	inFrag  bool
	key     bool // the frame starts a coded video sequence (N bit)
	seq     []byte
	changed bool
	config  []byte
	width   int
	height  int
}

const (
	obuSequenceHeader    = 1
	obuTemporalDelimiter = 2
	obuTileList          = 8
)

func (d *av1Depacketizer) begins(p []byte) bool {
	if len(p) < 2 || p[0]&0x80 != 0 { // Z: continues an OBU we lack
		return false
	}
	d.key = p[0]&0x08 != 0
	return true
}

func (d *av1Depacketizer) add(f *frame, p []byte) error {
	if len(p) < 2 {
		return errBadPayload
	}
	z, y, w := p[0]&0x80 != 0, p[0]&0x40 != 0, int(p[0]>>4&3)
	if z != d.inFrag {
		return errPartialFrame
	}
	if len(f.data)+len(p) > maxFrame {
		return errFrameTooLarge
	}
	for off, n := 1, 1; off < len(p); n++ {
		size := len(p) - off
		if w == 0 || n < w {
			v, k := leb128(p[off:])
			if k == 0 {
				return errBadPayload
			}
			off += k
			size = int(v)
		}
		if size < 0 || off+size > len(p) {
			return errBadPayload
		}
		elem := p[off : off+size]
		off += size
		last := off >= len(p)
		if n == 1 && z {
			d.frag = append(d.frag, elem...)
			elem = d.frag
		}
		if last && y {
			if !(n == 1 && z) {
				d.frag = append(d.frag[:0], elem...)
			}
			d.inFrag = true
			return nil
		}
		d.inFrag = false
		if err := d.emit(f, elem); err != nil {
			return err
		}
		d.frag = d.frag[:0]
	}
	return nil
}

// emit writes one whole OBU with its size field.
func (d *av1Depacketizer) emit(f *frame, obu []byte) error {
	if len(obu) == 0 {
		return nil
	}
	hdrLen := 1
	if obu[0]&0x04 != 0 { // extension header
		hdrLen = 2
	}
	if len(obu) < hdrLen {
		return errBadPayload
	}
	payload := obu[hdrLen:]
	if obu[0]&0x02 != 0 { // the sender kept the size field
		v, k := leb128(payload)
		if k == 0 || uint64(len(payload)-k) < v {
			return errBadPayload
		}
		payload = payload[k : k+int(v)]
	}
	typ := obu[0] >> 3 & 0x0f
	if typ == obuTemporalDelimiter || typ == obuTileList {
		return nil
	}
	start := len(f.data)
	f.data = append(f.data, obu[0]|0x02)
	f.data = append(f.data, obu[1:hdrLen]...)
	f.data = appendLeb128(f.data, uint64(len(payload)))
	f.data = append(f.data, payload...)
	if typ == obuSequenceHeader && string(f.data[start:]) != string(d.seq) {
		d.seq, d.changed = append(d.seq[:0], f.data[start:]...), true
	}
	return nil
}

func (d *av1Depacketizer) finish(f *frame) error {
	if d.inFrag || len(f.data) == 0 {
		d.inFrag = false
		return errPartialFrame
	}
	f.key = d.key
	if !f.key {
		return nil
	}
	if len(d.seq) == 0 {
		return errNoSeqHeader
	}
	if d.changed {
		cfg, w, h, ok := av1Config(d.seq)
		if !ok {
			return errBadPayload
		}
		d.config, d.width, d.height, d.changed = cfg, w, h, false
	}
	f.config, f.width, f.height = d.config, d.width, d.height
	return nil
}

func (d *av1Depacketizer) reset() { d.inFrag, d.key, d.frag = false, false, d.frag[:0] }

// av1Config reads a sequence header OBU (AV1 5.5) far enough for the
// picture size and the profile, level and tier of an
// AV1CodecConfigurationRecord, whose configOBUs is that OBU.
func av1Config(seqOBU []byte) (cfg []byte, width, height int, ok bool) {
	hdrLen := 1 + int(seqOBU[0]>>2&1)
	_, k := leb128(seqOBU[hdrLen:])
	r := &bitReader{b: seqOBU[hdrLen+k:]}
	profile := r.u(3)
	r.u(1) // still_picture
	var level, tier uint64
	if r.flag() { // reduced_still_picture_header
		level = r.u(5)
	} else {
		level, tier = av1OperatingPoints(r)
	}
	wBits, hBits := int(r.u(4))+1, int(r.u(4))+1
	width, height = int(r.u(wBits))+1, int(r.u(hBits))+1
	if r.err {
		return nil, 0, 0, false
	}
	// Chroma subsampling by profile (0: 4:2:0, 1: 4:4:4, 2: 4:2:2 at 8
	// and 10 bits); bit depth is left at 8: decoders read the OBU itself.
	ss := map[uint64]byte{0: 0x0c, 1: 0x00, 2: 0x08}[profile]
	cfg = append([]byte{0x81, byte(profile<<5 | level&0x1f), byte(tier<<7) | ss, 0}, seqOBU...)
	return cfg, width, height, true
}

// av1OperatingPoints skips the timing and decoder model information and
// returns the first operating point's level and tier.
func av1OperatingPoints(r *bitReader) (level, tier uint64) {
	decoderModel := false
	var delayLen int
	if r.flag() { // timing_info_present_flag
		r.u(32) // num_units_in_display_tick
		r.u(32) // time_scale
		if r.flag() {
			r.uvlc() // num_ticks_per_picture_minus_1
		}
		if decoderModel = r.flag(); decoderModel {
			delayLen = int(r.u(5)) + 1
			r.u(32) // num_units_in_decoding_tick
			r.u(10) // buffer_removal_time_length_minus_1, frame_presentation_time_length_minus_1
		}
	}
	displayDelay := r.flag()
	points := int(r.u(5)) + 1
	for i := 0; i < points && !r.err; i++ {
		r.u(12) // operating_point_idc
		l, t := r.u(5), uint64(0)
		if l > 7 {
			t = r.u(1)
		}
		if i == 0 {
			level, tier = l, t
		}
		if decoderModel && r.flag() {
			r.u(2*delayLen + 1)
		}
		if displayDelay && r.flag() {
			r.u(4)
		}
	}
	return level, tier
}

// leb128 reads an unsigned LEB128 number; k is 0 when b holds none.
func leb128(b []byte) (v uint64, k int) {
	for i := 0; i < 8 && i < len(b); i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			return v, i + 1
		}
	}
	return 0, 0
}

func appendLeb128(b []byte, v uint64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
