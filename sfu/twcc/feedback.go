package twcc

import (
	"fmt"

	"github.com/confab-sfu/confab/sfu/bwe"
	"github.com/pion/rtcp"
)

// Counts says what one feedback report held.
type Counts struct {
	Received   int // results appended for packets that arrived
	Lost       int // results appended for packets reported not received
	Duplicates int // already reported (feedback repeats itself after reordering)
	TooOld     int // no longer in the ring: skipped
	Unsent     int // numbers never assigned: a confused receiver; skipped
}

// refWrap is the period of the feedback's 24-bit reference time, in its
// 64 ms units (about 12.4 days).
const refWrap = 1 << 24

// Feedback appends to out[:0] a result for each packet fb reports, in the
// order reported, and returns it with what the report held. Reports that
// repeat an earlier one are skipped; a packet reported lost and later
// received comes back as received with Late set. Arrival times are the
// receiver's clock (ns), continuous across the reference time's wrap.
// out is reused: with enough capacity nothing is allocated. Malformed
// feedback returns ErrMalformed with the results read before the fault.
// Only the reader goroutine may call it.
func (h *History) Feedback(fb *rtcp.TransportLayerCC, out []bwe.Packet) ([]bwe.Packet, Counts, error) {
	out = out[:0]
	var c Counts
	p := parser{h: h, fb: fb, left: int(fb.PacketStatusCount), arrival: h.unwrapRef(fb.ReferenceTime) * 64_000}
	p.sent = h.Sent()
	p.base, p.baseOK = h.unwrap(fb.BaseSequenceNumber, p.sent)
	for _, chunk := range fb.PacketChunks {
		var err error
		switch ch := chunk.(type) {
		case *rtcp.RunLengthChunk:
			for i := 0; i < int(ch.RunLength) && p.left > 0 && err == nil; i++ {
				out, err = p.status(ch.PacketStatusSymbol, out, &c)
			}
		case *rtcp.StatusVectorChunk:
			for i := 0; i < len(ch.SymbolList) && p.left > 0 && err == nil; i++ {
				out, err = p.status(ch.SymbolList[i], out, &c)
			}
		default:
			err = fmt.Errorf("twcc feedback: unknown chunk %T: %w", chunk, ErrMalformed)
		}
		if err != nil {
			return out, c, err
		}
	}
	return out, c, nil
}

// unwrapRef extends a 24-bit reference time with the laps seen so far,
// taking it as the one nearest the newest seen (feedback may be reordered).
func (h *History) unwrapRef(ref uint32) int64 {
	ref &= refWrap - 1
	if !h.haveRef {
		h.ref, h.haveRef = int64(ref), true
		return h.ref
	}
	diff := (int64(ref) - h.ref) & (refWrap - 1)
	if diff >= refWrap/2 {
		diff -= refWrap
	}
	at := h.ref + diff
	h.ref = max(h.ref, at)
	return at
}

// parser walks one report's status symbols in sequence order.
type parser struct {
	h       *History
	fb      *rtcp.TransportLayerCC
	left    int   // statuses still to read (PacketStatusCount bounds them)
	index   int64 // position of the next status after the base
	delta   int   // next receive delta
	arrival int64 // µs, the receiver's clock: reference time plus deltas so far
	sent    int64 // packets stamped when the report was read
	base    int64 // the base sequence number, unwrapped
	baseOK  bool
}

// status handles the next packet's symbol.
func (p *parser) status(symbol uint16, out []bwe.Packet, c *Counts) ([]bwe.Packet, error) {
	p.left--
	seq := p.base + p.index
	p.index++
	received := false
	switch symbol {
	case rtcp.TypeTCCPacketNotReceived:
	case rtcp.TypeTCCPacketReceivedSmallDelta, rtcp.TypeTCCPacketReceivedLargeDelta:
		if p.delta >= len(p.fb.RecvDeltas) || p.fb.RecvDeltas[p.delta] == nil {
			return out, fmt.Errorf("twcc feedback: receive delta %d missing: %w", p.delta, ErrMalformed)
		}
		p.arrival += p.fb.RecvDeltas[p.delta].Delta
		p.delta++
		received = true
	default:
		return out, fmt.Errorf("twcc feedback: reserved status symbol %d: %w", symbol, ErrMalformed)
	}
	if !p.baseOK || seq >= p.sent {
		c.Unsent++
		return out, nil
	}
	sent, size, padding, ok := p.h.lookup(seq)
	if !ok {
		c.TooOld++
		return out, nil
	}
	seen := &p.h.seen[seq&p.h.mask]
	tag := uint32(seq+1) << 2
	before := uint32(0)
	if *seen&^3 == tag {
		before = *seen & 3
	}
	if before == seenReceived || (before == seenLost && !received) {
		c.Duplicates++
		return out, nil
	}
	r := bwe.Packet{Seq: seq, Sent: sent, Size: size, Padding: padding}
	if received {
		r.Arrival, r.Late = p.arrival*1000, before == seenLost
		*seen = tag | seenReceived
		c.Received++
	} else {
		r.Lost = true
		*seen = tag | seenLost
		c.Lost++
	}
	return append(out, r), nil
}
