package sfu

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// PacketWriter takes a track's packets as the server received them: the
// publisher's own sequence numbers, timestamps and SSRC, after the
// server's NACK repair (a retransmission arrives late, on the media SSRC).
// It is called on a layer's reader goroutine, one packet at a time, and
// must neither block nor keep p (or its payload) after returning.
// record.Track is one.
type PacketWriter interface {
	WriteRTP(p *rtp.Packet, arrival time.Time)
}

// CodecParams describe a track's negotiated codec.
type CodecParams struct {
	MimeType  string // e.g. video/VP8, audio/opus
	ClockRate uint32 // RTP clock rate, Hz
	Channels  uint16 // audio channels (Opus in WebRTC says 2)
	Fmtp      string // the a=fmtp parameters
}

// Sink consumes one published track like a subscriber that never lacks
// bandwidth and needs no rewriting: it gets the highest layer the
// publisher sends now, switching layers only at a keyframe of the new
// layer (a decoder, or a file, can only start there), and asks for one
// when it starts, when its layer changes and whenever its consumer asks.
// A moderator's block stops it too. It is written after the subscribers,
// on the same reader goroutine, and its writer must not block: a slow
// consumer (a recording's disk) costs only itself.
type Sink struct {
	recv *Receiver
	out  PacketWriter

	mu     sync.Mutex // serializes writes: each layer has its own reader
	closed bool
	// current is the layer being handed on (noLayer before the first
	// keyframe), target the one to switch to at its next keyframe. Both
	// are written under mu and read without it by RequestKeyframe, which
	// the writer may call from inside WriteRTP.
	current atomic.Int32
	target  atomic.Int32
}

// CodecParams is the track's negotiated codec.
func (r *Receiver) CodecParams() CodecParams {
	c := r.codec
	return CodecParams{MimeType: c.MimeType, ClockRate: c.ClockRate, Channels: c.Channels, Fmtp: c.SDPFmtpLine}
}

// AddSink starts handing the track's packets to out, from the next
// keyframe of its best layer (one is asked for). ErrTrackEnded (relay.go)
// when the track has ended.
func (r *Receiver) AddSink(out PacketWriter) (*Sink, error) {
	s := &Sink{recv: r, out: out}
	s.current.Store(int32(noLayer))
	s.target.Store(int32(r.bestLayerAtMost(maxLayers - 1)))
	r.dtMu.Lock()
	if r.closed.Load() {
		r.dtMu.Unlock()
		return nil, ErrTrackEnded
	}
	var next []*Sink
	if cur := r.sinks.Load(); cur != nil {
		next = append(next, *cur...)
	}
	next = append(next, s)
	r.sinks.Store(&next)
	r.dtMu.Unlock()
	s.RequestKeyframe()
	return s, nil
}

// Close stops the sink; once it returns, its writer is not called again.
func (s *Sink) Close() {
	r := s.recv
	r.dtMu.Lock()
	if cur := r.sinks.Load(); cur != nil {
		if i := slices.Index(*cur, s); i >= 0 {
			next := slices.Delete(slices.Clone(*cur), i, i+1)
			r.sinks.Store(&next)
		}
	}
	r.dtMu.Unlock()
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}

// Layer is the layer being handed on (0 lowest), -1 before the first
// keyframe.
func (s *Sink) Layer() int { return int(s.current.Load()) }

// RequestKeyframe asks the publisher for a keyframe of the layer the sink
// hands on, or of the one it waits for; throttled per layer like the
// subscribers' requests. It never blocks and may be called from inside
// the writer's WriteRTP.
func (s *Sink) RequestKeyframe() {
	if s.recv.kind != webrtc.RTPCodecTypeVideo {
		return
	}
	l := int8(s.target.Load()) // the layer being handed on, or the one to come
	if l == noLayer {
		l = int8(s.current.Load())
	}
	if l >= 0 {
		s.recv.requestKeyframe(l)
	}
}

// write hands on one packet of a layer. It runs on the layer's reader
// goroutine and allocates nothing.
func (s *Sink) write(layer int8, p *rtp.Packet, key bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if cur := int8(s.current.Load()); layer != cur {
		if layer != int8(s.target.Load()) {
			return
		}
		if !key {
			s.recv.requestKeyframe(layer) // throttled
			return
		}
		s.current.Store(int32(layer))
	}
	s.out.WriteRTP(p, time.Now())
}

// updateTarget follows the best live layer (one appeared, ended or went
// silent); the switch waits for that layer's keyframe, asked for now.
func (s *Sink) updateTarget() {
	t := s.recv.bestLayerAtMost(maxLayers - 1)
	if t == noLayer || int8(s.target.Swap(int32(t))) == t {
		return
	}
	if int8(s.current.Load()) != t {
		s.recv.requestKeyframe(t)
	}
}

// resync makes the sink start over at a keyframe (a moderator's block was
// lifted: what came before is gone).
func (s *Sink) resync() {
	s.mu.Lock()
	s.current.Store(int32(noLayer))
	s.mu.Unlock()
	s.RequestKeyframe()
}

// writeSinks hands a packet to every sink of the track, unless a
// moderator stopped it.
func (r *Receiver) writeSinks(layer int8, p *rtp.Packet, key bool) {
	if sinks := r.sinks.Load(); sinks != nil && !r.blocked.Load() {
		for _, s := range *sinks {
			s.write(layer, p, key)
		}
	}
}

// eachSink runs f for every sink of the track.
func (r *Receiver) eachSink(f func(*Sink)) {
	if sinks := r.sinks.Load(); sinks != nil {
		for _, s := range *sinks {
			f(s)
		}
	}
}
