package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/confab-sfu/confab/signal"
)

func TestForwardedClient(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ffff::/48")}
	cases := []struct {
		what, remote, xff, fwd, want string // want "" means the request is left alone
	}{
		{"untrusted peer: headers ignored", "198.51.100.7:5000", "203.0.113.5", "", ""},
		{"untrusted peer: Forwarded ignored", "198.51.100.7:5000", "", "for=203.0.113.5", ""},
		{"trusted proxy, one hop", "10.0.0.2:5000", "203.0.113.5", "", "203.0.113.5"},
		{"client spoofs a hop before the proxy", "10.0.0.2:5000", "1.2.3.4, 203.0.113.5", "", "203.0.113.5"},
		{"two trusted proxies", "10.0.0.2:5000", "203.0.113.5, 10.0.0.9", "", "203.0.113.5"},
		{"several header lines", "10.0.0.2:5000", "203.0.113.5\n10.0.0.9", "", "203.0.113.5"},
		{"only trusted hops: the farthest", "10.0.0.2:5000", "10.1.1.1, 10.0.0.9", "", "10.1.1.1"},
		{"no header: the proxy itself", "10.0.0.2:5000", "", "", "10.0.0.2"},
		{"unreadable hop: the proxy that wrote it", "10.0.0.2:5000", "203.0.113.5, unknown", "", "10.0.0.2"},
		{"XFF with a port", "10.0.0.2:5000", "203.0.113.5:1234", "", "203.0.113.5"},
		{"Forwarded wins over XFF", "10.0.0.2:5000", "1.2.3.4", `for=203.0.113.5;proto=https`, "203.0.113.5"},
		{"Forwarded IPv6 with port", "10.0.0.2:5000", "", `for="[2001:db8::1]:4711"`, "2001:db8::1"},
		{"Forwarded chain", "10.0.0.2:5000", "", `for=198.51.100.1, for=10.3.3.3;by=10.0.0.2`, "198.51.100.1"},
		{"Forwarded obfuscated", "10.0.0.2:5000", "", `for=_hidden`, "10.0.0.2"},
		{"IPv6 proxy", "[2001:db8:ffff::1]:443", "2001:db8:1::5", "", "2001:db8:1::5"},
		{"IPv4-mapped client", "10.0.0.2:5000", "::ffff:203.0.113.5", "", "203.0.113.5"},
	}
	for _, c := range cases {
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = c.remote
		for _, v := range strings.Split(c.xff, "\n") {
			if v != "" {
				r.Header.Add("X-Forwarded-For", v)
			}
		}
		if c.fwd != "" {
			r.Header.Set("Forwarded", c.fwd)
		}
		got, ok := forwardedClient(r, trusted)
		switch {
		case c.want == "" && ok:
			t.Errorf("%s: rewritten to %s, want left alone", c.what, got)
		case c.want != "" && (!ok || got.String() != c.want):
			t.Errorf("%s: %v %v, want %s", c.what, got, ok, c.want)
		}
	}
}

// dialAs opens a WebSocket claiming, in X-Forwarded-For, to be for client.
func dialAs(ctx context.Context, url, header, client string) (*signal.Client, error) {
	return signal.Dial(ctx, url, signal.WithHeader(http.Header{header: {client}}))
}

// TestTrustedProxiesNameTheClient: behind a trusted proxy each client has
// its own -max-conns-per-ip budget (an IPv6 client's being its /64), and
// the proxy's own connections are not capped per address; from an
// untrusted peer the forwarding headers are ignored.
func TestTrustedProxiesNameTheClient(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url, stop := startRun(t, "-trusted-proxies", "127.0.0.1/32", "-max-conns-per-ip", "1", "-max-tcp-conns-per-ip", "8")
	defer stop()
	for _, c := range []struct{ header, client string }{
		{"X-Forwarded-For", "203.0.113.5"},
		{"X-Forwarded-For", "203.0.113.6"},
		{"Forwarded", `for="[2001:db8:1:2::1]"`},
	} {
		cl, err := dialAs(ctx, url, c.header, c.client)
		if err != nil {
			t.Fatalf("first connection for %s: %v", c.client, err)
		}
		defer cl.Close()
	}
	for _, c := range []struct{ header, client string }{
		{"X-Forwarded-For", "203.0.113.5"},
		{"X-Forwarded-For", "198.51.100.1, 203.0.113.6"}, // a spoofed first hop changes nothing
		{"Forwarded", `for="[2001:db8:1:2::ffff]"`},      // the same /64
	} {
		if cl, err := dialAs(ctx, url, c.header, c.client); err == nil {
			cl.Close()
			t.Errorf("a second connection for %s was accepted over a budget of 1", c.client)
		}
	}
	// The proxy's own address is not capped at 8 sockets: its clients share it.
	var conns []net.Conn
	for i := 0; i < 12; i++ {
		c, err := net.Dial("tcp", strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/"))
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for i, c := range conns {
		_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if b, err := io.ReadAll(c); err != nil || !strings.HasPrefix(string(b), "HTTP/1.1 200") {
			t.Errorf("proxy connection %d: %q %v", i, b, err)
		}
		c.Close()
	}

	untrusted, stop2 := startRun(t, "-max-conns-per-ip", "1")
	defer stop2()
	first, err := dialAs(ctx, untrusted, "X-Forwarded-For", "203.0.113.5")
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if cl, err := dialAs(ctx, untrusted, "X-Forwarded-For", "203.0.113.6"); err == nil {
		cl.Close()
		t.Error("without -trusted-proxies a forged X-Forwarded-For bought a second budget")
	}
}

// TestMetricsListen: with -metrics-listen, /metrics and /debug/pprof are
// served there and not on the public listener; without it, /metrics stays
// public.
func TestMetricsListen(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	private := "http://" + ln.Addr().String() + "/"
	ln.Close()
	public, stop := startRun(t, "-metrics-listen", strings.TrimSuffix(strings.TrimPrefix(private, "http://"), "/"), "-pprof")
	defer stop()
	get := func(url string) (int, string) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, path := range []string{"metrics", "debug/pprof/"} {
		if status, body := get(public + path); status == http.StatusOK && (strings.Contains(body, "confab_rooms") || strings.Contains(body, "goroutine")) {
			t.Errorf("the public listener serves /%s", path)
		}
		if status, _ := get(private + path); status != http.StatusOK {
			t.Errorf("the metrics listener's /%s: %d", path, status)
		}
	}
	if status, body := get(private + "metrics"); status != http.StatusOK || !strings.Contains(body, "confab_rooms") {
		t.Errorf("metrics listener /metrics: %d", status)
	}
	if status, _ := get(public + "healthz"); status != http.StatusOK {
		t.Errorf("public /healthz: %d", status)
	}

	plain, stop2 := startRun(t)
	defer stop2()
	if status, body := get(plain + "metrics"); status != http.StatusOK || !strings.Contains(body, "confab_rooms") {
		t.Errorf("without -metrics-listen, /metrics: %d", status)
	}
	if status, _ := get(plain + "debug/pprof/"); status == http.StatusOK {
		t.Error("/debug/pprof served without -pprof")
	}
}
