// Package rewrite splices RTP packets from several source streams (the
// simulcast layers of one track, with pauses in between) into the one
// continuous stream a receiver expects: sequence numbers follow on from the
// last one sent, and timestamps keep advancing with wall-clock time across
// every switch.
//
// A Stream is pure state with no I/O and no clock of its own: callers pass
// the time, so sequences of packets can be table-tested, including
// wraparound at 2^16 (sequence numbers) and 2^32 (timestamps).
package rewrite

// Stream maps source packets onto one outgoing stream. The zero value is
// not usable: make one with New.
type Stream struct {
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

// New returns a Stream for a codec with the given RTP clock rate (Hz).
func New(clockRate uint32) Stream { return Stream{clockRate: clockRate} }

// SeqNewer reports whether sequence number a comes after b (RFC 1982 serial
// arithmetic on 16 bits: a is newer when it is less than half the sequence
// space ahead).
func SeqNewer(a, b uint16) bool { return a != b && a-b < 0x8000 }

// Started reports whether a segment has begun, so packets can be placed.
func (s *Stream) Started() bool { return s.started }

// StartSegment begins a new segment whose first packet is (srcSeq, srcTS),
// arriving at now (nanoseconds). The very first segment keeps the source's
// numbering; later ones continue right after what was sent, with the
// timestamp advanced by the time that passed (at least one tick, so no two
// frames share a timestamp).
func (s *Stream) StartSegment(srcSeq uint16, srcTS uint32, now int64) {
	if !s.started {
		s.started = true
		s.seqOff, s.tsOff = 0, 0
		s.lastSeq = srcSeq - 1
		s.lastTS = srcTS
		s.lastNano = now
	} else {
		s.seqOff = s.lastSeq + 1 - srcSeq
		elapsed := max(now-s.lastNano, 0)
		step := uint32(uint64(elapsed) * uint64(s.clockRate) / 1e9)
		if step == 0 {
			step = 1
		}
		s.tsOff = s.lastTS + step - srcTS
	}
	s.segStart = srcSeq
	s.lastSrc = srcSeq - 1
}

// Rewrite returns the outgoing sequence number and timestamp of a source
// packet of the current segment. ok is false for packets from before the
// segment began (late packets of the previous layer): placed now, they
// would land on numbers already sent.
func (s *Stream) Rewrite(srcSeq uint16, srcTS uint32, now int64) (seq uint16, ts uint32, ok bool) {
	if !s.started || (srcSeq != s.segStart && !SeqNewer(srcSeq, s.segStart)) {
		return 0, 0, false
	}
	seq = srcSeq + s.seqOff
	ts = srcTS + s.tsOff
	if SeqNewer(srcSeq, s.lastSrc) {
		s.lastSrc = srcSeq
		s.lastSeq = seq
		// Keep the segment start within a quarter of the sequence space
		// behind the newest packet, so a segment longer than 32768 packets
		// still accepts its own (slightly reordered) packets after a wrap.
		if srcSeq-s.segStart > 0x4000 {
			s.segStart = srcSeq - 0x4000
		}
		if int32(ts-s.lastTS) > 0 {
			s.lastTS = ts
		}
		s.lastNano = now
	}
	return seq, ts, true
}

// Insert takes the next outgoing sequence number for a packet the caller
// makes itself (a padding probe), with the newest timestamp sent. Later
// source packets shift by one, and older ones could no longer be placed
// without colliding, so the segment restarts after the newest source
// packet. ok is false before the first segment.
func (s *Stream) Insert() (seq uint16, ts uint32, ok bool) {
	if !s.started {
		return 0, 0, false
	}
	s.seqOff++
	s.lastSeq++
	s.segStart = s.lastSrc + 1
	return s.lastSeq, s.lastTS, true
}
