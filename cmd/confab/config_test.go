package main

import (
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseConfigFlagsEnvAndErrors(t *testing.T) {
	env := map[string]string{
		"CONFAB_ICE_UDP_PORT":      "50000",
		"CONFAB_LISTEN":            "127.0.0.1:9999",
		"CONFAB_ICE_ALLOWED_CIDRS": "127.0.0.0/8, ::1",
		"CONFAB_MAX_PARTICIPANTS":  "7",
	}
	c, err := parseConfig([]string{"-listen", "127.0.0.1:0", "-ice-loopback"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.listen != "127.0.0.1:0" {
		t.Errorf("flag must win over env: listen %q", c.listen)
	}
	if c.iceUDPPort != 50000 || c.maxParticipants != 7 || !c.iceLoopback {
		t.Errorf("env not applied: %+v", c)
	}
	if len(c.allowed) != 2 || !c.allowed[0].Contains(netip.MustParseAddr("127.1.2.3")) || !c.allowed[1].Contains(netip.MustParseAddr("::1")) {
		t.Errorf("allowed cidrs: %v", c.allowed)
	}
	if c.maxTCPPerIP != 2*50+8 || c.httpRead != 20*time.Second || c.httpWrite != time.Minute || c.httpIdle != time.Minute {
		t.Errorf("HTTP defaults: %+v", c)
	}
	if c, _ := parseConfig([]string{"-max-conns-per-ip", "0"}, func(string) string { return "" }); c == nil || c.maxTCPPerIP != 0 {
		t.Errorf("-max-conns-per-ip 0 must lift the TCP cap too: %+v", c)
	}
	if c, _ := parseConfig([]string{"-max-conns-per-ip", "0", "-max-tcp-conns-per-ip", "20"}, func(string) string { return "" }); c == nil || c.maxTCPPerIP != 20 {
		t.Errorf("an explicit -max-tcp-conns-per-ip must win: %+v", c)
	}
	rc := c.roomConfig(nil)
	if wc := c.whipConfig(rc); wc.OfferReadTimeout != c.httpRead || wc.Addrs != rc.Addrs {
		t.Errorf("WHIP/WHEP: the offer read timeout %s is not -http-read-timeout, or the address budget is not the rooms'", wc.OfferReadTimeout)
	}
	if rc.MaxParticipants != 7 || rc.SFU.UDPPort != 50000 || !rc.SFU.IncludeLoopback {
		t.Errorf("room config: %+v", rc)
	}

	bad := [][]string{
		{"-ice-udp-port", "70000"},
		{"-ice-allowed-cidrs", "not-a-network"},
		{"-log-format", "xml"},
		{"-log-level", "loud"},
		{"-ice-port-min", "6000", "-ice-port-max", "5000"},
		{"stray-argument"},
		{"-no-such-flag"},
		{"-tls-cert", "cert.pem"},
		{"-signal-rate", "0"},
		{"-max-tcp-conns-per-ip", "3"}, // too few for a browser's page load and WebSocket
		{"-max-tcp-conns-per-ip", "-2"},
		{"-http-read-timeout", "0s"},
		{"-http-idle-timeout", "0s"},
		{"-http-read-timeout", "30s", "-http-write-timeout", "40s"}, // no time left to write an answer
		{"-trusted-proxies", "10.0.0.0/33"},
		{"-trusted-proxies", "proxy.example.org"},
		{"-listen", "127.0.0.1:8080", "-metrics-listen", "127.0.0.1:8080"},
	}
	for _, args := range bad {
		if _, err := parseConfig(args, func(string) string { return "" }); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
	if _, err := parseConfig(nil, func(k string) string {
		if k == "CONFAB_MAX_ROOMS" {
			return "many"
		}
		return ""
	}); err == nil || !strings.Contains(err.Error(), "CONFAB_MAX_ROOMS") {
		t.Errorf("bad env value: %v", err)
	}
}

func TestBaseURL(t *testing.T) {
	addr := &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 4321}
	for listen, want := range map[string]string{
		":0":             "http://localhost:4321/",
		"0.0.0.0:0":      "http://localhost:4321/",
		"127.0.0.1:0":    "http://127.0.0.1:4321/",
		"localhost:8080": "http://localhost:4321/",
	} {
		if got := baseURL(addr, listen, false); got != want {
			t.Errorf("%s: got %s want %s", listen, got, want)
		}
	}
}

func TestConfigFileBelowEnvAndFlags(t *testing.T) {
	dir := t.TempDir()
	file := dir + "/confab.yaml"
	yaml := "listen: 127.0.0.1:7000\nmax-participants: 12\nmax-rooms: 9\nice-allowed-cidrs: [127.0.0.0/8, 10.1.0.0/16]\nstun: [stun:a.example:3478, stun:b.example:3478]\nturn-urls: turn:127.0.0.1:3478\nturn-secret: s3cret\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"CONFAB_MAX_PARTICIPANTS": "5"}
	c, err := parseConfig([]string{"-config", file, "-listen", "127.0.0.1:0"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.listen != "127.0.0.1:0" || c.maxParticipants != 5 || c.maxRooms != 9 {
		t.Fatalf("precedence flags > env > file broken: listen %s, participants %d, rooms %d", c.listen, c.maxParticipants, c.maxRooms)
	}
	if len(c.allowed) != 2 || len(splitList(c.stun)) != 2 {
		t.Fatalf("lists from the file: %v %q", c.allowed, c.stun)
	}
	rc := c.roomConfig(nil)
	if rc.ICE.TURN.Secret != "s3cret" || len(rc.ICE.TURN.URLs) != 1 || len(rc.ICE.Servers) != 1 {
		t.Fatalf("turn/stun config: %+v", rc.ICE)
	}
	if err := os.WriteFile(file, []byte("no-such-setting: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := parseConfig([]string{"-config", file}, func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "no-such-setting") {
		t.Fatalf("unknown setting: %v", err)
	}
}
