package room

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"strconv"
	"time"

	"github.com/confab-sfu/confab/signal"
)

// TURNConfig makes time-limited TURN credentials with the TURN REST API
// scheme that coturn's use-auth-secret accepts: the username is
// "<expiry unix time>:<participant id>" and the password is
// base64(HMAC-SHA1(secret, username)).
type TURNConfig struct {
	URLs   []string      // e.g. turn:turn.example.org:3478?transport=udp, turns:turn.example.org:443?transport=tcp
	Secret string        // shared with the TURN server's static-auth-secret
	TTL    time.Duration // how long credentials stay valid (default 12 h)
}

// CredentialsFor returns the ICE server entry for one participant.
func (t TURNConfig) CredentialsFor(participant string, now time.Time) signal.ICEServer {
	ttl := t.TTL
	if ttl <= 0 {
		ttl = 12 * time.Hour
	}
	user := strconv.FormatInt(now.Add(ttl).Unix(), 10) + ":" + participant
	mac := hmac.New(sha1.New, []byte(t.Secret))
	mac.Write([]byte(user))
	return signal.ICEServer{URLs: t.URLs, Username: user, Credential: base64.StdEncoding.EncodeToString(mac.Sum(nil))}
}

// iceServersFor is what welcome hands one participant: the configured
// STUN servers plus, when TURN is set up, fresh TURN credentials.
func (m *Manager) iceServersFor(participant string) []signal.ICEServer {
	out := append([]signal.ICEServer(nil), m.cfg.ICEServers...)
	if len(m.cfg.TURN.URLs) > 0 && m.cfg.TURN.Secret != "" {
		out = append(out, m.cfg.TURN.CredentialsFor(participant, time.Now()))
	}
	return out
}
