package sfu

import (
	"sync"
	"time"

	"github.com/confab-sfu/confab/sfu/queuing"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
)

// departureFactory makes, for each PeerConnection, an interceptor that
// records when each packet sent to the subscriber left, by its
// transport-wide sequence number, so that the subscriber's TWCC feedback
// tells one-way delays (package queuing). It sits inside pion's TWCC header
// extension interceptor, which stamps the number first.
type departureFactory struct {
	onNew func(*queuing.Departures) // the PeerConnection being built gets these
}

func (f departureFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	d := &departureInterceptor{deps: &queuing.Departures{}}
	f.onNew(d.deps)
	return d, nil
}

type departureInterceptor struct {
	interceptor.NoOp
	deps *queuing.Departures
}

// BindLocalStream wraps a forwarded track's writer when TWCC is negotiated.
func (d *departureInterceptor) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	var id uint8
	for _, e := range info.RTPHeaderExtensions {
		if e.URI == sdp.TransportCCURI {
			id = uint8(e.ID)
		}
	}
	d.deps.StreamBound(id != 0)
	if id == 0 {
		return w
	}
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		if b := h.GetExtension(id); len(b) >= 2 {
			size := h.MarshalSize() + len(payload)
			if h.Padding {
				size += int(h.PaddingSize)
			}
			d.deps.Record(uint16(b[0])<<8|uint16(b[1]), time.Now().UnixNano(), size)
		}
		return w.Write(h, payload, a)
	})
}

// delays tracks one subscriber's queuing delay and delivered rate from its
// TWCC feedback.
type delays struct {
	deps *queuing.Departures // nil when the PeerConnection has none (tests)
	mu   sync.Mutex          // feedback arrives on several senders' readers
	mon  queuing.Monitor
	rate queuing.Delivery
}

// feedback adds the one-way delay and the size of every packet a TWCC
// report acknowledges.
func (q *delays) feedback(p *rtcp.TransportLayerCC, now time.Time) {
	if q == nil || q.deps == nil {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	twccArrivals(p, func(seq uint16, arrival int64) {
		if sent, size, ok := q.deps.Lookup(seq); ok {
			q.mon.Add(arrival-sent, now)
			q.rate.Add(arrival, size)
		}
	})
}

// delivered returns the rate the subscriber received lately, bit/s, if
// measured.
func (q *delays) delivered() (int64, bool) {
	if q == nil || q.deps == nil {
		return 0, false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.rate.Rate()
}

// expected reports whether TWCC feedback is (or will be) measured.
func (q *delays) expected() bool { return q != nil && q.deps != nil && q.deps.Expected() }

// queuing returns the subscriber's current queuing delay, if measured.
func (q *delays) queuing(now time.Time) (time.Duration, bool) {
	if q == nil || q.deps == nil {
		return 0, false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.mon.Queuing(now)
}

// twccArrivals calls f with the arrival time (µs, the receiver's clock) of
// each packet the report says was received.
func twccArrivals(p *rtcp.TransportLayerCC, f func(seq uint16, arrival int64)) {
	arrival := int64(p.ReferenceTime) * 64_000
	seq, left, delta := p.BaseSequenceNumber, int(p.PacketStatusCount), 0
	status := func(symbol uint16) {
		if left == 0 {
			return
		}
		left--
		if symbol == rtcp.TypeTCCPacketReceivedSmallDelta || symbol == rtcp.TypeTCCPacketReceivedLargeDelta {
			if delta >= len(p.RecvDeltas) {
				left = 0 // malformed: deltas missing
				return
			}
			arrival += p.RecvDeltas[delta].Delta
			delta++
			f(seq, arrival)
		}
		seq++
	}
	for _, c := range p.PacketChunks {
		switch c := c.(type) {
		case *rtcp.RunLengthChunk:
			for range c.RunLength {
				status(c.PacketStatusSymbol)
			}
		case *rtcp.StatusVectorChunk:
			for _, s := range c.SymbolList {
				status(s)
			}
		}
	}
}
