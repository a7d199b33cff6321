package signal

import (
	"context"
	"errors"
	"fmt"
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

// testCtx bounds a test: generous, as the machine is shared.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// serve starts a signaling server whose every connection runs handle. The
// handler closes the connection when handle returns and waits until it is
// finished, so the goroutine-leak check covers Conn.
func serve(t *testing.T, opts ConnOptions, handle func(*Conn)) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, opts)
		if err != nil {
			t.Errorf("accept: %v", err)
			return
		}
		handle(c)
		c.Close(websocket.StatusNormalClosure, "")
		<-c.Done()
	}))
	t.Cleanup(srv.Close)
	return srv
}

func dial(t *testing.T, ctx context.Context, srv *httptest.Server) *Client {
	t.Helper()
	c, err := Dial(ctx, srv.URL)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// dialRaw is a bare WebSocket: it answers pings and close frames only
// while the test reads from it, which is how tests play a dead or slow client.
func dialRaw(t *testing.T, ctx context.Context, srv *httptest.Server) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = ws.CloseNow() })
	return ws
}

// readAll reads a raw connection until it ends and returns the text
// frames it got and the close code.
func readAll(ctx context.Context, ws *websocket.Conn) (frames []string, code websocket.StatusCode) {
	for {
		_, b, err := ws.Read(ctx)
		if err != nil {
			return frames, websocket.CloseStatus(err)
		}
		frames = append(frames, string(b))
	}
}

// readResult is what the server's Read returned, for the test to inspect.
type readResult struct {
	m   *Message
	err error
}

// readOnce serves connections that are read once; the result goes to out.
func readOnce(t *testing.T, opts ConnOptions, out chan<- readResult) *httptest.Server {
	return serve(t, opts, func(c *Conn) {
		m, err := c.Read(context.Background())
		out <- readResult{m, err}
	})
}

func TestBadFramesClose(t *testing.T) {
	cases := []struct {
		name     string
		typ      websocket.MessageType
		frame    string
		code     websocket.StatusCode
		errFrame bool // a bad_message error precedes the close
	}{
		{"malformed JSON", websocket.MessageText, `{"type": "join", "room": `, websocket.StatusInvalidFramePayloadData, true},
		{"field of the wrong type", websocket.MessageText, `{"type":"join","id":"1","version":"one"}`, websocket.StatusInvalidFramePayloadData, true},
		{"not an object", websocket.MessageText, `["join"]`, websocket.StatusInvalidFramePayloadData, true},
		{"invalid UTF-8", websocket.MessageText, "{\"type\":\"chat\",\"text\":\"\xc3\x28\"}", websocket.StatusInvalidFramePayloadData, true},
		{"binary frame", websocket.MessageBinary, `{"type":"leave"}`, websocket.StatusUnsupportedData, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			reads := make(chan readResult, 1)
			c := dial(t, ctx, readOnce(t, ConnOptions{}, reads))
			if err := c.ws.Write(ctx, tc.typ, []byte(tc.frame)); err != nil {
				t.Fatal(err)
			}
			var got []*Message
			for m := range c.Messages() {
				got = append(got, m)
			}
			if st := c.CloseStatus(); st != tc.code {
				t.Errorf("close status %d, want %d", st, tc.code)
			}
			if tc.errFrame {
				if len(got) != 1 || got[0].Type != TypeError || got[0].Code != CodeBadMessage || got[0].Message == "" {
					t.Errorf("client got %+v, want one bad_message error", got)
				}
			} else if len(got) != 0 {
				t.Errorf("client got %+v, want nothing before the close", got)
			}
			r := <-reads
			if e := (*Error)(nil); !errors.As(r.err, &e) || e.Code != CodeBadMessage || r.m != nil {
				t.Errorf("server Read = %+v, %v; want a bad_message *Error", r.m, r.err)
			}
		})
	}
}

