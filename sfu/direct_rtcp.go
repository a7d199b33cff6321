package sfu

import (
	"net/netip"
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/srtp/v3"
)

// Direct receive of subscribers' feedback. In a lecture every viewer sends
// TWCC feedback ten times a second and reports besides: a thousand RTCP
// packets a second at 100 viewers, and each went from the shared socket's
// reader through pion's UDP mux buffer, the ICE connection's buffer, the
// DTLS/SRTP mux and the SRTCP session's read stream to the DownTrack's
// reader: four hand-offs between goroutines, each a wake-up. With the
// peer's keys known (srtpkeys.go), the socket's reader decrypts and
// handles it on the spot instead. Only feedback is taken so: a datagram
// holding anything else (a sender report, which pion's receive
// interceptors use for the publisher's reports, an extended report, an
// unknown type, or feedback about a stream this peer is not sent) goes
// to pion whole, as before.

// rtcpTaker takes the RTCP datagrams one remote address sends to a socket.
type rtcpTaker interface {
	// takeRTCP handles the (encrypted) datagram b, or says false: then
	// the caller hands it on to pion. b is not kept.
	takeRTCP(b []byte) bool
}

// isRTCP says whether a datagram is RTP-family and RTCP (RFC 5761: the
// second byte of RTCP is a packet type in 192-223, where RTP has a marker
// bit and a payload type outside 64-95).
func isRTCP(b []byte) bool { return len(b) >= 8 && b[0]>>6 == 2 && b[1] >= 192 && b[1] <= 223 }

// routeRTCP makes t the taker of what remote sends to this socket.
func (b *batchConn) routeRTCP(remote netip.AddrPort, t rtcpTaker) {
	b.routeMu.Lock()
	defer b.routeMu.Unlock()
	if b.routes == nil {
		b.routes = map[netip.AddrPort]rtcpTaker{}
	}
	b.routes[remote] = t
}

// unrouteRTCP undoes routeRTCP, if t is still remote's taker.
func (b *batchConn) unrouteRTCP(remote netip.AddrPort, t rtcpTaker) {
	b.routeMu.Lock()
	defer b.routeMu.Unlock()
	if b.routes[remote] == t {
		delete(b.routes, remote)
	}
}

// takes hands an RTCP datagram from remote to its taker; false when there
// is none or it declined.
func (b *batchConn) takes(p []byte, remote netip.AddrPort) bool {
	b.routeMu.RLock()
	t := b.routes[netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port())]
	b.routeMu.RUnlock()
	return t != nil && t.takeRTCP(p)
}

// rtcpIn decrypts what one peer sends with its own SRTCP context (its
// replay window apart from pion's, which sees only what is handed on).
type rtcpIn struct {
	mu    sync.Mutex
	keys  *srtpKeys
	ctx   *srtp.Context
	plain [maxPacketSize]byte
}

// takeRTCP handles a datagram of the peer's feedback on the socket's
// reader goroutine (see the top of the file).
func (p *Peer) takeRTCP(b []byte) bool {
	r := p.direct.Load()
	if r == nil {
		return false
	}
	pkts, ok := p.in.open(r.keys, b)
	if !ok {
		return false
	}
	downs := p.bySSRC.Load()
	for _, pkt := range pkts {
		if !takesFeedback(pkt, downs) {
			return false
		}
	}
	now := time.Now()
	for _, pkt := range pkts {
		p.feedback(pkt, downs, now)
	}
	metricDirectRTCP.Inc()
	return true
}

// open decrypts and parses b.
func (in *rtcpIn) open(keys *srtpKeys, b []byte) ([]rtcp.Packet, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.ctx == nil || in.keys != keys {
		ctx, err := srtp.CreateContext(keys.inKey, keys.inSalt, keys.profile)
		if err != nil {
			return nil, false
		}
		in.ctx, in.keys = ctx, keys
	}
	plain, err := in.ctx.DecryptRTCP(in.plain[:0], b, nil)
	if err != nil {
		return nil, false
	}
	pkts, err := rtcp.Unmarshal(plain)
	return pkts, err == nil
}

// takesFeedback says whether pkt is feedback the direct path handles: about
// the transport, or about a stream of downs.
func takesFeedback(pkt rtcp.Packet, downs *map[uint32]*DownTrack) bool {
	if ssrc, ok := mediaSSRC(pkt); ok {
		return downOf(downs, ssrc) != nil
	}
	switch pkt.(type) {
	case *rtcp.ReceiverReport, *rtcp.SourceDescription, *rtcp.TransportLayerCC, *rtcp.ReceiverEstimatedMaximumBitrate:
		return true
	}
	return false
}

// mediaSSRC is the stream a keyframe request or NACK is about.
func mediaSSRC(pkt rtcp.Packet) (uint32, bool) {
	switch p := pkt.(type) {
	case *rtcp.PictureLossIndication:
		return p.MediaSSRC, true
	case *rtcp.FullIntraRequest:
		return p.MediaSSRC, true
	case *rtcp.TransportLayerNack:
		return p.MediaSSRC, true
	}
	return 0, false
}

// feedback hands one packet to the DownTracks it is about, or to the
// peer's send path.
func (p *Peer) feedback(pkt rtcp.Packet, downs *map[uint32]*DownTrack, now time.Time) {
	if ssrc, ok := mediaSSRC(pkt); ok {
		downOf(downs, ssrc).feedback(pkt, now)
		return
	}
	if rr, ok := pkt.(*rtcp.ReceiverReport); ok {
		for _, r := range rr.Reports {
			if d := downOf(downs, r.SSRC); d != nil {
				d.feedback(pkt, now)
			}
		}
		return
	}
	if p.alloc != nil {
		pathFeedback(p.alloc.path, pkt, now)
	}
}

func downOf(downs *map[uint32]*DownTrack, ssrc uint32) *DownTrack {
	if downs == nil {
		return nil
	}
	return (*downs)[ssrc]
}

// indexSSRC records (d non-nil) or forgets (d nil) which DownTrack sends
// ssrc, for the direct path's lookups (copy on write: the socket's reader
// reads it without a lock).
func (p *Peer) indexSSRC(ssrc uint32, d, was *DownTrack) {
	p.ssrcMu.Lock()
	defer p.ssrcMu.Unlock()
	old := p.bySSRC.Load()
	next := make(map[uint32]*DownTrack, 1+len(derefDowns(old)))
	for k, v := range derefDowns(old) {
		next[k] = v
	}
	if d != nil {
		next[ssrc] = d
	} else if next[ssrc] == was {
		delete(next, ssrc)
	}
	p.bySSRC.Store(&next)
}

func derefDowns(m *map[uint32]*DownTrack) map[uint32]*DownTrack {
	if m == nil {
		return nil
	}
	return *m
}
