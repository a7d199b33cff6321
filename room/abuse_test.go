package room_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/wait"
	"github.com/confab-sfu/confab/room"
	"github.com/confab-sfu/confab/signal"
	"nhooyr.io/websocket"
)

// victims is a meeting that must not notice the abuse around it: ada
// publishes audio and video, bob receives them.
type victims struct {
	ada, bob *testPeer
	srcs     []*source
}

func startVictims(t *testing.T, ctx context.Context, url string) *victims {
	t.Helper()
	v := &victims{ada: join(t, ctx, url, "victims", "ada"), bob: join(t, ctx, url, "victims", "bob")}
	v.srcs = publish(t, ctx, v.ada, "ada", "audio", "video")
	wait.Until(t, 15*time.Second, "the victims' media flows", func() (bool, string) {
		return checkTracks(v.bob, 20, map[string][]*source{v.ada.ID(): v.srcs})
	})
	return v
}

// settledGoroutines waits until the number of goroutines holds still for
// ten polls in a row (the victims' peers have started what they run) and
// returns it.
func settledGoroutines(t *testing.T) int {
	t.Helper()
	last, same := -1, 0
	wait.Until(t, 10*time.Second, "the goroutines to settle", func() (bool, string) {
		n := runtime.NumGoroutine()
		if n == last {
			same++
		} else {
			last, same = n, 0
		}
		return same >= 10, fmt.Sprintf("%d goroutines", n)
	})
	return last
}

// received is how many packets of ada bob has.
func (v *victims) received() int {
	n := 0
	for _, rc := range v.bob.rec.snapshot() {
		n += len(rc.payloads)
	}
	return n
}