func TestReadLimit(t *testing.T) {
	ctx := testCtx(t)
	reads := make(chan readResult, 2)
	srv := readOnce(t, ConnOptions{}, reads)

	// 63 KiB of SDP in one frame: under the default 64 KiB limit.
	c := dial(t, ctx, srv)
	near := &Message{Type: TypeOffer, SDP: strings.Repeat("a", 63<<10)}
	if err := c.Send(near); err != nil {
		t.Fatal(err)
	}
	if r := <-reads; r.err != nil || r.m.SDP != near.SDP {
		t.Fatalf("frame under the limit: %v", r.err)
	}

	c = dial(t, ctx, srv)
	if err := c.Send(&Message{Type: TypeOffer, SDP: strings.Repeat("a", 65<<10)}); err != nil {
		t.Fatal(err)
	}
	<-c.Done()
	if st := c.CloseStatus(); st != websocket.StatusMessageTooBig {
		t.Errorf("close status %d, want 1009", st)
	}
	if r := <-reads; !IsClosed(r.err) {
		t.Errorf("server Read after an oversized frame: %v, want ErrClosed", r.err)
	}
}

func TestReadReturnsErrClosedWhenClientLeaves(t *testing.T) {
	ctx := testCtx(t)
	reads := make(chan readResult, 1)
	c := dial(t, ctx, readOnce(t, ConnOptions{}, reads))
	if err := c.Close(); err != nil {
		t.Fatalf("client close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second client close: %v", err)
	}
	r := <-reads
	if !IsClosed(r.err) || websocket.CloseStatus(r.err) != websocket.StatusNormalClosure {
		t.Errorf("server Read = %v, want ErrClosed carrying 1000", r.err)
	}
}

func TestCloseFlushesQueueThenCloses(t *testing.T) {
	ctx := testCtx(t)
	const n = 300
	sendErr := make(chan error, 2)
	srv := serve(t, ConnOptions{}, func(c *Conn) {
		for i := range n {
			if err := c.Send(&Message{Type: TypeChat, Text: fmt.Sprint(i)}); err != nil {
				sendErr <- err
				return
			}
		}
		c.Close(websocket.StatusGoingAway, "server is shutting down")
		c.Close(websocket.StatusInternalError, "ignored: only the first Close counts")
		sendErr <- c.Send(&Message{Type: TypeChat, Text: "too late"})
		sendErr <- c.SendError("9", Errorf(CodeInternal, "too late"))
		<-c.Done()
	})
	c := dial(t, ctx, srv)
	i := 0
	for m := range c.Messages() {
		if m.Text != fmt.Sprint(i) {
			t.Fatalf("message %d: %q", i, m.Text)
		}
		i++
	}
	if i != n {
		t.Errorf("got %d of %d queued messages before the close", i, n)
	}
	if st := c.CloseStatus(); st != websocket.StatusGoingAway {
		t.Errorf("close status %d, want 1001", st)
	}
	for range 2 {
		if err := <-sendErr; !errors.Is(err, ErrClosed) {
			t.Errorf("Send after Close: %v, want ErrClosed", err)
		}
	}
}

