package record

// bitReader reads a big-endian bit string: H.264 SPS and AV1 sequence
// headers. Reading past the end sets err and returns zeros.
type bitReader struct {
	b   []byte
	pos int // in bits
	err bool
}

func (r *bitReader) u(n int) uint64 {
	var v uint64
	for range n {
		if r.pos >= len(r.b)*8 {
			r.err = true
			return 0
		}
		v = v<<1 | uint64(r.b[r.pos/8]>>(7-r.pos%8)&1)
		r.pos++
	}
	return v
}

func (r *bitReader) flag() bool { return r.u(1) == 1 }

// ue is an unsigned Exp-Golomb code (H.264 9.1).
func (r *bitReader) ue() uint64 {
	zeros := 0
	for !r.flag() {
		if r.err || zeros > 31 {
			r.err = true
			return 0
		}
		zeros++
	}
	return 1<<zeros - 1 + r.u(zeros)
}

// se is a signed Exp-Golomb code.
func (r *bitReader) se() int64 {
	v := r.ue()
	if v&1 == 1 {
		return int64(v+1) / 2
	}
	return -int64(v / 2)
}

// uvlc is AV1's variable-length code (AV1 4.10.3).
func (r *bitReader) uvlc() uint64 {
	zeros := 0
	for !r.flag() {
		if r.err || zeros >= 32 {
			r.err = true
			return 0
		}
		zeros++
	}
	return r.u(zeros) + 1<<zeros - 1
}

// unescapeRBSP removes H.264 emulation-prevention bytes (00 00 03).
func unescapeRBSP(nal []byte) []byte {
	out := make([]byte, 0, len(nal))
	zeros := 0
	for _, c := range nal {
		if zeros >= 2 && c == 3 {
			zeros = 0
			continue
		}
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
		out = append(out, c)
	}
	return out
}
