package addrlimit

import (
	"net/http"
	"net/netip"
	"testing"
)

func TestKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":             "192.0.2.7",
		"::ffff:192.0.2.7":      "192.0.2.7",
		"2001:db8:1:2:3:4:5:6":  "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::9":  "2001:db8:1:2::/64",
		"2001:db8:1:3::1":       "2001:db8:1:3::/64",
		"fe80::1%eth0":          "fe80::/64",
		"::1":                   "::/64",
		"127.0.0.1":             "127.0.0.1",
		"2001:db8:1:2:3:4:5:ff": "2001:db8:1:2::/64",
	} {
		if got := Key(netip.MustParseAddr(in)); got != want {
			t.Errorf("Key(%s) = %s, want %s", in, got, want)
		}
	}
	for remote, want := range map[string]string{
		"192.0.2.7:5000":              "192.0.2.7",
		"[2001:db8:1:2:3:4:5:6]:5000": "2001:db8:1:2::/64",
		"pipe":                        "pipe",
		"[::ffff:192.0.2.7]:1":        "192.0.2.7",
	} {
		if got := OfRequest(&http.Request{RemoteAddr: remote}); got != want {
			t.Errorf("OfRequest(%s) = %s, want %s", remote, got, want)
		}
	}
}

func TestLimiter(t *testing.T) {
	l := New(2)
	if !l.Reserve("a") || !l.Reserve("a") || l.Reserve("a") {
		t.Fatal("a limit of 2 admitted a third reservation, or not two")
	}
	if !l.Reserve("b") {
		t.Fatal("another address was refused")
	}
	l.Release("a")
	if l.held["a"] != 1 || !l.Reserve("a") {
		t.Fatal("a released reservation was not given back")
	}
	l.Release("a")
	l.Release("a")
	l.Release("b")
	if len(l.held) != 0 {
		t.Fatalf("empty budgets kept: %v", l.held)
	}
	for _, free := range []*Limiter{nil, New(0)} {
		for i := 0; i < 100; i++ {
			if !free.Reserve("a") {
				t.Fatal("a Limiter without a maximum refused")
			}
		}
		free.Release("a")
	}
}
