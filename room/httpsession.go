package room

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strings"
	"sync"

	"github.com/confab-sfu/confab/sfu"
)

// httpSession is one WHIP or WHEP session. Its URL is the only handle on
// it: /{kind}/{room}/{secret}. The secret is 128 random bits told only to
// the client that created the session (in Location), so on an open server
// nobody else can end it; with tokens, DELETE and PATCH must also carry the
// bearer token that created it. The public id, which others may see (a
// WHIP publisher's participant id), never addresses the session.
type httpSession struct {
	id       string // public: the Peer, logs, TURN usernames; a WHIP publisher's participant id
	secret   string // the last segment of the session URL
	kind     string // "whip" or "whep"
	identity string // the token's subject; "" on an open server
	// tokenHash is the SHA-256 of the bearer token that created the
	// session (hasToken false when there was none): kept to compare in
	// constant time, never the token itself.
	tokenHash [sha256.Size]byte
	hasToken  bool
	room      *Room
	p         *participant // WHIP: the publishing participant
	peer      *sfu.Peer
	mgr       *Manager
	ip        string // counted against MaxConnsPerIP while the session lives
	once      sync.Once
	ended     chan struct{}
}

func newHTTPSession(m *Manager, kind, id, bearer string) *httpSession {
	s := &httpSession{id: id, secret: newSessionSecret(kind), kind: kind, mgr: m, ended: make(chan struct{})}
	if bearer != "" {
		s.tokenHash, s.hasToken = sha256.Sum256([]byte(bearer)), true
	}
	return s
}

// newSessionSecret is a session URL's last segment: the kind's letter
// (V for WHEP, W for WHIP) and 128 random bits.
func newSessionSecret(kind string) string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on supported platforms
	prefix := "W"
	if kind == "whep" {
		prefix = "V"
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// location is the session's URL path.
func (h *httpSession) location() string { return "/" + h.kind + "/" + h.room.name + "/" + h.secret }

// bearerToken is the request's "Authorization: Bearer" token, or "".
func bearerToken(r *http.Request) string {
	auth := r.Header.Get("Authorization")
	if len(auth) < 7 || !strings.EqualFold(auth[:7], "bearer ") {
		return ""
	}
	return strings.TrimSpace(auth[7:])
}

// authorize checks that a DELETE or PATCH comes from the session's
// creator: with the token it was created with, when it was created with
// one (401 without a token, 403 with another). A session created without
// a token (an open server) is authorized by its secret URL alone.
func (h *httpSession) authorize(r *http.Request) *httpError {
	if !h.hasToken {
		return nil
	}
	tok := bearerToken(r)
	if tok == "" {
		return &httpError{status: http.StatusUnauthorized, msg: "this session was created with a bearer token: send the same one"}
	}
	sum := sha256.Sum256([]byte(tok))
	if subtle.ConstantTimeCompare(sum[:], h.tokenHash[:]) != 1 {
		return &httpError{status: http.StatusForbidden, msg: "this is not the token that created the session"}
	}
	return nil
}

// end stops the session: its peer closes and it leaves its room.
func (h *httpSession) end(reason string) {
	h.once.Do(func() {
		close(h.ended)
		h.mgr.httpMu.Lock()
		delete(h.mgr.httpSessions, h.secret)
		h.mgr.httpMu.Unlock()
		if h.ip != "" {
			h.mgr.cfg.Addrs.Release(h.ip)
		}
		h.mgr.log.Info(h.kind+" session ended", "room", h.room.name, "session", h.id, "reason", reason)
		if h.p != nil {
			h.room.remove(h.p)
		} else {
			h.room.removeWatcher(h)
		}
		_ = h.peer.Close()
		if h.p != nil {
			metricParticipants.Dec()
		}
		h.mgr.removeIfEmpty(h.room)
	})
}

// httpSession finds a live session by its URL.
func (m *Manager) httpSession(kind, roomName, secret string) *httpSession {
	m.httpMu.Lock()
	defer m.httpMu.Unlock()
	s := m.httpSessions[secret]
	if s == nil || s.kind != kind || s.room.name != roomName {
		return nil
	}
	return s
}

func (m *Manager) registerHTTP(s *httpSession) {
	m.httpMu.Lock()
	m.httpSessions[s.secret] = s
	m.httpMu.Unlock()
}

// closeHTTPSessions ends every WHIP/WHEP session (shutdown).
func (m *Manager) closeHTTPSessions() {
	m.httpMu.Lock()
	all := make([]*httpSession, 0, len(m.httpSessions))
	for _, s := range m.httpSessions {
		all = append(all, s)
	}
	m.httpMu.Unlock()
	for _, s := range all {
		s.end("server is shutting down")
	}
}
