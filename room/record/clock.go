package record

// mediaClock turns one track's RTP timestamps into times on the
// recording's clock (ns since the recording started). It sees every
// packet's arrival: the least delayed packet defines where RTP time lies
// on the recording's clock (a packet that waited for a retransmission
// does not move it), and frames then follow their RTP timestamps, so
// jitter does not move them either. When the stream changes (another SSRC
// after a simulcast layer switch, a sender that restarted its
// timestamps), or packets come back after a pause with an RTP clock that
// stood still, the clock starts a new epoch anchored on arrival again.
// Frame times only ever go forward.
type mediaClock struct {
	rate        int64 // Hz
	started     bool
	ssrc        uint32
	ext         int64 // unwrapped RTP timestamp of the newest packet
	origin      int64 // unwrapped RTP timestamp where the epoch began
	offset      int64 // recording time of origin, ns
	lastArrival int64
	lastPTS     int64
	emitted     bool
	epochs      int // epochs begun so far
}

// maxClockDisagreement is how far a packet may seem late or early against
// the epoch before the epoch is redone: far more than network jitter and
// retransmission delay, less than a pause worth keeping.
const maxClockDisagreement = 1_000_000_000 // 1 s

// minFrameStep keeps frame times strictly increasing at the file's
// millisecond resolution.
const minFrameStep = 1_000_000 // 1 ms

func (c *mediaClock) ns(rtpTicks int64) int64 { return rtpTicks * 1_000_000_000 / c.rate }

// unwrap extends a 32-bit timestamp to the one nearest the newest seen.
func (c *mediaClock) unwrap(ts uint32) int64 { return c.ext + int64(int32(ts-uint32(c.ext))) }

// observe takes a packet, in arrival order, that arrived at arrival (ns).
func (c *mediaClock) observe(ssrc, ts uint32, arrival int64) {
	gap := arrival - c.lastArrival
	c.lastArrival = arrival
	if !c.started || ssrc != c.ssrc {
		c.epoch(ssrc, int64(ts), arrival)
		return
	}
	ext := c.unwrap(ts)
	c.ext = max(c.ext, ext)
	at := arrival - c.ns(ext-c.origin)
	switch d := at - c.offset; {
	case d < -maxClockDisagreement:
		c.epoch(ssrc, ext, arrival) // the RTP clock jumped ahead
	case d < 0:
		c.offset = at // less delayed than any packet before
	case d > maxClockDisagreement && gap > maxClockDisagreement:
		c.epoch(ssrc, ext, arrival) // back from a pause with a clock that stood still
	}
}

func (c *mediaClock) epoch(ssrc uint32, ext, arrival int64) {
	c.started, c.ssrc, c.ext, c.origin, c.offset = true, ssrc, ext, ext, arrival
	c.epochs++
}

// at is where RTP timestamp ts lies on the recording's clock as the epoch
// now stands: a packet less delayed than those before moves it earlier.
func (c *mediaClock) at(ts uint32) int64 { return c.offset + c.ns(c.unwrap(ts)-c.origin) }

// pts returns the time of a frame with RTP timestamp ts; its packets
// have been observed. A frame at or before the one before it is moved to
// minFrameStep after it.
func (c *mediaClock) pts(ts uint32) int64 {
	pts := c.at(ts)
	if c.emitted && pts < c.lastPTS+minFrameStep {
		pts = c.lastPTS + minFrameStep
	}
	c.lastPTS, c.emitted = pts, true
	return pts
}

// retime moves the current epoch so that the frame with RTP timestamp ts
// falls at pts, which becomes the latest frame time: later frames follow
// it by their timestamps.
func (c *mediaClock) retime(ts uint32, pts int64) {
	c.offset = pts - c.ns(c.unwrap(ts)-c.origin)
	c.lastPTS = pts
}
