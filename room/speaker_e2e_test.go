package room_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/wait"
	"github.com/confab-sfu/confab/room"
	"github.com/confab-sfu/confab/signal"
	"github.com/confab-sfu/confab/signal/client"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// talker publishes Opus-shaped packets carrying an audio level it can change.
type talker struct {
	level      atomic.Int32 // dBov: 0 loud .. 127 silent
	burstLevel atomic.Int32 // the level of the next burstLeft packets
	burstLeft  atomic.Int32
}

// burst sends n packets at level, then goes back to the talker's level, and
// returns once they are sent.
func (tk *talker) burst(t *testing.T, level, n int32) {
	t.Helper()
	tk.burstLevel.Store(level)
	tk.burstLeft.Store(n)
	wait.For(t, 5*time.Second, "the burst sent", func() bool { return tk.burstLeft.Load() <= 0 })
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
			level := tk.level.Load()
			if tk.burstLeft.Add(-1) >= 0 {
				level = tk.burstLevel.Load()
			}
			_ = pkt.SetExtension(id, []byte{byte(level)})
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
	c := join(t, ctx, url, "talk", "cy")
	var ta, tb, tc talker
	ta.publish(t, ctx, a, "ada")
	tb.publish(t, ctx, b, "bob")
	tc.publish(t, ctx, c, "cy")

	// speakers lists the active speakers announced to p, in order.
	speakers := func(p *testPeer) []string {
		p.mu.Lock()
		defer p.mu.Unlock()
		var out []string
		for _, m := range p.events {
			if m.Type == signal.TypeActiveSpeaker {
				out = append(out, m.Speaker)
			}
		}
		return out
	}
	current := func(p *testPeer) string {
		if s := speakers(p); len(s) > 0 {
			return s[len(s)-1]
		}
		return ""
	}
	ta.level.Store(20) // ada talks
	wait.Until(t, 5*time.Second, "ada is the speaker", func() (bool, string) {
		return current(b) == a.ID() && current(a) == a.ID(), "speaker " + current(b)
	})
	// A cough from bob (150 ms, less than an interval) does not move the
	// highlight: when cy then speaks up, the highlight goes from ada to cy
	// without bob in between.
	tb.burst(t, 5, 7)
	tc.level.Store(10)
	wait.Until(t, 5*time.Second, "cy is the speaker", func() (bool, string) {
		return current(a) == c.ID(), "speaker " + current(a)
	})
	if got := speakers(a); len(got) != 2 {
		t.Fatalf("speakers announced %v, want ada then cy: a short noise moved the highlight", got)
	}
	ta.level.Store(127)
	tc.level.Store(127)
	tb.level.Store(20) // bob takes over
	wait.Until(t, 5*time.Second, "bob is the speaker", func() (bool, string) {
		return current(a) == b.ID(), "speaker " + current(a)
	})
	if r := mgr.Room("talk"); r == nil || string(r.Speaker()) != b.ID() {
		t.Fatal("room's speaker state disagrees")
	}
}
