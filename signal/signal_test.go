package signal

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"nhooyr.io/websocket"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestValidate(t *testing.T) {
	yes := true
	cases := []struct {
		name string
		m    Message
		code string // "" valid
	}{
		{"join ok", Message{Type: TypeJoin, Room: "r", Name: " Ada ", Version: 1}, ""},
		{"join no room", Message{Type: TypeJoin, Name: "Ada", Version: 1}, CodeInvalidField},
		{"join no name", Message{Type: TypeJoin, Room: "r", Name: "   ", Version: 1}, CodeInvalidField},
		{"join long name", Message{Type: TypeJoin, Room: "r", Name: strings.Repeat("é", 65), Version: 1}, CodeInvalidField},
		{"join control char", Message{Type: TypeJoin, Room: "r", Name: "a\x07b", Version: 1}, CodeInvalidField},
		{"join version", Message{Type: TypeJoin, Room: "r", Name: "a", Version: 2}, CodeUnsupportedVersion},
		{"offer ok", Message{Type: TypeOffer, SDP: "v=0"}, ""},
		{"offer empty", Message{Type: TypeOffer}, CodeInvalidField},
		{"answer huge", Message{Type: TypeAnswer, SDP: strings.Repeat("a", MaxSDPBytes+1)}, CodeInvalidField},
		{"candidate missing", Message{Type: TypeCandidate}, CodeInvalidField},
		{"candidate ok", Message{Type: TypeCandidate, Candidate: &Candidate{Candidate: "x"}}, ""},
		{"subscribe none", Message{Type: TypeSubscribe}, CodeInvalidField},
		{"subscribe bad layer", Message{Type: TypeSubscribe, Subscriptions: []Subscription{{TrackID: "t", MaxLayer: "ultra"}}}, CodeInvalidField},
		{"subscribe negative", Message{Type: TypeSubscribe, Subscriptions: []Subscription{{TrackID: "t", MaxWidth: -1}}}, CodeInvalidField},
		{"subscribe no track", Message{Type: TypeSubscribe, Subscriptions: []Subscription{{MaxLayer: "low"}}}, CodeInvalidField},
		{"subscribe ok", Message{Type: TypeSubscribe, Subscriptions: []Subscription{{TrackID: "t", MaxLayer: "low", Paused: true}}}, ""},
		{"chat empty", Message{Type: TypeChat}, CodeInvalidField},
		{"chat long", Message{Type: TypeChat, Text: strings.Repeat("x", MaxChatRunes+1)}, CodeInvalidField},
		{"chat ok", Message{Type: TypeChat, Text: "hi"}, ""},
		{"mute missing", Message{Type: TypeMute, TrackID: "t"}, CodeInvalidField},
		{"mute ok", Message{Type: TypeMute, TrackID: "t", Muted: &yes}, ""},
		{"leave", Message{Type: TypeLeave}, ""},
		{"end of candidates", Message{Type: TypeEndOfCandidates}, ""},
		{"no type", Message{}, CodeInvalidField},
		{"server-only type", Message{Type: TypeWelcome}, CodeUnknownType},
		{"unknown", Message{Type: "teleport"}, CodeUnknownType},
	}
	for _, c := range cases {
		err := c.m.Validate()
		switch {
		case c.code == "" && err != nil:
			t.Errorf("%s: unexpected %v", c.name, err)
		case c.code != "" && (err == nil || err.Code != c.code):
			t.Errorf("%s: got %v, want %s", c.name, err, c.code)
		}
	}
}

func TestDecode(t *testing.T) {
	for _, bad := range []string{"", "[]", "null", "42", `"x"`, `{"type":1}`, `{"type":"join","version":"1"}`, `{"type":"join"`} {
		if _, err := Decode([]byte(bad)); err == nil || err.Code != CodeBadMessage {
			t.Errorf("%q: got %v", bad, err)
		}
	}
	m, err := Decode([]byte(` {"type":"join","room":"r","future":{"x":1}} `))
	if err != nil || m.Type != TypeJoin || m.Room != "r" {
		t.Fatalf("unknown fields must be ignored: %+v %v", m, err)
	}
}

