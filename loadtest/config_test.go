package loadtest

import (
	"fmt"
	"strings"
	"testing"
)

// nodesOf lists "name@node" for every planned participant.
func nodesOf(t *testing.T, cfg Config) string {
	t.Helper()
	if err := cfg.check(); err != nil {
		t.Fatal(err)
	}
	plans, err := cfg.plans()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, pl := range plans {
		out = append(out, fmt.Sprintf("%s@%d", pl.name, pl.node))
	}
	return strings.Join(out, " ")
}

// The documented spread: in a lecture the presenters go to the first
// node and the viewers round robin over all, the first viewer on the
// first node; a meeting goes round robin in joining order across rooms;
// "rooms" keeps each room on one node.
func TestSpread(t *testing.T) {
	three := "http://127.0.0.1:1, http://127.0.0.1:2,http://127.0.0.1:3"
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{URL: three, Scenario: "lecture", Viewers: 4, Rooms: 2},
			"presenter-0@0 v0-0@0 v0-1@1 v0-2@2 v0-3@0 presenter-1@0 v1-0@1 v1-1@2 v1-2@0 v1-3@1"},
		{Config{URL: three, Scenario: "meeting", Participants: 2, Rooms: 2},
			"p0-0@0 p0-1@1 p1-0@2 p1-1@0"},
		{Config{URL: three, Scenario: "lecture", Viewers: 1, Rooms: 4, Spread: SpreadRooms},
			"presenter-0@0 v0-0@0 presenter-1@1 v1-0@1 presenter-2@2 v2-0@2 presenter-3@0 v3-0@0"},
		{Config{URL: "http://127.0.0.1:1", Scenario: "meeting", Participants: 3},
			"p0-0@0 p0-1@0 p0-2@0"},
	} {
		if got := nodesOf(t, tc.cfg); got != tc.want {
			t.Errorf("%s %s spread %q:\n got %s\nwant %s", tc.cfg.Scenario, tc.cfg.URL, tc.cfg.Spread, got, tc.want)
		}
	}
}

func TestBadNodes(t *testing.T) {
	for _, u := range []string{"", "http://127.0.0.1:1,", "http://127.0.0.1:1,http://127.0.0.1:1", "ftp://127.0.0.1:1", "127.0.0.1:1"} {
		cfg := Config{URL: u, Scenario: "meeting", Participants: 2}
		if err := cfg.check(); err == nil {
			t.Errorf("url %q accepted", u)
		}
	}
	cfg := Config{URL: "http://127.0.0.1:1", Scenario: "meeting", Participants: 2, Spread: "diagonal"}
	if err := cfg.check(); err == nil {
		t.Error("spread diagonal accepted")
	}
}