func TestSlowConsumer(t *testing.T) {
	big := &Message{Type: TypeChat, Text: strings.Repeat("x", 4000)}
	// flood sends until Send fails and reports what it returned.
	flood := func(c *Conn, result chan<- error, sent *atomic.Int64) {
		for range 200_000 {
			if err := c.Send(big); err != nil {
				result <- err
				return
			}
			sent.Add(1)
		}
		result <- nil
	}

	t.Run("client that resumes reading sees 1008", func(t *testing.T) {
		ctx := testCtx(t)
		result := make(chan error, 1)
		after := make(chan error, 1)
		var sent atomic.Int64
		srv := serve(t, ConnOptions{QueueSize: 64}, func(c *Conn) {
			flood(c, result, &sent)
			after <- c.Send(big)
			<-c.Done()
		})
		ws := dialRaw(t, ctx, srv)
		select {
		case err := <-result:
			if !errors.Is(err, ErrSlowConsumer) {
				t.Fatalf("Send to a client that does not read: %v, want ErrSlowConsumer", err)
			}
		case <-ctx.Done():
			t.Fatal("Send blocked on a client that does not read")
		}
		if err := <-after; !errors.Is(err, ErrClosed) {
			t.Errorf("Send after the slow-consumer close: %v, want ErrClosed", err)
		}
		frames, code := readAll(ctx, ws)
		if code != websocket.StatusPolicyViolation {
			t.Errorf("close status %d, want 1008", code)
		}
		// Whatever was in flight arrives (possibly nothing, if the writer
		// had not run yet when the queue overflowed); the queue is dropped.
		if got := int64(len(frames)); got > sent.Load() {
			t.Errorf("client read %d frames of %d queued", got, sent.Load())
		}
		t.Logf("queue of 64 overflowed after %d messages of 4 KB; client got %d before the close", sent.Load(), len(frames))
	})

	t.Run("client that never reads is dropped", func(t *testing.T) {
		ctx := testCtx(t)
		result := make(chan error, 1)
		finished := make(chan struct{})
		var sent atomic.Int64
		srv := serve(t, ConnOptions{QueueSize: 64, WriteTimeout: 200 * time.Millisecond}, func(c *Conn) {
			// As in the server, a reader runs all along: it is what lets
			// Conn cut a close handshake the client never answers.
			go func() {
				for {
					if _, err := c.Read(context.Background()); err != nil {
						return
					}
				}
			}()
			flood(c, result, &sent)
			t0 := time.Now()
			<-c.Done()
			t.Logf("connection finished %v after the overflow (WriteTimeout 200ms)", time.Since(t0).Round(time.Millisecond))
			close(finished)
		})
		_ = dialRaw(t, ctx, srv)
		if err := <-result; !errors.Is(err, ErrSlowConsumer) {
			t.Fatalf("Send: %v, want ErrSlowConsumer", err)
		}
		select {
		case <-finished:
		case <-ctx.Done():
			t.Fatal("connection to a stuck client never finished")
		}
	})
}

func TestKeepalive(t *testing.T) {
	opts := ConnOptions{PingInterval: 20 * time.Millisecond, PongTimeout: 300 * time.Millisecond}

	t.Run("dead client is dropped", func(t *testing.T) {
		ctx := testCtx(t)
		reads := make(chan readResult, 1)
		_ = dialRaw(t, ctx, readOnce(t, opts, reads)) // never reads, so never answers a ping
		select {
		case r := <-reads:
			if !IsClosed(r.err) {
				t.Errorf("server Read = %v, want ErrClosed", r.err)
			}
		case <-ctx.Done():
			t.Fatal("a client that does not answer pings was not disconnected")
		}
	})

	t.Run("live client stays", func(t *testing.T) {
		ctx := testCtx(t)
		srv := serve(t, opts, func(c *Conn) {
			for {
				m, err := c.Read(context.Background())
				if err != nil {
					return
				}
				_ = c.Send(&Message{Type: TypeOK, ID: m.ID})
			}
		})
		c := dial(t, ctx, srv)
		// Many ping intervals, several pong timeouts.
		time.Sleep(time.Second)
		if _, err := c.Request(ctx, &Message{Type: TypeChat, Text: "still there?"}); err != nil {
			t.Fatalf("a client that answers pings was disconnected: %v", err)
		}
	})
}

func TestFloodIsRateLimitedThenClosed(t *testing.T) {
	ctx := testCtx(t)
	var served atomic.Int64
	srv := serve(t, ConnOptions{MessageRate: 20, MessageBurst: 10}, func(c *Conn) {
		for {
			if _, err := c.Read(context.Background()); err != nil {
				return
			}
			served.Add(1)
		}
	})
	c := dial(t, ctx, srv)
	for range 1000 {
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
	ctx := testCtx(t)
	srv := serve(t, ConnOptions{MessageRate: 50, MessageBurst: 20}, func(c *Conn) {
		for {
			m, err := c.Read(context.Background())
			if err != nil {
				return
			}
			_ = c.Send(&Message{Type: TypeOK, ID: m.ID})
		}
	})
	c := dial(t, ctx, srv)
	for i := range 30 {
		if _, err := c.Request(ctx, &Message{Type: TypeChat, Text: "hi"}); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func TestRemoteAddrIsLoopback(t *testing.T) {
	ctx := testCtx(t)
	addr := make(chan string, 1)
	srv := serve(t, ConnOptions{}, func(c *Conn) { addr <- c.RemoteAddr() })
	_ = dial(t, ctx, srv)
	if a := <-addr; !strings.HasPrefix(a, "127.0.0.1:") {
		t.Errorf("RemoteAddr %q", a)
	}
}
