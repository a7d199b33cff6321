package main

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/confab-sfu/confab/signal"
)

func TestTokenCommandAdmitsToItsRoomOnly(t *testing.T) {
	const secret = "cmd test secret"
	env := func(k string) string {
		if k == "CONFAB_AUTH_SECRET" {
			return secret
		}
		return ""
	}
	mint := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := runToken(args, &out, env, time.Now()); err != nil {
			t.Fatalf("confab token %v: %v", args, err)
		}
		return strings.TrimSpace(out.String())
	}
	srv, stop := startRun(t, "-auth-secret", secret)
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	join := func(roomName, token string) (*signal.Message, error) {
		c, err := signal.Dial(ctx, srv)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.Join(ctx, roomName, "someone", token)
	}

	viewer := mint("-room", "town-hall", "-identity", "u42", "-role", "viewer", "-name", "Ada")
	w, err := join("town-hall", viewer)
	if err != nil {
		t.Fatalf("join with a minted token: %v", err)
	}
	if w.Participant.Identity != "u42" || w.Participant.Name != "Ada" || w.Permissions.Publish || !w.Permissions.Subscribe {
		t.Fatalf("welcome %+v permissions %+v: want identity u42, name Ada, receive only", w.Participant, w.Permissions)
	}
	var serr *signal.Error
	if _, err := join("elsewhere", viewer); !errors.As(err, &serr) || serr.Code != signal.CodeWrongRoom {
		t.Fatalf("token used for another room: %v", err)
	}
	if _, err := join("town-hall", ""); !errors.As(err, &serr) || serr.Code != signal.CodeUnauthorized {
		t.Fatalf("no token: %v", err)
	}

	link := mint("-room", "town-hall", "-identity", "u1", "-role", "moderator", "-url", "https://meet.example.org/")
	u, err := url.Parse(link)
	if err != nil || u.Host != "meet.example.org" || u.Path != "/r/town-hall" || u.Query().Get("token") == "" {
		t.Fatalf("invitation link %q", link)
	}
	if w, err := join("town-hall", u.Query().Get("token")); err != nil || !w.Permissions.Moderate {
		t.Fatalf("the link's token: %v %+v", err, w)
	}

	var out bytes.Buffer
	for _, bad := range [][]string{
		{"-identity", "x"}, // no room
		{"-room", "r"},     // no identity
		{"-room", "r", "-identity", "x", "-role", "admin"},
		{"-room", "r", "-identity", "x", "-name", "Ada\u202Enimda"},
		{"-room", "r", "-identity", "x\x1b[2J"},
		{"-room", "r", "-identity", "x", "-ttl", "-1h"},
		{"-room", "r", "-identity", "x", "-url", "ftp://x"},
	} {
		if err := runToken(bad, &out, env, time.Now()); err == nil {
			t.Errorf("confab token %v succeeded", bad)
		}
	}
	if err := runToken([]string{"-room", "r", "-identity", "x"}, &out, func(string) string { return "" }, time.Now()); err == nil {
		t.Error("minted without a secret")
	}
}

func TestOpenRoomsWarningOnlyOffLoopback(t *testing.T) {
	for listen, want := range map[string]bool{
		"localhost:8080": true, "127.0.0.1:0": true, "[::1]:8080": true,
		":8080": false, "0.0.0.0:8080": false, "192.0.2.7:443": false, "meet.example.org:443": false,
	} {
		if got := loopbackOnly(listen); got != want {
			t.Errorf("loopbackOnly(%q) = %v, want %v", listen, got, want)
		}
	}
}

func TestEmbeddedTURNFlags(t *testing.T) {
	srv, stop := startRun(t, "-turn-listen", "127.0.0.1:0", "-turn-relay-ip", "127.0.0.1")
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := signal.Dial(ctx, srv)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w, err := c.Join(ctx, "r", "n", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(w.ICEServers) != 1 || len(w.ICEServers[0].URLs) != 2 || !strings.HasPrefix(w.ICEServers[0].URLs[0], "turn:127.0.0.1:") ||
		w.ICEServers[0].Username == "" || w.ICEServers[0].Credential == "" {
		t.Fatalf("welcome ICE servers %+v: want the embedded TURN server with credentials", w.ICEServers)
	}
	if _, err := parseConfig([]string{"-turn-listen", ":3478"}, func(string) string { return "" }); err == nil {
		t.Error("-turn-listen without a relay IP accepted")
	}
}
