package sfu

import (
	"encoding/binary"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// sendState is what a DownTrack keeps for Confab's own send-side RTCP: the
// transport-wide sequence number's extension and what a sender report
// needs. It lives under DownTrack.mu; the packet path only stores a few
// fields per packet.
type sendState struct {
	twccID  uint8   // the negotiated transport-cc extension id (0: none)
	twccBuf [2]byte // the extension's value: the header points here, so nothing is allocated

	// The sender report's clock mapping and counters.
	haveMedia bool
	lastTS    uint32 // the last forwarded media packet's rewritten timestamp
	lastAt    int64  // when that packet reached the server, Unix ns
	packets   uint32 // RTP packets sent (wrapping, as in the report)
	octets    uint32 // payload octets sent (wrapping, as in the report)
}

// media notes one forwarded media packet for the sender reports.
func (s *sendState) media(ts uint32, at int64, payload int) {
	s.haveMedia, s.lastTS, s.lastAt = true, ts, at
	s.packets++
	s.octets += uint32(payload)
}

// transportCCID returns the negotiated transport-wide sequence number
// extension's id, 0 when the subscriber took none.
func transportCCID(exts []webrtc.RTPHeaderExtensionParameter) uint8 {
	for _, e := range exts {
		if e.URI == sdp.TransportCCURI {
			return uint8(e.ID)
		}
	}
	return 0
}

// stampLocked numbers the packet in d.hdr (payload bytes besides the
// header and padding) in the subscriber's transport-wide history and adds
// the number to the header. The extension's value is the DownTrack's own
// buffer and the header's extension slice is reused: nothing is allocated.
func (d *DownTrack) stampLocked(payload int, padding bool) {
	s := d.peer.send
	if d.out.twccID == 0 || s == nil {
		return
	}
	h := &d.hdr
	if err := h.SetExtension(d.out.twccID, d.out.twccBuf[:]); err != nil {
		return // an id the one-byte form cannot carry: sent unnumbered
	}
	size := h.MarshalSize() + payload
	if h.Padding {
		size += int(h.PaddingSize)
	}
	binary.BigEndian.PutUint16(d.out.twccBuf[:], s.stamp(size, padding))
}

// ntpEpochOffset is the seconds from 1900 (NTP) to 1970 (Unix).
const ntpEpochOffset = 2_208_988_800

// ntpTime converts t to the 64-bit NTP format of sender reports.
func ntpTime(t time.Time) uint64 {
	ns := t.UnixNano()
	sec := uint64(ns/1e9) + ntpEpochOffset
	frac := uint64(ns%1e9) << 32 / 1e9
	return sec<<32 | frac
}

// senderReport returns the track's sender report at now: the RTP time that
// corresponds to now on the subscriber's timeline (from the last forwarded
// packet's rewritten timestamp and arrival), and what was sent. ok is
// false before any media was forwarded.
func (d *DownTrack) senderReport(now time.Time) (sr rtcp.SenderReport, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.bound || d.closed || !d.out.haveMedia {
		return sr, false
	}
	elapsed := now.UnixNano() - d.out.lastAt
	clock := int64(d.recv.codec.ClockRate)
	return rtcp.SenderReport{
		SSRC:        d.ssrc,
		NTPTime:     ntpTime(now),
		RTPTime:     d.out.lastTS + uint32(elapsed*clock/1e9),
		PacketCount: d.out.packets,
		OctetCount:  d.out.octets,
	}, true
}

// reportTicks is how many allocation periods pass between two sender
// reports: one a second (RFC 3550's interval for a session this size is a
// few seconds; browsers use ~1 s for lip sync), on the allocation's
// ticker rather than a timer of their own.
const reportTicks = int(time.Second / allocateEvery)

// reportEvery is the interval between two sender reports.
const reportEvery = time.Duration(reportTicks) * allocateEvery

// reportsPerPacket bounds the sender reports in one compound RTCP packet
// (28 bytes each) so that it stays well under the path's MTU.
const reportsPerPacket = 32

// sendReports writes a sender report for every forwarded track that has
// sent media, in compound packets of at most reportsPerPacket.
func (p *Peer) sendReports(now time.Time) {
	var pkts []rtcp.Packet
	flush := func() {
		if len(pkts) == 0 {
			return
		}
		if err := p.pc.WriteRTCP(pkts); err != nil {
			p.log.Debug("write sender reports", "err", err)
		}
		pkts = pkts[:0]
	}
	for _, d := range p.DownTracks() {
		if sr, ok := d.senderReport(now); ok {
			pkts = append(pkts, &sr)
			if len(pkts) == reportsPerPacket {
				flush()
			}
		}
	}
	flush()
}