// echoServer answers every request with ok (or welcome for join) and sends
// an event before each response, to check ordering and matching.
func echoServer(t *testing.T, opts ConnOptions, serve func(*Conn)) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, opts)
		if err != nil {
			return
		}
		serve(c)
		c.Close(websocket.StatusNormalClosure, "")
		<-c.Done()
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestClientRequestsAndEventsInOrder(t *testing.T) {
	srv := echoServer(t, ConnOptions{}, func(c *Conn) {
		n := 0
		for {
			m, err := c.Read(context.Background())
			if err != nil {
				return
			}
			n++
			_ = c.Send(&Message{Type: TypeChat, Text: m.Type + "-event"})
			resp := &Message{Type: TypeOK, ID: m.ID}
			if m.Type == TypeJoin {
				resp = &Message{Type: TypeWelcome, ID: m.ID, Participant: &Participant{ID: "P1", Name: m.Name}}
			}
			if m.Type == TypeMute {
				resp = &Message{Type: TypeError, ID: m.ID, Code: CodeUnknownTrack, Message: "no"}
			}
			_ = c.Send(resp)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w, err := c.Join(ctx, "r", "Ada", "")
	if err != nil || w.Participant.ID != "P1" {
		t.Fatalf("join: %+v %v", w, err)
	}
	yes := true
	if _, err := c.Request(ctx, &Message{Type: TypeMute, TrackID: "t", Muted: &yes}); err == nil {
		t.Fatal("error response not returned as error")
	} else if e := AsError(err); e.Code != CodeUnknownTrack {
		t.Fatalf("error code %v", e)
	}
	for i := 0; i < 20; i++ {
		if _, err := c.Request(ctx, &Message{Type: TypeChat, Text: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"join-event", "mute-event"}
	for i := 0; i < 20; i++ {
		want = append(want, "chat-event")
	}
	for i, w := range want {
		select {
		case m := <-c.Messages():
			if m.Text != w {
				t.Fatalf("event %d: %q want %q", i, m.Text, w)
			}
		case <-ctx.Done():
			t.Fatal("events missing")
		}
	}
}

func TestSlowConsumerIsDisconnectedWithoutBlocking(t *testing.T) {
	result := make(chan error, 1)
	srv := echoServer(t, ConnOptions{QueueSize: 16}, func(c *Conn) {
		big := &Message{Type: TypeChat, Text: strings.Repeat("x", 4000)}
		for i := 0; i < 100000; i++ {
			if err := c.Send(big); err != nil {
				result <- err
				return
			}
		}
		result <- nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A raw client that never reads.
	ws, _, err := websocket.Dial(ctx, strings.Replace(srv.URL, "http", "ws", 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	select {
	case err := <-result:
		if err != ErrSlowConsumer && err != ErrClosed {
			t.Fatalf("Send to a stuck client: %v, want ErrSlowConsumer", err)
		}
	case <-ctx.Done():
		t.Fatal("Send blocked on a client that does not read")
	}
}

func TestDeadClientIsClosedByKeepalive(t *testing.T) {
	closed := make(chan struct{})
	srv := echoServer(t, ConnOptions{PingInterval: 50 * time.Millisecond, PongTimeout: 100 * time.Millisecond}, func(c *Conn) {
		_, _ = c.Read(context.Background())
		close(closed)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, strings.Replace(srv.URL, "http", "ws", 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	// The client never reads, so it never answers pings.
	select {
	case <-closed:
	case <-ctx.Done():
		t.Fatal("a client that does not answer pings was not disconnected")
	}
}

func TestWsURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:8080":      "ws://127.0.0.1:8080/ws",
		"https://example.org/":       "wss://example.org/ws",
		"ws://127.0.0.1:1/custom/ws": "ws://127.0.0.1:1/custom/ws",
	} {
		if got, err := wsURL(in); err != nil || got != want {
			t.Errorf("%s: %s %v", in, got, err)
		}
	}
	if _, err := wsURL("ftp://x"); err == nil {
		t.Error("ftp accepted")
	}
}

func TestFloodIsRateLimitedThenClosed(t *testing.T) {
	var served atomic.Int64
	srv := echoServer(t, ConnOptions{MessageRate: 20, MessageBurst: 10}, func(c *Conn) {
		for {
			if _, err := c.Read(context.Background()); err != nil {
				return
			}
			served.Add(1)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// 1,000 messages as fast as possible.
	for i := 0; i < 1000; i++ {
		if err := c.Send(&Message{Type: TypeChat, Text: "spam"}); err != nil {
			break
		}
	}
	sawLimit := false
	for m := range c.Messages() {
		if m.Type == TypeError && m.Code == CodeRateLimited {
			sawLimit = true
		}
	}
	if !sawLimit {
		t.Error("no rate_limited error before the close")
	}
	if got := c.CloseStatus(); got != websocket.StatusPolicyViolation {
		t.Errorf("close status %d, want 1008", got)
	}
	if n := served.Load(); n > 40 {
		t.Errorf("%d messages got through a limit of 20/s with bursts of 10", n)
	}
}

func TestPoliteClientIsNotLimited(t *testing.T) {
	var served atomic.Int64
	srv := echoServer(t, ConnOptions{MessageRate: 50, MessageBurst: 20}, func(c *Conn) {
		for {
			m, err := c.Read(context.Background())
			if err != nil {
				return
			}
			served.Add(1)
			_ = c.Send(&Message{Type: TypeOK, ID: m.ID})
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < 30; i++ {
		if _, err := c.Request(ctx, &Message{Type: TypeChat, Text: "hi"}); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}
