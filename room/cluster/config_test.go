package cluster

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestConfigIsChecked(t *testing.T) {
	embed := func() *EmbedConfig { return &EmbedConfig{Listen: "127.0.0.1:0"} }
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"nothing", Config{}, "set URLs"},
		{"both", Config{URLs: []string{"nats://x:4222"}, Embed: embed()}, "exclude"},
		{"token and user", Config{URLs: []string{"nats://x"}, Token: "t", User: "u"}, "Token excludes"},
		{"cert without key", Config{URLs: []string{"nats://x"}, TLSCert: "c.pem"}, "go together"},
		{"creds with embed", Config{Embed: embed(), CredsFile: "x.creds"}, "external NATS"},
		{"node id", Config{URLs: []string{"nats://x"}, NodeID: "a.b"}, "node ID"},
		{"long node id", Config{URLs: []string{"nats://x"}, NodeID: strings.Repeat("n", 65)}, "node ID"},
		{"prefix", Config{URLs: []string{"nats://x"}, Subject: "confab.>"}, "subject prefix"},
		{"empty token in prefix", Config{URLs: []string{"nats://x"}, Subject: "a..b"}, "subject prefix"},
		{"dead after", Config{URLs: []string{"nats://x"}, Heartbeat: time.Second, DeadAfter: 2 * time.Second}, "twice"},
		{"listen", Config{Embed: &EmbedConfig{Listen: "nohost"}}, "listen address"},
		{"routes without cluster", Config{Embed: &EmbedConfig{Routes: []string{"h:1"}}}, "ClusterListen"},
		{"bad route", Config{Embed: &EmbedConfig{ClusterListen: ":0", Routes: []string{"http://h:1"}}}, "route"},
		{"route without port", Config{Embed: &EmbedConfig{ClusterListen: ":0", Routes: []string{"h"}}}, "route"},
	} {
		_, err := Start(context.Background(), tc.cfg)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrConfig saying %q", tc.name, err, tc.want)
		}
	}
	cfg, err := Config{URLs: []string{"nats://x"}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if !validNodeID(cfg.NodeID) || cfg.Subject != "confab" || cfg.Heartbeat != time.Second || cfg.DeadAfter != 4*time.Second {
		t.Errorf("defaults: %+v", cfg)
	}
}

func TestEmbeddedServerAddressInUse(t *testing.T) {
	t.Parallel()
	a := startTestNode(t, nil, withID("a"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	host := strings.TrimPrefix(a.ClientURL(), "nats://")
	_, err := Start(ctx, Config{Embed: &EmbedConfig{Listen: host}, Logger: testLogger()})
	if err == nil || !strings.Contains(err.Error(), "listen") || ctx.Err() != nil {
		t.Errorf("second server on %s: %v, want a prompt listen error", host, err)
	}
}

func TestRouteURLCarriesCredentials(t *testing.T) {
	u, err := routeURL("10.0.0.2:6222", "confab", "p@ss")
	if err != nil || u.String() != "nats-route://confab:p%40ss@10.0.0.2:6222" {
		t.Errorf("routeURL = %v, %v", u, err)
	}
	u, err = routeURL("nats-route://other:x@h:1", "confab", "p")
	if err != nil || u.User.Username() != "other" {
		t.Errorf("explicit route credentials replaced: %v, %v", u, err)
	}
	if got := redactURLs([]string{"nats://u:secret@h:4222", "nats://h2:4222"}); strings.Contains(got, "secret") {
		t.Errorf("redactURLs leaks: %s", got)
	}
}

// The table tells a restart (same ID, new start time) from a heartbeat,
// and a bye is not undone by a heartbeat that it overtook.
func TestTableRestartAndBye(t *testing.T) {
	tb := newTable()
	t0 := time.Unix(1000, 0)
	now := time.Now()
	tb.seen(NodeInfo{ID: "x", Started: t0, LastSeen: now})
	tb.seen(NodeInfo{ID: "x", Started: t0, LastSeen: now})
	tb.seen(NodeInfo{ID: "x", Started: t0.Add(time.Second), LastSeen: now})
	if !tb.remove("x", t0.Add(time.Second), time.Minute) {
		t.Fatal("bye of a known node not applied")
	}
	tb.seen(NodeInfo{ID: "x", Started: t0.Add(time.Second), LastSeen: now}) // late heartbeat
	if tb.known("x") {
		t.Error("a late heartbeat brought back a node that said bye")
	}
	tb.seen(NodeInfo{ID: "x", Started: t0.Add(2 * time.Second), LastSeen: now}) // restarted
	var got []string
	for _, e := range tb.events {
		if e.up {
			got = append(got, "up")
		} else {
			got = append(got, string(e.reason))
		}
	}
	if want := "up restarted up bye up"; strings.Join(got, " ") != want {
		t.Errorf("events %q, want %q", got, want)
	}
	if n := tb.expire(now.Add(time.Hour), now.Add(time.Second), DownSilent); n != 1 || tb.count() != 0 {
		t.Errorf("expire dropped %d, %d left", n, tb.count())
	}
}
