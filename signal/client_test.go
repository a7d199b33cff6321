package signal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"nhooyr.io/websocket"
)

// okServer answers every request: welcome for join, an error for mute,
// ok for the rest, each preceded by an event naming the request, so that
// tests see responses and events interleaved.
func okServer(t *testing.T) *httptest.Server {
	return serve(t, ConnOptions{}, func(c *Conn) {
		for {
			m, err := c.Read(context.Background())
			if err != nil {
				return
			}
			_ = c.Send(&Message{Type: TypeChat, Text: m.Type + "-event"})
			resp := &Message{Type: TypeOK, ID: m.ID}
			switch m.Type {
			case TypeJoin:
				resp = &Message{Type: TypeWelcome, ID: m.ID, Room: m.Room, Participant: &Participant{ID: "P1", Name: m.Name}}
			case TypeMute:
				resp = &Message{Type: TypeError, ID: m.ID, Code: CodeUnknownTrack, Message: "no such track"}
			}
			_ = c.Send(resp)
		}
	})
}

func TestClientRequestsAndEventsInOrder(t *testing.T) {
	ctx := testCtx(t)
	c := dial(t, ctx, okServer(t))
	w, err := c.Join(ctx, "standup", "  Ada ", "")
	if err != nil || w.Type != TypeWelcome || w.Participant.Name != "Ada" || w.Room != "standup" {
		t.Fatalf("join: %+v %v", w, err)
	}
	yes := true
	resp, err := c.Request(ctx, &Message{Type: TypeMute, TrackID: "t", Muted: &yes})
	if e := AsError(err); e == nil || e.Code != CodeUnknownTrack || e.Message != "no such track" {
		t.Fatalf("error response: %v, want unknown_track", err)
	}
	if resp == nil || resp.Type != TypeError {
		t.Fatalf("error response message: %+v", resp)
	}
	ids := map[string]bool{w.ID: true, resp.ID: true}
	for range 20 {
		m := &Message{Type: TypeChat, Text: "x"}
		r, err := c.Request(ctx, m)
		if err != nil || r.Type != TypeOK || r.ID != m.ID {
			t.Fatalf("chat: %+v %v", r, err)
		}
		if ids[m.ID] {
			t.Fatalf("id %q used twice", m.ID)
		}
		ids[m.ID] = true
	}
	if err := c.Send(&Message{Type: TypeLeave}); err != nil {
		t.Fatal(err)
	}
	want := []string{"join-event", "mute-event"}
	for range 20 {
		want = append(want, "chat-event")
	}
	want = append(want, "leave-event", "") // the ok for leave has no id, so it is an event too
	for i, w := range want {
		select {
		case m := <-c.Messages():
			if m.Text != w {
				t.Fatalf("event %d: %+v, want text %q", i, m, w)
			}
		case <-ctx.Done():
			t.Fatalf("event %d (%q) missing", i, w)
		}
	}
}

