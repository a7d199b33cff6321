package record

import "github.com/pion/rtp"

// maxPayload is the largest RTP payload kept; a packet larger than an
// Ethernet MTU cannot have come through WebRTC.
const maxPayload = 1500

// slot holds one buffered packet; its payload lives in the buffer's
// backing array, so a packet costs one copy and no allocation.
type slot struct {
	used    bool
	seq     uint16
	ts      uint32
	ssrc    uint32
	marker  bool
	arrival int64 // ns on the recording clock
	payload []byte
}

// jitterBuffer puts one RTP stream's packets back in order. It holds a
// packet until those before it arrived or until it has waited delay (then
// the missing ones are given up as lost): late and retransmitted packets
// within delay still make it into their frame.
type jitterBuffer struct {
	slots   []slot
	mask    uint16
	delay   int64
	head    uint16 // next sequence number to release
	ssrc    uint32
	started bool
	count   int
}

func newJitterBuffer(size int, delay int64) *jitterBuffer {
	backing := make([]byte, size*maxPayload)
	j := &jitterBuffer{slots: make([]slot, size), mask: uint16(size - 1), delay: delay}
	for i := range j.slots {
		j.slots[i].payload = backing[i*maxPayload : i*maxPayload : (i+1)*maxPayload]
	}
	return j
}

// pushResult says what became of a pushed packet.
type pushResult int

const (
	pushed        pushResult = iota
	pushLate                 // older than what was already released, or a duplicate
	pushTooBig               // payload over maxPayload
	pushNewStream            // another SSRC or a jump: drain the buffer, then push again
)

// push stores p. On pushNewStream the caller drains the buffer (pop with
// force) and calls reset before pushing p again.
func (j *jitterBuffer) push(p *rtp.Packet, arrival int64) pushResult {
	if len(p.Payload) > maxPayload {
		return pushTooBig
	}
	if !j.started {
		j.reset(p)
	}
	if p.SSRC != j.ssrc {
		return pushNewStream
	}
	diff := int16(p.SequenceNumber - j.head)
	switch {
	case diff < 0 && diff > -1000:
		return pushLate
	case diff < 0 || int(diff) >= 3000:
		// Far outside any reorder window: the sender restarted its sequence.
		return pushNewStream
	case int(diff) >= len(j.slots):
		return pushNewStream
	}
	s := &j.slots[p.SequenceNumber&j.mask]
	if s.used {
		return pushLate
	}
	*s = slot{used: true, seq: p.SequenceNumber, ts: p.Timestamp, ssrc: p.SSRC, marker: p.Marker,
		arrival: arrival, payload: append(s.payload[:0], p.Payload...)}
	j.count++
	return pushed
}

// reset starts the buffer over at p's stream and sequence number.
func (j *jitterBuffer) reset(p *rtp.Packet) {
	j.started, j.ssrc, j.head, j.count = true, p.SSRC, p.SequenceNumber, 0
	for i := range j.slots {
		j.slots[i].used = false
	}
}

// pop returns the next packet in order. When the next one is missing, it
// gives up on it (lost) once the oldest packet waiting behind the hole
// has waited delay, or at once with force; then the next call returns
// the packet after the hole. The slot is valid until the next push.
func (j *jitterBuffer) pop(now int64, force bool) (s *slot, lost, ok bool) {
	if j.count == 0 {
		return nil, false, false
	}
	if s := &j.slots[j.head&j.mask]; s.used && s.seq == j.head {
		s.used = false
		j.count--
		j.head++
		return s, false, true
	}
	// A hole at head: find the first packet behind it.
	for i := 1; i < len(j.slots); i++ {
		seq := j.head + uint16(i)
		s := &j.slots[seq&j.mask]
		if !s.used || s.seq != seq {
			continue
		}
		if force || now-s.arrival >= j.delay {
			j.head = seq
			return nil, true, true
		}
		return nil, false, false
	}
	return nil, false, false
}
