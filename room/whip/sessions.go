package whip

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strings"
	"sync"
)

// entry is one live session as the HTTP side knows it. Its URL is the only
// handle on it: /{kind}/{room}/{secret}. The secret is 128 random bits told
// only to the client that created the session (in Location), so on an open
// server nobody else can end it; with tokens, DELETE and PATCH must also
// carry the bearer token that created it. The session's public id, which
// others may see (a WHIP publisher's participant id), never addresses it.
type entry struct {
	kind   Kind
	room   string
	secret string
	// tokenHash is the SHA-256 of the bearer token that created the
	// session (hasToken false when there was none): kept to compare in
	// constant time, never the token itself.
	tokenHash [sha256.Size]byte
	hasToken  bool
	addr      string // the per-address budget it holds while it lives

	session Session // nil until the conference admitted it
	forgot  sync.Once
}

func newEntry(kind Kind, room, bearer, addr string) *entry {
	e := &entry{kind: kind, room: room, secret: newSecret(kind), addr: addr}
	if bearer != "" {
		e.tokenHash, e.hasToken = sha256.Sum256([]byte(bearer)), true
	}
	return e
}

// newSecret is a session URL's last segment: the kind's letter (W for
// WHIP, V for WHEP) and 128 random bits.
func newSecret(kind Kind) string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on supported platforms
	prefix := "W"
	if kind == WHEP {
		prefix = "V"
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// location is the session's URL path.
func (e *entry) location() string { return "/" + string(e.kind) + "/" + e.room + "/" + e.secret }

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
func (e *entry) authorize(r *http.Request) *httpError {
	if !e.hasToken {
		return nil
	}
	tok := bearerToken(r)
	if tok == "" {
		return &httpError{status: http.StatusUnauthorized, msg: "this session was created with a bearer token: send the same one",
			challenge: challengeMissing}
	}
	sum := sha256.Sum256([]byte(tok))
	if subtle.ConstantTimeCompare(sum[:], e.tokenHash[:]) != 1 {
		return &httpError{status: http.StatusForbidden, msg: "this is not the token that created the session"}
	}
	return nil
}

// register lists e under its secret until it is forgotten.
func (h *Handler) register(e *entry) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sessions[e.secret] = e
}

// setSession records the session the conference admitted for e.
func (h *Handler) setSession(e *entry, s Session) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e.session = s
}

// forget drops e and gives its address's place back, once.
func (h *Handler) forget(e *entry) {
	e.forgot.Do(func() {
		h.mu.Lock()
		delete(h.sessions, e.secret)
		h.mu.Unlock()
		h.cfg.Addrs.Release(e.addr)
	})
}

// lookup finds a live, admitted session by its URL.
func (h *Handler) lookup(kind Kind, room, secret string) (*entry, Session) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e := h.sessions[secret]
	if e == nil || e.kind != kind || e.room != room || e.session == nil {
		return nil, nil
	}
	return e, e.session
}