// TestConcurrentRequestsOutOfOrder: responses come back in reverse order,
// between events; each Request gets its own, and events keep their order.
func TestConcurrentRequestsOutOfOrder(t *testing.T) {
	const n = 40
	srv := serve(t, ConnOptions{}, func(c *Conn) {
		var reqs []*Message
		for len(reqs) < n {
			m, err := c.Read(context.Background())
			if err != nil {
				return
			}
			reqs = append(reqs, m)
		}
		for i := n - 1; i >= 0; i-- {
			_ = c.Send(&Message{Type: TypeChat, Text: strconv.Itoa(n - 1 - i)})
			_ = c.Send(&Message{Type: TypeOK, ID: reqs[i].ID, Text: reqs[i].Text})
		}
		// Responses are matched by id only for response types: an event
		// that happens to carry a request's id is still an event.
		_ = c.Send(&Message{Type: TypeChat, ID: reqs[0].ID, Text: "last"})
		_, _ = c.Read(context.Background())
	})
	ctx := testCtx(t)
	c := dial(t, ctx, srv)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			text := fmt.Sprint("request ", i)
			r, err := c.Request(ctx, &Message{Type: TypeChat, Text: text})
			if err == nil && r.Text != text {
				err = fmt.Errorf("request %q got the response to %q", text, r.Text)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	for i := range n + 1 {
		want := strconv.Itoa(i)
		if i == n {
			want = "last"
		}
		select {
		case m := <-c.Messages():
			if m.Text != want {
				t.Fatalf("event %d: %q, want %q", i, m.Text, want)
			}
		case <-ctx.Done():
			t.Fatalf("event %d missing", i)
		}
	}
}

// TestMessagesQueueIsUnbounded: a consumer that does not drain Messages
// never stalls reading, so requests still complete.
func TestMessagesQueueIsUnbounded(t *testing.T) {
	const n = 5000
	srv := serve(t, ConnOptions{QueueSize: n + 10}, func(c *Conn) {
		m, err := c.Read(context.Background())
		if err != nil {
			return
		}
		for i := range n {
			_ = c.Send(&Message{Type: TypeActiveSpeaker, Speaker: strconv.Itoa(i)})
		}
		_ = c.Send(&Message{Type: TypeOK, ID: m.ID})
		_, _ = c.Read(context.Background())
	})
	ctx := testCtx(t)
	c := dial(t, ctx, srv)
	if _, err := c.Request(ctx, &Message{Type: TypeChat, Text: "go"}); err != nil {
		t.Fatalf("request behind %d undrained events: %v", n, err)
	}
	for i := range n {
		select {
		case m := <-c.Messages():
			if m.Speaker != strconv.Itoa(i) {
				t.Fatalf("event %d: %+v", i, m)
			}
		case <-ctx.Done():
			t.Fatalf("event %d missing", i)
		}
	}
}

func TestAbandonedRequest(t *testing.T) {
	release := make(chan struct{})
	srv := serve(t, ConnOptions{}, func(c *Conn) {
		m, err := c.Read(context.Background())
		if err != nil {
			return
		}
		<-release
		_ = c.Send(&Message{Type: TypeOK, ID: m.ID})
		_ = c.Send(&Message{Type: TypeChat, Text: "after"})
		_, _ = c.Read(context.Background())
	})
	ctx := testCtx(t)
	c := dial(t, ctx, srv)
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := c.Request(short, &Message{Type: TypeChat, Text: "slow"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Request past its context: %v, want DeadlineExceeded", err)
	}
	close(release)
	select {
	case m := <-c.Messages():
		if m.Text != "after" {
			t.Fatalf("first event %+v: the late response must be dropped", m)
		}
	case <-ctx.Done():
		t.Fatal("event missing")
	}
	select {
	case <-c.Done():
		t.Fatal("the connection ended with the request's context")
	default:
	}
}

func TestConnectionEnd(t *testing.T) {
	srv := serve(t, ConnOptions{}, func(c *Conn) {
		if _, err := c.Read(context.Background()); err != nil {
			return
		}
		_ = c.Send(&Message{Type: TypeError, Code: CodeShuttingDown, Message: "no id: an event"})
		_ = c.Send(&Message{Type: TypeBye, Code: CodeShuttingDown})
		c.Close(websocket.StatusGoingAway, "shutdown")
	})
	ctx := testCtx(t)
	c := dial(t, ctx, srv)
	if st := c.CloseStatus(); st != -1 {
		t.Errorf("close status before any close: %d, want -1", st)
	}
	_, err := c.Request(ctx, &Message{Type: TypeChat, Text: "hi"})
	if !errors.Is(err, ErrClosed) {
		t.Errorf("request pending when the server closed: %v, want ErrClosed", err)
	}
	var got []string
	for m := range c.Messages() {
		got = append(got, m.Type)
	}
	if fmt.Sprint(got) != "[error bye]" {
		t.Errorf("events %v, want [error bye]", got)
	}
	<-c.Done()
	if st := c.CloseStatus(); st != websocket.StatusGoingAway {
		t.Errorf("close status %d, want 1001", st)
	}
	if _, err := c.Request(ctx, &Message{Type: TypeChat, Text: "hi"}); !errors.Is(err, ErrClosed) {
		t.Errorf("request after the end: %v, want ErrClosed", err)
	}
	if err := c.Send(&Message{Type: TypeLeave}); !errors.Is(err, ErrClosed) {
		t.Errorf("send after the end: %v, want ErrClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close after the server closed: %v", err)
	}
}

func TestClientCloseWithUndrainedMessages(t *testing.T) {
	srv := serve(t, ConnOptions{}, func(c *Conn) {
		for range 100 {
			_ = c.Send(&Message{Type: TypeChat, Text: "unread"})
		}
		_, _ = c.Read(context.Background())
	})
	ctx := testCtx(t)
	c := dial(t, ctx, srv)
	<-c.Messages() // at least one arrived; 99 may still be queued
	if err := c.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	for range c.Messages() {
	}
	<-c.Done()
}

func TestDialURLs(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) { serveOK(w, r, ConnOptions{}) })
	mux.HandleFunc("/custom/signal", func(w http.ResponseWriter, r *http.Request) { serveOK(w, r, ConnOptions{}) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx := testCtx(t)
	ws := "ws" + srv.URL[len("http"):]
	for _, u := range []string{srv.URL, srv.URL + "/", ws + "/ws", ws + "/custom/signal", srv.URL + "/custom/signal"} {
		c, err := Dial(ctx, u)
		if err != nil {
			t.Errorf("dial %s: %v", u, err)
			continue
		}
		if _, err := c.Request(ctx, &Message{Type: TypeChat, Text: "hi"}); err != nil {
			t.Errorf("%s: %v", u, err)
		}
		_ = c.Close()
	}
	if _, err := Dial(ctx, srv.URL+"/nothing-here"); err == nil {
		t.Error("dial of a path without a WebSocket succeeded")
	}
}

func TestWsURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:8080":      "ws://127.0.0.1:8080/ws",
		"https://example.org/":       "wss://example.org/ws",
		"http://127.0.0.1:8080/ws":   "ws://127.0.0.1:8080/ws",
		"ws://127.0.0.1:1/custom/ws": "ws://127.0.0.1:1/custom/ws",
		"wss://example.org":          "wss://example.org/ws",
	} {
		if got, err := wsURL(in); err != nil || got != want {
			t.Errorf("%s: %s %v, want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"ftp://x", "127.0.0.1:8080", "://"} {
		if _, err := wsURL(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// serveOK is a handler that answers every request with ok.
func serveOK(w http.ResponseWriter, r *http.Request, opts ConnOptions) {
	c, err := Accept(w, r, opts)
	if err != nil {
		return
	}
	defer func() { <-c.Done() }()
	for {
		m, err := c.Read(context.Background())
		if err != nil {
			return
		}
		_ = c.Send(&Message{Type: TypeOK, ID: m.ID})
	}
}

func TestOriginAndHeaders(t *testing.T) {
	ctx := testCtx(t)
	origin := func(o string) DialOption { return WithHeader(http.Header{"Origin": {o}}) }
	strict := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serveOK(w, r, ConnOptions{OriginPatterns: []string{"meet.example.org"}})
	}))
	defer strict.Close()
	if _, err := Dial(ctx, strict.URL, origin("https://evil.example.com")); err == nil {
		t.Error("a foreign Origin was accepted")
	}
	c, err := Dial(ctx, strict.URL, origin("https://meet.example.org"))
	if err != nil {
		t.Fatalf("an allowed Origin was refused: %v", err)
	}
	_ = c.Close()

	open := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serveOK(w, r, ConnOptions{InsecureSkipVerify: true})
	}))
	defer open.Close()
	c, err = Dial(ctx, open.URL, origin("https://anywhere.example.net"))
	if err != nil {
		t.Fatalf("InsecureSkipVerify refused an Origin: %v", err)
	}
	_ = c.Close()
}

func TestDialTLS(t *testing.T) {
	ctx := testCtx(t)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serveOK(w, r, ConnOptions{})
	}))
	defer srv.Close()
	if _, err := Dial(ctx, srv.URL); err == nil {
		t.Error("a certificate from an unknown authority was trusted")
	}
	c, err := Dial(ctx, srv.URL, WithHTTPClient(srv.Client()), WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatalf("dial with the test server's client: %v", err)
	}
	defer c.Close()
	if _, err := c.Request(ctx, &Message{Type: TypeChat, Text: "over TLS"}); err != nil {
		t.Fatal(err)
	}
}
