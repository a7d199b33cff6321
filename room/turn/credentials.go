// Package turn gets clients through networks that block direct UDP to the
// SFU: it hands out time-limited TURN credentials in the TURN REST scheme
// (the one coturn's use-auth-secret accepts), and runs an embedded TURN
// server that accepts the same credentials, so a deployment can move
// between the two without changing anything else.
package turn

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"strconv"
	"time"

	"github.com/confab-sfu/confab/signal"
)

// DefaultTTL is how long credentials stay valid when Credentials.TTL is 0.
const DefaultTTL = 12 * time.Hour

// Credentials makes time-limited TURN credentials: the username is
// "<expiry unix time>:<user>" and the password is
// base64(HMAC-SHA1(secret, username)).
type Credentials struct {
	URLs   []string      // e.g. turn:turn.example.org:3478?transport=udp, turns:turn.example.org:443?transport=tcp
	Secret string        // shared with the TURN server's static-auth-secret
	TTL    time.Duration // how long credentials stay valid (default DefaultTTL)
}

// Enabled reports whether there is a TURN server to hand credentials for.
func (c Credentials) Enabled() bool { return len(c.URLs) > 0 && c.Secret != "" }

// For returns the ICE server entry of one user (a participant's or a
// session's id), valid from now for the TTL.
func (c Credentials) For(user string, now time.Time) signal.ICEServer {
	ttl := c.TTL
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	name := strconv.FormatInt(now.Add(ttl).Unix(), 10) + ":" + user
	mac := hmac.New(sha1.New, []byte(c.Secret))
	mac.Write([]byte(name))
	return signal.ICEServer{URLs: c.URLs, Username: name, Credential: base64.StdEncoding.EncodeToString(mac.Sum(nil))}
}

// ICE is what clients are told to use to reach the media: fixed servers
// (STUN) and, when TURN is set up, fresh TURN credentials.
type ICE struct {
	Servers []signal.ICEServer
	TURN    Credentials
}

// For returns the ICE servers to give one user now.
func (i ICE) For(user string, now time.Time) []signal.ICEServer {
	out := append([]signal.ICEServer(nil), i.Servers...)
	if i.TURN.Enabled() {
		out = append(out, i.TURN.For(user, now))
	}
	return out
}
