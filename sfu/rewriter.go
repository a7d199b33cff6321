package sfu

// rewriter maps a source RTP stream, which may jump between simulcast layers
// or pause, onto one continuous outgoing stream: sequence numbers follow on
// from the last one sent, and timestamps advance with wall-clock time across
// every switch. It is pure state with no I/O so it can be table-tested.
type rewriter struct {
	clockRate uint32

	started  bool
	seqOff   uint16 // dst seq = src seq + seqOff
	tsOff    uint32 // dst ts = src ts + tsOff
	segStart uint16 // first source seq of the current segment
	lastSrc  uint16 // newest source seq forwarded in this segment
	lastSeq  uint16 // newest dst seq sent
	lastTS   uint32 // dst ts of the newest packet sent
	lastNano int64  // when the newest packet was sent
}

// seqNewer reports whether a comes after b in 16-bit serial arithmetic.
func seqNewer(a, b uint16) bool { return a != b && a-b < 0x8000 }

// startSegment begins a new segment whose first packet is (srcSeq, srcTS),
// arriving at now (nanoseconds). The very first segment keeps the source's
// numbering; later ones continue right after what was sent.
func (r *rewriter) startSegment(srcSeq uint16, srcTS uint32, now int64) {
	if !r.started {
		r.started = true
		r.seqOff, r.tsOff = 0, 0
		r.lastSeq = srcSeq - 1
		r.lastTS = srcTS
		r.lastNano = now
	} else {
		r.seqOff = r.lastSeq + 1 - srcSeq
		elapsed := now - r.lastNano
		if elapsed < 0 {
			elapsed = 0
		}
		step := uint32(uint64(elapsed) * uint64(r.clockRate) / 1e9)
		if step == 0 {
			step = 1
		}
		r.tsOff = r.lastTS + step - srcTS
	}
	r.segStart = srcSeq
	r.lastSrc = srcSeq - 1
}

// rewrite returns the outgoing sequence number and timestamp of a source
// packet of the current segment. ok is false for packets from before the
// segment began (late packets of the previous layer).
func (r *rewriter) rewrite(srcSeq uint16, srcTS uint32, now int64) (seq uint16, ts uint32, ok bool) {
	if !r.started || (srcSeq != r.segStart && !seqNewer(srcSeq, r.segStart)) {
		return 0, 0, false
	}
	seq = srcSeq + r.seqOff
	ts = srcTS + r.tsOff
	if seqNewer(srcSeq, r.lastSrc) {
		r.lastSrc = srcSeq
		r.lastSeq = seq
		// Keep the segment start within half the sequence space behind the
		// newest packet, so long segments survive wraparound.
		if srcSeq-r.segStart > 0x4000 {
			r.segStart = srcSeq - 0x4000
		}
		if int32(ts-r.lastTS) > 0 {
			r.lastTS = ts
		}
		r.lastNano = now
	}
	return seq, ts, true
}

// insert takes the next outgoing sequence number for a packet the server
// makes itself (a padding probe). Later source packets shift by one, and
// older ones can no longer be placed, so the segment restarts after the
// newest source packet.
func (r *rewriter) insert() (seq uint16, ts uint32, ok bool) {
	if !r.started {
		return 0, 0, false
	}
	r.seqOff++
	r.lastSeq++
	r.segStart = r.lastSrc + 1
	return r.lastSeq, r.lastTS, true
}
