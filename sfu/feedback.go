package sfu

import (
	"errors"
	"io"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// readRTCP handles the subscriber's feedback for this track until the
// sender stops: keyframe requests go upstream (throttled), NACKs are
// answered from the cache.
func (d *DownTrack) readRTCP(s *webrtc.RTPSender) {
	defer close(d.done)
	buf := make([]byte, maxPacketSize)
	for {
		n, _, err := s.Read(buf)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrClosedPipe) {
				d.log.Debug("read rtcp", "err", err)
			}
			return
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		now := time.Now()
		for _, pkt := range pkts {
			d.feedback(pkt, now)
		}
	}
}

// feedback handles one packet of the subscriber's feedback: keyframe
// requests go upstream (throttled), NACKs are answered from the cache,
// transport feedback goes to the bandwidth estimate. From readRTCP, or
// from the shared socket's reader (direct_rtcp.go).
func (d *DownTrack) feedback(pkt rtcp.Packet, now time.Time) {
	switch p := pkt.(type) {
	case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
		d.plis.Add(1)
		metricPLIsReceived.Inc()
		d.mu.Lock()
		l := d.current
		if l == noLayer {
			l = d.target
		}
		d.mu.Unlock()
		if l >= 0 {
			d.recv.requestKeyframe(l)
		}
	case *rtcp.TransportLayerCC, *rtcp.ReceiverEstimatedMaximumBitrate:
		if d.alloc != nil {
			pathFeedback(d.alloc.path, pkt, now)
		}
	case *rtcp.ReceiverReport:
		d.noteReport(p)
	case *rtcp.TransportLayerNack:
		for _, pair := range p.Nacks {
			for _, seq := range pair.PacketList() {
				d.nacks.Add(1)
				metricNACKsReceived.Inc()
				if d.retransmit(seq, now) {
					d.resent.Add(1)
					metricNACKsAnswered.Inc()
				}
			}
		}
	}
}

// pathFeedback hands the subscriber's feedback about its whole path, TWCC
// reports and REMB, to its estimator (other packets are not the path's).
func pathFeedback(path pathEstimator, pkt rtcp.Packet, now time.Time) {
	switch p := pkt.(type) {
	case *rtcp.TransportLayerCC:
		path.transportFeedback(p, now)
	case *rtcp.ReceiverEstimatedMaximumBitrate:
		path.receiverEstimate(int64(p.Bitrate))
	}
}
