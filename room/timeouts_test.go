package room_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/testserver"
	"github.com/confab-sfu/confab/internal/wait"
	"github.com/confab-sfu/confab/room"
	"github.com/confab-sfu/confab/room/addrlimit"
	"github.com/confab-sfu/confab/signal"
)

// startTimedServer serves the rooms from an http.Server with read and
// write timeouts, as cmd/confab does.
func startTimedServer(t *testing.T, cfg room.Config, offerRead, read, write time.Duration) string {
	t.Helper()
	cfg.SFU.Loopback = true
	mgr, err := room.NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", mgr.ServeWS)
	media := testserver.Media(mgr, cfg, offerRead)
	mux.HandleFunc("/whip/", media.ServeWHIP)
	mux.HandleFunc("/whep/", media.ServeWHEP)
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.ReadTimeout, srv.Config.WriteTimeout = read, write
	srv.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := mgr.Close(ctx); err != nil {
			t.Errorf("close manager: %v", err)
		}
		srv.Close()
	})
	return srv.URL
}

// TestWebSocketsOutliveServerTimeouts: the server's read and write
// timeouts bound HTTP requests, not meetings: well past both, signaling
// still answers and media still flows.
func TestWebSocketsOutliveServerTimeouts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const timeout = 400 * time.Millisecond
	base := startTimedServer(t, room.Config{}, 0, timeout, timeout)
	v := startVictims(t, ctx, base)
	past := time.Now().Add(3 * timeout)
	before := v.received()
	wait.Until(t, 10*time.Second, "three timeouts to pass", func() (bool, string) { return time.Now().After(past), "" })
	if _, err := v.bob.Client().Request(ctx, &signal.Message{Type: signal.TypeChat, Text: "still here?"}); err != nil {
		t.Fatalf("chat after the server's timeouts: %v", err)
	}
	v.stillFlowing(t, before, "the server's timeouts")
}

// rawRequest opens a TCP connection and writes a request's head.
func rawRequest(t *testing.T, base, head string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Write([]byte(head)); err != nil {
		t.Fatal(err)
	}
	return c
}

// statusWithin reads a response's status code, failing after d.
func statusWithin(t *testing.T, c net.Conn, d time.Duration) int {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no response within %s: %v", d, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestWHIPOfferDeadlineAndEarlyRefusals: a client trickling its offer a
// byte at a time gets 408 once OfferReadTimeout passes, and its connection
// closes; a client over its address's budget, or without a token on a
// secured server, is refused before it sends a byte of body. The victims'
// media is unaffected.
func TestWHIPOfferDeadlineAndEarlyRefusals(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	base := startTimedServer(t, room.Config{Addrs: addrlimit.New(3)}, 500*time.Millisecond, 0, 0)
	v := startVictims(t, ctx, base) // two WebSockets from 127.0.0.1
	before := v.received()

	for _, kind := range []string{"whip", "whep"} {
		c := rawRequest(t, base, fmt.Sprintf("POST /%s/victims HTTP/1.1\r\nHost: x\r\nContent-Type: application/sdp\r\nContent-Length: 4000\r\n\r\nv", kind))
		start := time.Now()
		stop := make(chan struct{})
		go func() { // trickle, as a slowloris client does
			for i := 0; i < 50; i++ {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
				if _, err := c.Write([]byte("=")); err != nil {
					return
				}
			}
		}()
		status := statusWithin(t, c, 5*time.Second)
		close(stop)
		if status != http.StatusRequestTimeout {
			t.Errorf("%s trickled offer: %d, want 408", kind, status)
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("%s trickled offer refused after %s", kind, took)
		}
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		n, err := c.Read(make([]byte, 1))
		if ne := net.Error(nil); err == nil || (errors.As(err, &ne) && ne.Timeout()) {
			t.Errorf("%s: the connection stays open after the 408 (read %d bytes, %v)", kind, n, err)
		}
	}

	v.stillFlowing(t, before, "trickled offers")
}

// TestWHIPRefusedBeforeTheBody: with a 10 s offer deadline, POSTs that
// announce a body and send none are answered at once when they are over
// their address's budget (429) or, on a secured server, lack a valid
// token (401): the server does not wait for a body it will refuse.
func TestWHIPRefusedBeforeTheBody(t *testing.T) {
	const head = "POST /whip/r HTTP/1.1\r\nHost: x\r\nContent-Type: application/sdp\r\nContent-Length: 4000\r\n"
	open := startTimedServer(t, room.Config{Addrs: addrlimit.New(1)}, 10*time.Second, 0, 0)
	secured := startTimedServer(t, room.Config{AuthSecret: testSecret}, 10*time.Second, 0, 0)
	first := rawRequest(t, open, head+"\r\n")
	second := rawRequest(t, open, head+"\r\n")
	noToken := rawRequest(t, secured, head+"Authorization: Bearer nope\r\n\r\n")
	statuses := make(chan int, 2)
	for _, c := range []net.Conn{first, second} {
		go func() {
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				statuses <- 0 // still waiting for its body: the one admitted
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		}()
	}
	got := []int{<-statuses, <-statuses}
	if got[0]+got[1] != http.StatusTooManyRequests {
		t.Errorf("two bodiless POSTs from one address with a budget of 1: statuses %v, want one 429 at once and one still waiting", got)
	}
	if status := statusWithin(t, noToken, 2*time.Second); status != http.StatusUnauthorized {
		t.Errorf("a bad token: %d, want 401 before the body", status)
	}
}
