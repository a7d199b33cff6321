package record

import "encoding/binary"

// h264Depacketizer turns RTP payloads (RFC 6184: single NAL units, STAP-A,
// FU-A) into Matroska samples: NAL units with 4-byte length prefixes. The
// latest SPS and PPS make the track's CodecPrivate (an
// AVCDecoderConfigurationRecord); they also stay in the samples, so a
// decoder follows a resolution change.
type h264Depacketizer struct {
	fuStart  int  // offset in the frame of the FU-A NAL being put together
	inFU     bool // a FU-A NAL is being put together
	idr      bool
	sps, pps []byte
	changed  bool   // sps or pps changed since config was built
	config   []byte // the avcC of sps and pps
	width    int
	height   int
}

const (
	naluIDR   = 5
	naluSPS   = 7
	naluPPS   = 8
	naluSTAPA = 24
	naluFUA   = 28
)

func (d *h264Depacketizer) begins(p []byte) bool {
	if len(p) == 0 {
		return false
	}
	switch t := p[0] & 0x1f; {
	case t == naluFUA:
		return len(p) > 1 && p[1]&0x80 != 0
	default:
		return t >= 1 && t <= naluSTAPA
	}
}

func (d *h264Depacketizer) add(f *frame, p []byte) error {
	if len(p) == 0 {
		return errBadPayload
	}
	if len(f.data)+len(p) > maxFrame {
		return errFrameTooLarge
	}
	switch t := p[0] & 0x1f; {
	case t >= 1 && t < naluSTAPA:
		d.nal(f, p)
	case t == naluSTAPA:
		for off := 1; off < len(p); {
			if off+2 > len(p) {
				return errBadPayload
			}
			n := int(binary.BigEndian.Uint16(p[off:]))
			off += 2
			if n == 0 || off+n > len(p) {
				return errBadPayload
			}
			d.nal(f, p[off:off+n])
			off += n
		}
	case t == naluFUA:
		return d.fragment(f, p)
	default:
		return errBadPayload // STAP-B, MTAP, FU-B: not used by WebRTC
	}
	return nil
}

// fragment adds one FU-A packet; the NAL's length is written at its end.
func (d *h264Depacketizer) fragment(f *frame, p []byte) error {
	if len(p) < 2 {
		return errBadPayload
	}
	start, end := p[1]&0x80 != 0, p[1]&0x40 != 0
	if start == d.inFU {
		return errPartialFrame // a start inside a NAL, or a middle without one
	}
	if start {
		d.inFU, d.fuStart = true, len(f.data)
		f.data = append(f.data, 0, 0, 0, 0, p[0]&0xe0|p[1]&0x1f)
	}
	f.data = append(f.data, p[2:]...)
	if end {
		nal := f.data[d.fuStart+4:]
		binary.BigEndian.PutUint32(f.data[d.fuStart:], uint32(len(nal)))
		d.inFU = false
		d.note(nal)
	}
	return nil
}

func (d *h264Depacketizer) nal(f *frame, nal []byte) {
	f.data = binary.BigEndian.AppendUint32(f.data, uint32(len(nal)))
	f.data = append(f.data, nal...)
	d.note(nal)
}

// note remembers what a NAL unit says about the frame and the stream.
func (d *h264Depacketizer) note(nal []byte) {
	switch nal[0] & 0x1f {
	case naluIDR:
		d.idr = true
	case naluSPS:
		if string(nal) != string(d.sps) {
			d.sps, d.changed = append(d.sps[:0], nal...), true
		}
	case naluPPS:
		if string(nal) != string(d.pps) {
			d.pps, d.changed = append(d.pps[:0], nal...), true
		}
	}
}

func (d *h264Depacketizer) finish(f *frame) error {
	idr := d.idr
	d.idr = false
	if d.inFU || len(f.data) == 0 {
		d.inFU = false
		return errPartialFrame
	}
	f.key = idr
	if !idr {
		return nil
	}
	if len(d.sps) < 4 || len(d.pps) == 0 {
		return errNoParamSets
	}
	if d.changed {
		w, h, ok := h264Size(d.sps)
		if !ok {
			return errBadPayload
		}
		d.width, d.height, d.changed = w, h, false
		d.config = avcConfig(d.sps, d.pps) // a new slice: frames in flight keep the old one
	}
	f.config, f.width, f.height = d.config, d.width, d.height
	return nil
}

func (d *h264Depacketizer) reset() { d.inFU, d.idr = false, false }

// avcConfig builds an AVCDecoderConfigurationRecord (ISO 14496-15 5.2.4)
// with one SPS and one PPS and 4-byte NAL lengths.
func avcConfig(sps, pps []byte) []byte {
	b := []byte{1, sps[1], sps[2], sps[3], 0xff, 0xe1}
	b = binary.BigEndian.AppendUint16(b, uint16(len(sps)))
	b = append(b, sps...)
	b = append(b, 1)
	b = binary.BigEndian.AppendUint16(b, uint16(len(pps)))
	return append(b, pps...)
}

// h264Size reads the picture size from an SPS (H.264 7.3.2.1.1).
func h264Size(sps []byte) (width, height int, ok bool) {
	r := &bitReader{b: unescapeRBSP(sps[1:])}
	profile := r.u(8)
	r.u(16) // constraint flags, level
	r.ue()  // seq_parameter_set_id
	chroma := uint64(1)
	switch profile {
	case 100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135:
		chroma = r.ue()
		if chroma == 3 {
			r.u(1) // separate_colour_plane_flag
		}
		r.ue()        // bit_depth_luma_minus8
		r.ue()        // bit_depth_chroma_minus8
		r.u(1)        // qpprime_y_zero_transform_bypass_flag
		if r.flag() { // seq_scaling_matrix_present_flag
			lists := 8
			if chroma == 3 {
				lists = 12
			}
			for i := range lists {
				if r.flag() {
					size := 64
					if i < 6 {
						size = 16
					}
					skipScalingList(r, size)
				}
			}
		}
	}
	r.ue()          // log2_max_frame_num_minus4
	switch r.ue() { // pic_order_cnt_type
	case 0:
		r.ue()
	case 1:
		r.u(1)
		r.se()
		r.se()
		for n := r.ue(); n > 0 && !r.err; n-- {
			r.se()
		}
	}
	r.ue() // max_num_ref_frames
	r.u(1) // gaps_in_frame_num_value_allowed_flag
	mbW, mbH := r.ue()+1, r.ue()+1
	frameMBsOnly := r.u(1)
	if frameMBsOnly == 0 {
		r.u(1) // mb_adaptive_frame_field_flag
	}
	r.u(1) // direct_8x8_inference_flag
	var cl, cr, ct, cb uint64
	if r.flag() {
		cl, cr, ct, cb = r.ue(), r.ue(), r.ue(), r.ue()
	}
	if r.err {
		return 0, 0, false
	}
	cropX, cropY := uint64(2), 2*(2-frameMBsOnly) // 4:2:0
	switch chroma {
	case 0:
		cropX, cropY = 1, 2-frameMBsOnly
	case 2:
		cropY = 2 - frameMBsOnly
	case 3:
		cropX, cropY = 1, 2-frameMBsOnly
	}
	w := int(mbW*16) - int((cl+cr)*cropX)
	h := int((2-frameMBsOnly)*mbH*16) - int((ct+cb)*cropY)
	return w, h, w > 0 && h > 0
}

func skipScalingList(r *bitReader, size int) {
	last, next := int64(8), int64(8)
	for range size {
		if next != 0 {
			next = (last + r.se() + 256) % 256
		}
		if next != 0 {
			last = next
		}
	}
}
