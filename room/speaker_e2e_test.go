package room_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confab-sfu/confab/room"
	"github.com/confab-sfu/confab/signal"
	"github.com/confab-sfu/confab/signal/client"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// talker publishes Opus-shaped packets carrying an audio level it can change.
type talker struct {
	level atomic.Int32 // dBov: 0 loud .. 127 silent
}

func (tk *talker) publish(t *testing.T, ctx context.Context, p *testPeer, name string) {
	t.Helper()
	tk.level.Store(127)
	tr, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, name+"-mic", name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.Publish(ctx, signal.SourceMicrophone, tr)
	if err != nil {
		t.Fatal(err)
	}
	id := client.AudioLevelID(s)
	if id == 0 {
		t.Fatal("audio level extension not negotiated")
	}
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-p.Done():
				return
			case <-tick.C:
			}
			pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(i), Timestamp: uint32(i * 960)}, Payload: make([]byte, 40)}
			_ = pkt.SetExtension(id, []byte{byte(tk.level.Load())})
			_ = tr.WriteRTP(pkt)
		}
	}()
}

func TestActiveSpeakerFollowsTheLoudest(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mgr, url := startServer(t, room.Config{})
	a := join(t, ctx, url, "talk", "ada")
	b := join(t, ctx, url, "talk", "bob")
	var ta, tb talker
	ta.publish(t, ctx, a, "ada")
	tb.publish(t, ctx, b, "bob")

	speaker := func(p *testPeer) string {
		p.mu.Lock()
		defer p.mu.Unlock()
		for i := len(p.events) - 1; i >= 0; i-- {
			if p.events[i].Type == signal.TypeActiveSpeaker {
				return p.events[i].Speaker
			}
		}
		return ""
	}
	ta.level.Store(20) // ada talks
	eventually(t, 5*time.Second, "ada is the speaker", func() (bool, string) {
		return speaker(b) == a.ID() && speaker(a) == a.ID(), "speaker " + speaker(b)
	})
	// A cough from bob (one interval) does not move the highlight.
	tb.level.Store(5)
	time.Sleep(150 * time.Millisecond)
	tb.level.Store(127)
	time.Sleep(time.Second)
	if s := speaker(b); s != a.ID() {
		t.Fatalf("a short noise moved the speaker to %s", s)
	}
	ta.level.Store(127)
	tb.level.Store(20) // bob takes over
	eventually(t, 5*time.Second, "bob is the speaker", func() (bool, string) {
		return speaker(a) == b.ID(), "speaker " + speaker(a)
	})
	if r := mgr.Room("talk"); r == nil || string(r.Speaker()) != b.ID() {
		t.Fatal("room's speaker state disagrees")
	}
}
