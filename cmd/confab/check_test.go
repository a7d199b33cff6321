package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/confab-sfu/confab/room/turn"

	"github.com/confab-sfu/confab/internal/testserver"
	"github.com/confab-sfu/confab/room"
	"github.com/confab-sfu/confab/signal/client"
	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
)

// checkedServer runs a server with ICE over TCP and an embedded TURN
// server whose secret is turnSecret, handing out credentials made with
// handed.
func checkedServer(t *testing.T, handed string) string {
	t.Helper()
	ts, err := turn.Start(turn.ServerConfig{Listen: "127.0.0.1:0", RelayIP: "127.0.0.1", Secret: "turn secret"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ts.Close() })
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	cfg := room.Config{ICE: turn.ICE{TURN: turn.Credentials{URLs: ts.URLs("127.0.0.1"), Secret: handed, TTL: time.Hour}}}
	cfg.SFU.TCPPort = port
	_, base := testserver.Start(t, cfg)
	return base
}

// noUDP is a network where UDP is blocked: no UDP socket can be opened.
type noUDP struct{ transport.Net }

func (noUDP) ListenUDP(string, *net.UDPAddr) (transport.UDPConn, error) {
	return nil, errors.New("udp blocked")
}
func (noUDP) ListenPacket(string, string) (net.PacketConn, error) {
	return nil, errors.New("udp blocked")
}
func (noUDP) DialUDP(string, *net.UDPAddr, *net.UDPAddr) (transport.UDPConn, error) {
	return nil, errors.New("udp blocked")
}

// lines maps each check's title to its mark (ok, FAIL, skip).
func lines(out string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if len(l) > 30 {
			m[strings.TrimSpace(l[5:30])] = strings.TrimSpace(l[:4])
		}
	}
	return m
}

func TestConfabCheck(t *testing.T) {
	ctx := context.Background()
	good := checkedServer(t, "turn secret")
	run := func(base string, api client.APIOptions) (map[string]string, string, error) {
		var out bytes.Buffer
		err := checkServer(ctx, checkOptions{base: base, timeout: 5 * time.Second, api: api}, &out)
		t.Logf("confab check %s:\n%s", base, out.String())
		return lines(out.String()), out.String(), err
	}
	want := func(got map[string]string, marks map[string]string) {
		t.Helper()
		for title, mark := range marks {
			if got[title] != mark {
				t.Errorf("%s: %q, want %q", title, got[title], mark)
			}
		}
	}
	got, _, err := run(good, client.APIOptions{Loopback: true})
	if err != nil {
		t.Errorf("all checks should pass: %v", err)
	}
	want(got, map[string]string{"Server reachable": "ok", "Media over UDP": "ok", "Media over TCP": "ok", "TURN over UDP": "ok", "TURN over TCP/TLS": "ok"})

	// The server hands out TURN credentials its TURN server refuses.
	wrong := checkedServer(t, "another secret")
	got, out, err := run(wrong, client.APIOptions{Loopback: true})
	if !errors.Is(err, errChecksFailed) || !strings.Contains(out, "refused the credentials") {
		t.Errorf("wrong TURN secret: %v, want a failure naming the credentials", err)
	}
	want(got, map[string]string{"Media over UDP": "ok", "TURN over UDP": "FAIL", "TURN over TCP/TLS": "FAIL"})

	// From a network that blocks UDP.
	n, err := stdnet.NewNet()
	if err != nil {
		t.Fatal(err)
	}
	got, _, err = run(good, client.APIOptions{Loopback: true, Net: noUDP{n}})
	if !errors.Is(err, errChecksFailed) {
		t.Errorf("UDP blocked: %v, want failed checks", err)
	}
	want(got, map[string]string{"Server reachable": "ok", "Media over UDP": "FAIL", "Media over TCP": "ok", "TURN over UDP": "FAIL", "TURN over TCP/TLS": "ok"})

	// The command line.
	var buf bytes.Buffer
	if err := runCheck(ctx, []string{"-url", "meet.example.org"}, &buf); err == nil || !strings.Contains(err.Error(), "base URL") {
		t.Errorf("a URL without scheme: %v", err)
	}
	if err := runCheck(ctx, []string{"-url", good, "-loopback"}, &buf); err != nil || !strings.Contains(buf.String(), "Media over TCP") {
		t.Errorf("confab check -url %s -loopback: %v\n%s", good, err, buf.String())
	}
}
