package signal

import (
	"time"

	"nhooyr.io/websocket"
)

// bucket is a token bucket refilled by elapsed time.
type bucket struct {
	rate, tokens, burst float64
	last                time.Time
}

func (b *bucket) allow(now time.Time) bool {
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// admission is what the read limiter decides about one incoming message.
type admission int

const (
	admitOK       admission = iota
	admitDrop               // over the rate: drop it silently
	admitDropWarn           // over the rate: drop it and tell the client (at most once a second)
	admitAbuse              // a whole burst dropped in a row: disconnect
)

// readLimiter bounds the messages one connection may send. Only the
// reader uses it, so it needs no lock. A client is disconnected when more
// than a burst of its messages is dropped within one second: a paced flood
// (1,000 a second, say) gets a message through now and then, so counting
// only drops in a row would never end it.
type readLimiter struct {
	b           bucket
	burst       int
	dropped     int       // messages dropped since windowStart
	windowStart time.Time // start of the current one-second window
	lastWarn    time.Time // when the client was last told
}

func newReadLimiter(rate float64, burst int, now time.Time) readLimiter {
	return readLimiter{b: bucket{rate: rate, tokens: float64(burst), burst: float64(burst), last: now}, burst: burst, windowStart: now}
}

func (l *readLimiter) admit(now time.Time) admission {
	if l.b.allow(now) {
		return admitOK
	}
	if now.Sub(l.windowStart) >= time.Second {
		l.windowStart, l.dropped = now, 0
	}
	l.dropped++
	if l.dropped > l.burst {
		return admitAbuse
	}
	if now.Sub(l.lastWarn) >= time.Second {
		l.lastWarn = now
		return admitDropWarn
	}
	return admitDrop
}

// overLimit acts on a message the limiter refused. It returns the error
// Read should return when the connection is being closed, or nil to read on.
func (c *Conn) overLimit(a admission) *Error {
	switch a {
	case admitDropWarn:
		_ = c.SendError("", Errorf(CodeRateLimited, "message dropped: more than %.0f messages per second", c.opts.MessageRate))
	case admitAbuse:
		c.log.Info("signaling client over its message rate, disconnecting", "rate", c.opts.MessageRate, "burst", c.opts.MessageBurst)
		e := Errorf(CodeRateLimited, "too many messages: more than %.0f per second", c.opts.MessageRate)
		_ = c.SendError("", e)
		c.shut(closeRequest{code: websocket.StatusPolicyViolation, reason: "rate limit", flush: true})
		return e
	}
	return nil
}
