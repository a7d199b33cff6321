package room

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/confab-sfu/confab/sfu"
	"github.com/confab-sfu/confab/signal"
	"github.com/pion/webrtc/v4"
)

// WHIP (RFC 9725) and WHEP: media sessions negotiated with one HTTP
// request, for broadcasting tools (OBS) and embeddable players. A WHIP
// publisher is a room participant that only publishes; a WHEP viewer is
// part of the room's audience, counted but never announced, and receives
// one participant's audio and video. Neither can renegotiate, so neither
// is ever offered anything after its answer.

// httpSession is one WHIP or WHEP session.
type httpSession struct {
	id    string
	kind  string // "whip" or "whep"
	room  *Room
	p     *participant // WHIP: the publishing participant
	peer  *sfu.Peer
	mgr   *Manager
	ip    string // counted against MaxConnsPerIP while the session lives
	once  sync.Once
	ended chan struct{}
}

// end stops the session: its peer closes and it leaves its room.
func (h *httpSession) end(reason string) {
	h.once.Do(func() {
		close(h.ended)
		h.mgr.httpMu.Lock()
		delete(h.mgr.httpSessions, h.id)
		h.mgr.httpMu.Unlock()
		h.mgr.releaseIP(h.ip)
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

// maxHTTPOffer bounds a WHIP/WHEP offer.
const maxHTTPOffer = signal.MaxSDPBytes

// answerTimeout bounds how long a WHIP/WHEP answer may take (ICE gathering).
const answerTimeout = 10 * time.Second

// ServeWHIP serves /whip/{room} (POST an offer) and /whip/{room}/{session}
// (DELETE to stop).
func (m *Manager) ServeWHIP(w http.ResponseWriter, r *http.Request) { m.serveHTTPMedia(w, r, "whip") }

// ServeWHEP serves /whep/{room} (POST an offer; ?participant=P… picks whose
// tracks, ?source=screen prefers a screen share) and /whep/{room}/{session}.
func (m *Manager) ServeWHEP(w http.ResponseWriter, r *http.Request) { m.serveHTTPMedia(w, r, "whep") }

func (m *Manager) serveHTTPMedia(w http.ResponseWriter, r *http.Request, kind string) {
	h := w.Header()
	// Players and publishers may live on other origins; the token, not the
	// origin, is what admits them.
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", "POST, DELETE, PATCH, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match")
	h.Set("Access-Control-Expose-Headers", "Location, Link, ETag")
	rest := strings.TrimPrefix(r.URL.Path, "/"+kind+"/")
	roomName, sessionID, hasSession := strings.Cut(rest, "/")
	if !ValidRoomName(roomName) || (hasSession && sessionID == "") {
		http.Error(w, "no such room: room names are 1-64 characters of A-Z a-z 0-9 - _ .", http.StatusNotFound)
		return
	}
	switch {
	case r.Method == http.MethodOptions:
		if hasSession {
			h.Set("Allow", "DELETE, PATCH, OPTIONS")
		} else {
			h.Set("Allow", "POST, OPTIONS")
		}
		w.WriteHeader(http.StatusNoContent)
	case !hasSession && r.Method == http.MethodPost:
		m.startHTTPSession(w, r, kind, roomName)
	case hasSession && r.Method == http.MethodDelete:
		s := m.httpSession(kind, roomName, sessionID)
		if s == nil {
			http.Error(w, "no such session", http.StatusNotFound)
			return
		}
		s.end("deleted by the client")
		w.WriteHeader(http.StatusOK)
	case hasSession && r.Method == http.MethodPatch:
		if m.httpSession(kind, roomName, sessionID) == nil {
			http.Error(w, "no such session", http.StatusNotFound)
			return
		}
		// Trickle and ICE restarts are optional (RFC 9725 4.3); the answer
		// already holds every candidate.
		h.Set("Allow", "DELETE, OPTIONS")
		http.Error(w, "trickle ICE and ICE restarts are not supported: the answer holds all candidates", http.StatusMethodNotAllowed)
	default:
		if hasSession {
			h.Set("Allow", "DELETE, PATCH, OPTIONS")
		} else {
			h.Set("Allow", "POST, OPTIONS")
		}
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func (m *Manager) httpSession(kind, roomName, id string) *httpSession {
	m.httpMu.Lock()
	defer m.httpMu.Unlock()
	s := m.httpSessions[id]
	if s == nil || s.kind != kind || s.room.name != roomName {
		return nil
	}
	return s
}

// httpError is a refusal with its HTTP status.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

// authorizeHTTP checks the bearer token of a WHIP/WHEP request.
func (m *Manager) authorizeHTTP(r *http.Request, roomName string) (*Claims, *httpError) {
	if len(m.cfg.AuthSecret) == 0 {
		return nil, nil
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		tok = ""
	}
	c, err := verifyToken(m.cfg.AuthSecret, strings.TrimSpace(tok), roomName, time.Now())
	if err != nil {
		return nil, &httpError{http.StatusUnauthorized, tokenErrorCode(err) + ": " + err.Error()}
	}
	return c, nil
}

func (m *Manager) startHTTPSession(w http.ResponseWriter, r *http.Request, kind, roomName string) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/sdp" {
		http.Error(w, "the body must be an SDP offer (Content-Type: application/sdp)", http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxHTTPOffer+1))
	if err != nil {
		http.Error(w, "reading the offer: "+err.Error(), http.StatusBadRequest)
		return
	}
	if len(body) > maxHTTPOffer {
		http.Error(w, fmt.Sprintf("the offer is larger than %d bytes", maxHTTPOffer), http.StatusRequestEntityTooLarge)
		return
	}
	claims, herr := m.authorizeHTTP(r, roomName)
	if herr != nil {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		http.Error(w, herr.msg, herr.status)
		return
	}
	perms := openPermissions
	name, identity, role := strings.TrimSpace(r.URL.Query().Get("name")), "", ""
	if claims != nil {
		perms, identity, role = claims.Perms, claims.Subject, claims.Role
		if perms == (Permissions{}) {
			perms, _ = RolePermissions(claims.Role)
		}
		if claims.Name != "" {
			name = claims.Name
		}
	}
	if name == "" || len(name) > 64 {
		name = strings.ToUpper(kind)
		if identity != "" {
			name = identity
		}
	}
	ip := clientIP(r)
	if !m.reserveIP(ip) {
		http.Error(w, "too many connections from your address", http.StatusTooManyRequests)
		return
	}
	var s *httpSession
	if kind == "whip" {
		if !perms.Publish {
			m.releaseIP(ip)
			http.Error(w, "this token may not publish", http.StatusForbidden)
			return
		}
		s, herr = m.startWHIP(roomName, name, identity, role)
	} else {
		if !perms.Subscribe {
			m.releaseIP(ip)
			http.Error(w, "this token may not receive", http.StatusForbidden)
			return
		}
		s, herr = m.startWHEP(roomName, r.URL.Query().Get("participant"), r.URL.Query().Get("source"))
	}
	if herr != nil {
		m.releaseIP(ip)
		http.Error(w, herr.msg, herr.status)
		return
	}
	s.ip = ip
	ctx, cancel := context.WithTimeout(r.Context(), answerTimeout)
	defer cancel()
	var send []*sfu.Receiver
	if kind == "whep" {
		send = s.room.watchTracks(s)
	}
	answer, err := s.peer.AnswerWhole(ctx, string(body), send)
	if err != nil {
		s.end("negotiation failed: " + err.Error())
		status := http.StatusBadRequest
		switch {
		case errors.Is(err, sfu.ErrPublishDenied):
			status = http.StatusForbidden
		case errors.Is(err, sfu.ErrTooManyTracks):
			status = http.StatusBadRequest
		case !errors.Is(err, sfu.ErrInvalidSDP):
			status = http.StatusInternalServerError
		}
		http.Error(w, err.Error(), status)
		return
	}
	h := w.Header()
	for _, link := range iceServerLinks(m.iceServersFor(s.id)) {
		h.Add("Link", link)
	}
	h.Set("Content-Type", "application/sdp")
	h.Set("Location", "/"+kind+"/"+roomName+"/"+s.id)
	h.Set("ETag", `"`+s.id+`"`)
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
}

// newHTTPPeer creates the Peer of a WHIP/WHEP session.
func (m *Manager) newHTTPPeer(s *httpSession, roomName string, onTrack func(*sfu.Receiver)) (*sfu.Peer, error) {
	return m.engine.NewPeer(sfu.PeerParams{
		ID:         s.id,
		Logger:     m.log.With("room", roomName, "session", s.id, "kind", s.kind),
		OnTrack:    onTrack,
		OnFailed:   func(err error) { s.end("media connection failed: " + err.Error()) },
		MaxTracks:  m.cfg.MaxTracksPerParticipant,
		CanPublish: func() bool { return s.kind == "whip" },
	})
}

func joinError(err error) *httpError {
	switch {
	case errors.Is(err, ErrRoomFull), errors.Is(err, ErrTooManyRooms), errors.Is(err, ErrShutdown):
		return &httpError{http.StatusServiceUnavailable, err.Error()}
	case errors.Is(err, ErrRemoved):
		return &httpError{http.StatusForbidden, err.Error()}
	}
	return &httpError{http.StatusInternalServerError, err.Error()}
}

func (m *Manager) startWHIP(roomName, name, identity, role string) (*httpSession, *httpError) {
	s := &httpSession{id: sfu.NewID("P"), kind: "whip", mgr: m, ended: make(chan struct{})}
	p := &participant{id: s.id, name: name, identity: identity, role: role,
		perms: Permissions{Publish: true}}
	p.kick = func(reason, _ string) { go s.end(reason) }
	peer, err := m.newHTTPPeer(s, roomName, func(recv *sfu.Receiver) { p.room.publish(p, recv) })
	if err != nil {
		return nil, &httpError{http.StatusInternalServerError, err.Error()}
	}
	p.peer, s.p, s.peer = peer, p, peer
	r, err := m.join(roomName, p)
	if err != nil {
		_ = peer.Close()
		return nil, joinError(err)
	}
	s.room = r
	m.registerHTTP(s)
	metricParticipants.Inc()
	metricJoins.WithLabelValues("ok").Inc()
	m.log.Info("joined", "room", roomName, "participant", p.id, "name", name, "via", "whip")
	r.welcome(p, "", nil)
	return s, nil
}

func (m *Manager) startWHEP(roomName, participantID, source string) (*httpSession, *httpError) {
	r := m.Room(roomName)
	if r == nil {
		return nil, &httpError{http.StatusNotFound, "nothing is being published in room " + roomName}
	}
	s := &httpSession{id: sfu.NewID("V"), kind: "whep", mgr: m, room: r, ended: make(chan struct{})}
	peer, err := m.newHTTPPeer(s, roomName, nil)
	if err != nil {
		return nil, &httpError{http.StatusInternalServerError, err.Error()}
	}
	s.peer = peer
	if herr := r.addWatcher(s, participantID, source); herr != nil {
		_ = peer.Close()
		return nil, herr
	}
	m.registerHTTP(s)
	m.log.Info("watching", "room", roomName, "session", s.id, "via", "whep")
	return s, nil
}

func (m *Manager) registerHTTP(s *httpSession) {
	m.httpMu.Lock()
	m.httpSessions[s.id] = s
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

// iceServerLinks renders ICE servers as RFC 9725 Link headers.
func iceServerLinks(servers []signal.ICEServer) []string {
	var out []string
	for _, s := range servers {
		for _, u := range s.URLs {
			l := "<" + u + `>; rel="ice-server"`
			if s.Username != "" {
				l += fmt.Sprintf(`; username=%q; credential=%q; credential-type="password"`, s.Username, s.Credential)
			}
			out = append(out, l)
		}
	}
	return out
}

// watchTarget picks whose tracks a WHEP viewer gets: the named participant,
// or the first (in join order) who publishes video; its audio, and its
// screen share or camera (source chooses; a screen share by default, the
// main content of a lecture).
func (r *Room) watchTargetLocked(participantID, source string) (*participant, []*sfu.Receiver) {
	var owner *participant
	if participantID != "" {
		owner = r.participants[participantID]
	} else {
		for _, id := range r.order {
			p := r.participants[id]
			for _, t := range r.tracks {
				if t.owner == p && t.recv.Kind() == webrtc.RTPCodecTypeVideo {
					owner = p
					break
				}
			}
			if owner != nil {
				break
			}
		}
	}
	if owner == nil {
		return nil, nil
	}
	var audio, camera, screen *sfu.Receiver
	for _, t := range r.tracks {
		if t.owner != owner {
			continue
		}
		switch {
		case t.recv.Kind() == webrtc.RTPCodecTypeAudio && (audio == nil || t.recv.Source() == "microphone"):
			audio = t.recv
		case t.recv.Kind() == webrtc.RTPCodecTypeVideo && t.recv.Source() == "screen":
			screen = t.recv
		case t.recv.Kind() == webrtc.RTPCodecTypeVideo:
			camera = t.recv
		}
	}
	video := screen
	if video == nil || source == "camera" {
		video = camera
	}
	if video == nil {
		video = screen
	}
	var out []*sfu.Receiver
	for _, rc := range []*sfu.Receiver{audio, video} {
		if rc != nil {
			out = append(out, rc)
		}
	}
	return owner, out
}

// reserveIP counts one more connection or session from ip, unless that
// would pass MaxConnsPerIP.
func (m *Manager) reserveIP(ip string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cfg.MaxConnsPerIP > 0 && m.perIP[ip] >= m.cfg.MaxConnsPerIP {
		return false
	}
	m.perIP[ip]++
	return true
}

func (m *Manager) releaseIP(ip string) {
	if ip == "" {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.perIP[ip]--; m.perIP[ip] <= 0 {
		delete(m.perIP, ip)
	}
}
