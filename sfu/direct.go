package sfu

import (
	"net/netip"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"
)

// directRoute is where a peer's forwarded packets go when the server
// writes them itself: the batched socket of the selected ICE pair's local
// candidate, the remote address, and the SRTP keys.
type directRoute struct {
	conn *batchConn
	addr netip.AddrPort
	keys *srtpKeys
}

// directWriter encrypts one DownTrack's packets with its own SRTP context
// (its SSRC is the DownTrack's alone, so no other writer shares the
// rollover state) and queues them on the batched socket: one encryption
// and one copy per packet, where pion's writer goes through its SRTP
// session's lock, its mux, the ICE connection and the UDP mux's address
// map. It is used under the DownTrack's lock.
type directWriter struct {
	keys   *srtpKeys
	ctx    *srtp.Context
	pkt    rtp.Packet
	hdr    rtp.Header // EncryptRTP's scratch header
	plain  [maxPacketSize]byte
	sealed [maxPacketSize + srtpOverhead]byte
}

// srtpOverhead is room for the SRTP authentication tag (16 bytes with
// AES-GCM, 10 with HMAC-SHA1-80).
const srtpOverhead = 32

// updateDirectRoute works out whether the peer's packets can bypass pion's
// send path, and where to: only over the shared batched UDP port, with the
// keys known. It runs when the connection comes up and whenever ICE
// selects another pair; without a route pion's writer is used.
func (p *Peer) updateDirectRoute() {
	p.routeMu.Lock()
	defer p.routeMu.Unlock()
	var route *directRoute
	if !p.isClosed() {
		route = p.findDirectRoute()
	}
	p.setRouteLocked(route)
}

// dropDirectRoute stops the direct paths as the peer closes.
func (p *Peer) dropDirectRoute() {
	p.routeMu.Lock()
	defer p.routeMu.Unlock()
	p.setRouteLocked(nil)
}

// setRouteLocked switches to route (nil: none), moving where the peer's
// RTCP is read on the spot with it (direct_rtcp.go). Called with routeMu.
func (p *Peer) setRouteLocked(route *directRoute) {
	old := p.direct.Swap(route)
	if old != nil && (route == nil || *old != *route) {
		old.conn.unrouteRTCP(old.addr, p)
	}
	if route != nil {
		route.conn.routeRTCP(route.addr, p)
	}
	if (old == nil) != (route == nil) {
		p.log.Debug("direct send", "on", route != nil)
	}
}

func (p *Peer) findDirectRoute() *directRoute {
	if p.keys == nil || p.engine.batch == nil {
		return nil
	}
	keys := p.keys.outKeys()
	if keys == nil {
		return nil
	}
	sctp := p.pc.SCTP()
	if sctp == nil {
		return nil
	}
	pair, err := sctp.Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil || pair.Local == nil || pair.Remote == nil || pair.Local.Protocol != webrtc.ICEProtocolUDP {
		return nil
	}
	local, err1 := netip.ParseAddr(pair.Local.Address)
	remote, err2 := netip.ParseAddr(pair.Remote.Address)
	if err1 != nil || err2 != nil || !remote.Unmap().Is4() {
		return nil
	}
	conn := p.engine.batch.conn(netip.AddrPortFrom(local.Unmap(), pair.Local.Port))
	if conn == nil {
		return nil
	}
	return &directRoute{conn: conn, addr: netip.AddrPortFrom(remote.Unmap(), pair.Remote.Port), keys: keys}
}

// write sends one packet straight to the route; n is the RTP size.
func (w *directWriter) write(r *directRoute, h *rtp.Header, payload []byte) (int, error) {
	if w.ctx == nil || w.keys != r.keys {
		ctx, err := srtp.CreateContext(r.keys.key, r.keys.salt, r.keys.profile)
		if err != nil {
			return 0, err
		}
		w.ctx, w.keys = ctx, r.keys
	}
	w.pkt.Header = *h
	w.pkt.Payload = payload
	n, err := w.pkt.MarshalTo(w.plain[:])
	w.pkt.Payload = nil
	if err != nil {
		return 0, err
	}
	out, err := w.ctx.EncryptRTP(w.sealed[:0], w.plain[:n], &w.hdr)
	if err != nil {
		return 0, err
	}
	if _, err := r.conn.WriteToAddrPort(out, r.addr); err != nil {
		return 0, err
	}
	return n, nil
}

// writeOut sends a packet of the DownTrack's, directly when the peer has
// a route, else through pion. Called with d.mu held.
func (d *DownTrack) writeOut(h *rtp.Header, payload []byte) (int, error) {
	r := d.peer.direct.Load()
	if r == nil {
		return d.writer.WriteRTP(h, payload)
	}
	if d.direct == nil {
		d.direct = new(directWriter)
	}
	n, err := d.direct.write(r, h, payload)
	if err == nil {
		metricDirectPackets.Inc()
	}
	return n, err
}
