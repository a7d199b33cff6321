package sfu

import (
	"fmt"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/wait"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// Through real PeerConnections: every packet a subscriber receives carries
// the next transport-wide number, the subscriber's TWCC feedback reaches
// the estimator (the path now measures loss and queue from it), and sender
// reports arrive for the track about once a second.
func TestRealSubscriberNumbersFeedbackAndReports(t *testing.T) {
	checkLeaks(t)
	e := newTestEngine(t)
	_, recvs := publishN(t, e, 1)
	sub := newClient(t, e, clientOpts{})
	d, err := subscribe(sub, recvs[0])
	if err != nil {
		t.Fatal(err)
	}
	wait.Recv(t, sub.answered, patience, "the server offer")
	tr := sub.nextTrack()
	d.mu.Lock()
	id := d.out.twccID
	d.mu.Unlock()
	if id == 0 {
		t.Fatal("transport-wide numbers not negotiated")
	}
	var rcv *webrtc.RTPReceiver
	for _, r := range sub.pc.GetReceivers() {
		if r.Track() == tr {
			rcv = r
		}
	}
	reports := make(chan rtcp.SenderReport, 16)
	go func() {
		for {
			pkts, _, err := rcv.ReadRTCP()
			if err != nil {
				return
			}
			for _, p := range pkts {
				if sr, ok := p.(*rtcp.SenderReport); ok && sr.SSRC == uint32(tr.SSRC()) {
					select {
					case reports <- *sr:
					default:
					}
				}
			}
		}
	}()

	rec := twcc.NewRecorder(1)
	var prev uint16
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	for i := range 60 {
		_ = tr.SetReadDeadline(time.Now().Add(patience))
		n, _, err := tr.Read(buf)
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if err := pkt.Unmarshal(buf[:n]); err != nil {
			t.Fatal(err)
		}
		ext := pkt.GetExtension(id)
		if len(ext) != 2 {
			t.Fatalf("packet %d carries no transport-wide number", i)
		}
		seq := uint16(ext[0])<<8 | uint16(ext[1])
		if i > 0 && seq != prev+1 {
			t.Fatalf("transport-wide number %d after %d", seq, prev)
		}
		prev = seq
		rec.Record(uint32(tr.SSRC()), seq, time.Now().UnixMicro())
	}
	fb := rec.BuildFeedbackPacket()
	if err := sub.pc.WriteRTCP(fb); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, patience, "the feedback measured by the server", func() (bool, string) {
		return d.peer.send.twcc.Load(), fmt.Sprintf("%d packets stamped", d.peer.send.hist.Sent())
	})
	s := d.peer.send.signals(time.Now())
	if !s.HaveLoss || s.Loss != 0 || !s.Feedback {
		t.Fatalf("signals after clean feedback %+v", s)
	}

	// The first report after the 60 packets read counts them all.
	var sr rtcp.SenderReport
	for sr.PacketCount < 60 {
		sr = wait.Recv(t, reports, 3*reportEvery, "a sender report")
	}
	if sr.OctetCount < 60*100 {
		t.Fatalf("sender report %+v: too few octets", sr)
	}
	// The report's RTP time is on the subscriber's timeline: within two
	// seconds of the newest timestamp received.
	if diff := int32(sr.RTPTime - pkt.Timestamp); diff < -180_000 || diff > 180_000 {
		t.Fatalf("report RTP time %d, newest packet's %d", sr.RTPTime, pkt.Timestamp)
	}
}
