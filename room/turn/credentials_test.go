package turn

import (
	"strings"
	"testing"
	"time"

	"github.com/confab-sfu/confab/signal"
)

func TestCredentialsFollowTheRESTScheme(t *testing.T) {
	// Reference value computed independently (Python hmac): HMAC-SHA1("north", "1700003600:P1"), base64.
	c := Credentials{URLs: []string{"turn:127.0.0.1:3478"}, Secret: "north", TTL: time.Hour}
	s := c.For("P1", time.Unix(1700000000, 0))
	if s.Username != "1700003600:P1" {
		t.Fatalf("username %q", s.Username)
	}
	if s.Credential != "g4/Mhfi7OvU2OOHl6PF+PskHHT0=" {
		t.Fatalf("credential %q", s.Credential)
	}
	if s := (Credentials{Secret: "north"}).For("P1", time.Unix(0, 0)); s.Username != "43200:P1" {
		t.Fatalf("default ttl: username %q, want 12 h", s.Username)
	}
}

func TestICEServersForAUser(t *testing.T) {
	stun := signal.ICEServer{URLs: []string{"stun:stun.example.org"}}
	ice := ICE{Servers: []signal.ICEServer{stun}, TURN: Credentials{URLs: []string{"turn:x"}, Secret: "s"}}
	servers := ice.For("P2", time.Now())
	if len(servers) != 2 || servers[0].URLs[0] != stun.URLs[0] || !strings.HasSuffix(servers[1].Username, ":P2") {
		t.Fatalf("ICE servers %+v", servers)
	}
	for what, c := range map[string]Credentials{"no secret": {URLs: []string{"turn:x"}}, "no urls": {Secret: "s"}} {
		if got := (ICE{Servers: []signal.ICEServer{stun}, TURN: c}).For("P2", time.Now()); len(got) != 1 {
			t.Errorf("%s: %+v, want the STUN server only", what, got)
		}
	}
}
