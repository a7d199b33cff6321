package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/wait"
	"github.com/confab-sfu/confab/signal/client"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// meeting is a normal participant's media: one peer publishes audio, the
// other counts what arrives.
type meeting struct{ received atomic.Int64 }

func startMeeting(t *testing.T, ctx context.Context, url string) *meeting {
	t.Helper()
	api, err := client.NewAPI(client.APIOptions{Loopback: true})
	if err != nil {
		t.Fatal(err)
	}
	m := &meeting{}
	join := func(name string, onTrack func(*client.RemoteTrack)) *client.Peer {
		p, err := client.Join(ctx, client.Params{URL: url, Room: "meeting", Name: name, API: api, OnTrack: onTrack})
		if err != nil {
			t.Fatalf("%s joins: %v", name, err)
		}
		go func() {
			for range p.Events() {
			}
		}()
		t.Cleanup(func() { _ = p.Leave() })
		return p
	}
	join("listener", func(rt *client.RemoteTrack) {
		go func() {
			buf := make([]byte, 1500)
			for {
				if _, _, err := rt.Track.Read(buf); err != nil {
					return
				}
				m.received.Add(1)
			}
		}()
	})
	speaker := join("speaker", nil)
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "mic", "speaker")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := speaker.Publish(ctx, "microphone", track); err != nil {
		t.Fatalf("publish: %v", err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			_ = track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(i), Timestamp: uint32(i * 960)}, Payload: make([]byte, 80)})
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
	m.flows(t, "starting")
	return m
}

// flows waits for 25 more packets (half a second of audio).
func (m *meeting) flows(t *testing.T, what string) {
	t.Helper()
	since := m.received.Load()
	wait.For(t, 10*time.Second, "the meeting's audio to flow after "+what, func() bool { return m.received.Load()-since >= 25 })
}

// attack opens n connections from 127.0.0.2, writes head on each and, with
// trickle, a byte every 200 ms after it. It returns, per connection,
// whether it got any response, and fails unless every connection was
// closed by the server within bound.
func attack(t *testing.T, addr string, n int, head string, trickle bool, bound time.Duration) (answered int) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []string
	for i := 0; i < n; i++ {
		c, err := d.Dial("tcp", addr)
		if errors.Is(err, syscall.ECONNRESET) {
			continue // refused so fast that the reset beat the handshake's end
		}
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		t.Cleanup(func() { c.Close() })
		wg.Add(1)
		go func() {
			defer wg.Done()
			if head != "" {
				_, _ = c.Write([]byte(head))
			}
			if trickle {
				go func() {
					for j := 0; j < 100; j++ {
						time.Sleep(200 * time.Millisecond)
						if _, err := c.Write([]byte("=")); err != nil {
							return
						}
					}
				}()
			}
			_ = c.SetReadDeadline(time.Now().Add(bound))
			r := bufio.NewReader(c)
			if resp, err := http.ReadResponse(r, nil); err == nil {
				resp.Body.Close()
				mu.Lock()
				answered++
				mu.Unlock()
			}
			_, err := io.Copy(io.Discard, r)
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				mu.Lock()
				open = append(open, c.LocalAddr().String())
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(open) > 0 {
		t.Fatalf("%d of %d connections still open after %s", len(open), n, bound)
	}
	return answered
}

// TestOneAddressCannotHoldConnections: with -max-tcp-conns-per-ip 8 and
// 1 s request and idle timeouts, an address opening 30 connections that
// trickle WHIP bodies, then 30 idle keep-alives, then 30 that send
// nothing, has every one of them closed within 5 s (at most 8 served at a
// time). A browser's page load over 6 connections plus a meeting's
// WebSockets from another address work throughout, and its media flows.
func TestOneAddressCannotHoldConnections(t *testing.T) {
	url, stop := startRun(t, "-max-tcp-conns-per-ip", "8", "-max-conns-per-ip", "5",
		"-http-read-timeout", "1s", "-http-idle-timeout", "1s", "-http-write-timeout", "16s")
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	addr := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/")

	// A browser loads the page over 6 connections, then the meeting joins.
	var wg sync.WaitGroup
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Errorf("page connection %d: %v", i, err)
				return
			}
			defer c.Close()
			fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
			if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != http.StatusOK {
				t.Errorf("page connection %d: %v %v", i, resp, err)
			}
		}()
	}
	wg.Wait()
	m := startMeeting(t, ctx, url)

	start := time.Now()
	n := attack(t, addr, 30, "POST /whip/meeting HTTP/1.1\r\nHost: x\r\nContent-Type: application/sdp\r\nContent-Length: 4000\r\n\r\nv", true, 5*time.Second)
	t.Logf("trickling bodies: %d of 30 answered (408 or 429), all closed after %s", n, time.Since(start).Round(time.Millisecond))
	if n == 0 || n > 8 {
		t.Errorf("%d trickling requests answered, want 1-8: the rest closed at once", n)
	}
	m.flows(t, "trickling bodies")

	start = time.Now()
	n = attack(t, addr, 30, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", false, 5*time.Second)
	t.Logf("idle keep-alives: %d of 30 served, all closed after %s", n, time.Since(start).Round(time.Millisecond))
	if n == 0 || n > 8 {
		t.Errorf("%d keep-alive requests served, want 1-8", n)
	}
	m.flows(t, "idle keep-alives")

	start = time.Now()
	attack(t, addr, 30, "", false, 5*time.Second)
	t.Logf("silent connections: all closed after %s", time.Since(start).Round(time.Millisecond))
	m.flows(t, "silent connections")

	// The attacker's budget comes back once its connections are gone.
	if got := attack(t, addr, 1, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", false, 5*time.Second); got != 1 {
		t.Error("the attacking address is still refused after its connections closed")
	}
}
