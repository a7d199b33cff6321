package record

// mediaClock turns one track's RTP timestamps into times on the
// recording's clock (ns since the recording started). The first frame is
// placed by its arrival time; later frames follow their RTP timestamps, so
// jitter does not move them. When the stream changes (another SSRC after a
// simulcast layer switch, a sender that restarted its timestamps) or the
// RTP time stops agreeing with the arrival time (a mute gap in which the
// sender's clock stood still), the clock re-anchors on arrival time.
// Times only ever go forward.
type mediaClock struct {
	rate        int64 // Hz
	started     bool
	ssrc        uint32
	lastExt     int64 // unwrapped RTP timestamp of the last frame
	lastPTS     int64 // ns
	lastArrival int64 // ns
}

// maxClockDisagreement is how far RTP time and arrival time may drift
// apart between two frames before the clock re-anchors: far more than
// network jitter, far less than a mute gap worth noticing.
const maxClockDisagreement = 1_000_000_000 // 1 s

// minFrameStep keeps frame times strictly increasing at the file's
// millisecond resolution.
const minFrameStep = 1_000_000 // 1 ms

// pts returns the time of a frame with RTP timestamp ts from ssrc whose
// first packet arrived at arrival (ns on the recording clock).
func (c *mediaClock) pts(ssrc, ts uint32, arrival int64) int64 {
	if !c.started {
		c.started, c.ssrc, c.lastExt = true, ssrc, int64(ts)
		c.lastPTS, c.lastArrival = arrival, arrival
		return arrival
	}
	arrivalStep := arrival - c.lastArrival
	var pts int64
	if ssrc != c.ssrc {
		c.ssrc, c.lastExt = ssrc, int64(ts)
		pts = c.lastPTS + arrivalStep
	} else {
		// Unwrap: the timestamp moved by the signed 32-bit difference.
		ext := c.lastExt + int64(int32(ts-uint32(c.lastExt)))
		rtpStep := (ext - c.lastExt) * 1_000_000_000 / c.rate
		c.lastExt = ext
		if d := rtpStep - arrivalStep; d > maxClockDisagreement || d < -maxClockDisagreement {
			pts = c.lastPTS + arrivalStep
		} else {
			pts = c.lastPTS + rtpStep
		}
	}
	if pts < c.lastPTS+minFrameStep {
		pts = c.lastPTS + minFrameStep
	}
	c.lastPTS, c.lastArrival = pts, arrival
	return pts
}
