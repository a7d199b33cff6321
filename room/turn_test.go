package room

import (
	"strings"
	"testing"
	"time"
)

func TestTURNCredentialsFollowTheRESTScheme(t *testing.T) {
	// Reference value computed independently (Python hmac): HMAC-SHA1("north", "1700003600:P1"), base64.
	c := TURNConfig{URLs: []string{"turn:127.0.0.1:3478"}, Secret: "north", TTL: time.Hour}
	s := c.CredentialsFor("P1", time.Unix(1700000000, 0))
	if s.Username != "1700003600:P1" {
		t.Fatalf("username %q", s.Username)
	}
	if s.Credential != "g4/Mhfi7OvU2OOHl6PF+PskHHT0=" {
		t.Fatalf("credential %q", s.Credential)
	}
	m := &Manager{cfg: Config{TURN: c}}
	servers := m.iceServersFor("P2")
	if len(servers) != 1 || !strings.HasSuffix(servers[0].Username, ":P2") {
		t.Fatalf("welcome ICE servers %+v", servers)
	}
}