// stillFlowing checks that bob keeps receiving ada, intact.
func (v *victims) stillFlowing(t *testing.T, since int, what string) {
	t.Helper()
	wait.Until(t, 10*time.Second, "media still flows after "+what, func() (bool, string) {
		if ok, why := checkTracks(v.bob, 20, map[string][]*source{v.ada.ID(): v.srcs}); !ok {
			return false, why
		}
		got := v.received() - since
		return got >= 50, fmt.Sprintf("%d packets since", got)
	})
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// TestAbuseLeavesTheRoomAlone: random datagrams at the media port, garbage
// and floods on WebSockets, and 200 join/leave cycles. Every abusive
// connection gets a clear error or close code, the victims' media keeps
// arriving throughout, and goroutines and memory return to where they were.
func TestAbuseLeavesTheRoomAlone(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cfg := room.Config{} // no per-address limit
	cfg.SFU.UDPPort = freeUDPPort(t)
	cfg.Conn.MessageRate, cfg.Conn.MessageBurst = 50, 100
	mgr, url := startServer(t, cfg)
	v := startVictims(t, ctx, url)
	baseGoroutines := settledGoroutines(t)
	baseHeap := heapInUse()
	rng := rand.New(rand.NewSource(7))

	t.Run("random datagrams at the media port", func(t *testing.T) {
		before := v.received()
		dst := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: cfg.SFU.UDPPort}
		buf := make([]byte, 1500)
		sent := 0
		// ~50k packets/s: an attack, not a socket buffer overflow test.
		pace := time.NewTicker(10 * time.Millisecond)
		defer pace.Stop()
		for s := 0; s < 4; s++ {
			c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 5000; i++ {
				n := 1 + rng.Intn(len(buf))
				rng.Read(buf[:n])
				switch i % 4 { // look like each protocol the port demultiplexes
				case 0:
					buf[0] = 0x00 // STUN
					if n >= 20 {
						copy(buf[4:8], []byte{0x21, 0x12, 0xa4, 0x42}) // magic cookie
					}
				case 1:
					buf[0] = 22 // DTLS handshake
				case 2:
					buf[0] = 0x80 // RTP/RTCP
				}
				if _, err := c.WriteTo(buf[:n], dst); err == nil {
					sent++
				}
				if i%500 == 0 {
					<-pace.C
				}
			}
			c.Close()
		}
		t.Logf("%d random datagrams sent to the media port", sent)
		v.stillFlowing(t, before, "random datagrams")
	})

	t.Run("garbage on WebSockets", func(t *testing.T) {
		before := v.received()
		for i := 0; i < 50; i++ {
			ws, _, err := websocket.Dial(ctx, strings.Replace(url, "http", "ws", 1)+"/ws", nil)
			if err != nil {
				t.Fatal(err)
			}
			n := 1 + rng.Intn(2000)
			b := make([]byte, n)
			rng.Read(b)
			typ := websocket.MessageText
			want := websocket.StatusInvalidFramePayloadData // 1007: not UTF-8 / not JSON
			if i%2 == 1 {
				typ, want = websocket.MessageBinary, websocket.StatusUnsupportedData // 1003
			}
			_ = ws.Write(ctx, typ, b)
			var got websocket.StatusCode = -1
			for {
				_, _, err := ws.Read(ctx)
				if err != nil {
					got = websocket.CloseStatus(err)
					break
				}
			}
			if got != want {
				t.Fatalf("garbage frame %d (%v): closed with %d, want %d", i, typ, got, want)
			}
			ws.Close(websocket.StatusNormalClosure, "")
		}
		// Well-formed JSON that is not a message: an error, the connection stays.
		c, err := signal.Dial(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Request(ctx, &signal.Message{Type: "launch_missiles"})
		var serr *signal.Error
		if !errors.As(err, &serr) || serr.Code != signal.CodeUnknownType {
			t.Fatalf("unknown type: %v", err)
		}
		_ = c.Close()
		v.stillFlowing(t, before, "garbage frames")
	})

	t.Run("1000 messages per second from one connection", func(t *testing.T) {
		before := v.received()
		c, err := signal.Dial(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Join(ctx, "victims", "flooder", ""); err != nil {
			t.Fatal(err)
		}
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		sent := 0
		for sent < 2000 {
			<-tick.C
			if c.Send(&signal.Message{Type: signal.TypeChat, ID: fmt.Sprint(sent), Text: "spam"}) != nil {
				break
			}
			sent++
		}
		limited := false
		for m := range c.Messages() {
			if m.Type == signal.TypeError && m.Code == signal.CodeRateLimited {
				limited = true
			}
		}
		if !limited || c.CloseStatus() != websocket.StatusPolicyViolation {
			t.Fatalf("flooder: rate_limited seen %v, close %d; want rate_limited then 1008", limited, c.CloseStatus())
		}
		// The victims saw a bounded amount of chat, not 2000 messages.
		t.Logf("flooder sent %d messages before the close", sent)
		v.stillFlowing(t, before, "a message flood")
	})

	t.Run("200 join and leave cycles", func(t *testing.T) {
		before := v.received()
		for i := 0; i < 200; i++ {
			c, err := signal.Dial(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Join(ctx, "victims", fmt.Sprintf("visitor %d", i), ""); err != nil {
				t.Fatalf("cycle %d: %v", i, err)
			}
			if i%2 == 0 {
				_ = c.Send(&signal.Message{Type: signal.TypeLeave})
			}
			_ = c.Close()
		}
		// A few with real PeerConnections that receive media, then vanish.
		for i := 0; i < 5; i++ {
			p := join(t, ctx, url, "victims", fmt.Sprintf("peer visitor %d", i))
			wait.Until(t, 15*time.Second, "visitor receives", func() (bool, string) {
				return checkTracks(p, 5, map[string][]*source{v.ada.ID(): v.srcs})
			})
			_ = p.Leave()
		}
		wait.Until(t, 15*time.Second, "only the victims remain", func() (bool, string) {
			n := len(mgr.Room("victims").Participants())
			return n == 2, fmt.Sprintf("%d participants", n)
		})
		v.stillFlowing(t, before, "join/leave churn")
	})

	wait.Until(t, 20*time.Second, "goroutines back to the baseline", func() (bool, string) {
		n := runtime.NumGoroutine()
		return n <= baseGoroutines+5, fmt.Sprintf("%d goroutines, baseline %d", n, baseGoroutines)
	})
	heap := heapInUse()
	t.Logf("goroutines %d (baseline %d), heap in use %.1f MiB (baseline %.1f MiB)",
		runtime.NumGoroutine(), baseGoroutines, float64(heap)/(1<<20), float64(baseHeap)/(1<<20))
	if heap > baseHeap+32<<20 {
		t.Errorf("heap grew from %.1f to %.1f MiB after the abuse", float64(baseHeap)/(1<<20), float64(heap)/(1<<20))
	}
}
