package room

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/confab-sfu/confab/room/access"
	"github.com/confab-sfu/confab/room/addrlimit"
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
	roomName, secret, hasSession := strings.Cut(rest, "/")
	if r.ContentLength != 0 && (hasSession || r.Method != http.MethodPost) {
		// Only an offer has a body worth reading; close rather than wait
		// for one (see startHTTPSession).
		closeAfter(w, r)
	}
	if !signal.ValidRoomName(roomName) || (hasSession && secret == "") {
		http.Error(w, "no such room: room names are 1-64 characters of A-Z a-z 0-9 - _ .", http.StatusNotFound)
		return
	}
	allow := "POST, OPTIONS"
	if hasSession {
		allow = "DELETE, PATCH, OPTIONS"
	}
	switch {
	case r.Method == http.MethodOptions:
		h.Set("Allow", allow)
		w.WriteHeader(http.StatusNoContent)
	case !hasSession && r.Method == http.MethodPost:
		m.startHTTPSession(w, r, kind, roomName)
	case hasSession && (r.Method == http.MethodDelete || r.Method == http.MethodPatch):
		s := m.httpSession(kind, roomName, secret)
		if s == nil {
			http.Error(w, "no such session", http.StatusNotFound)
			return
		}
		if herr := s.authorize(r); herr != nil {
			if herr.status == http.StatusUnauthorized {
				h.Set("WWW-Authenticate", `Bearer realm="confab"`)
			}
			m.log.Info(kind+" session request refused", "room", roomName, "session", s.id, "method", r.Method,
				"status", herr.status, "remote", r.RemoteAddr)
			http.Error(w, herr.msg, herr.status)
			return
		}
		if r.Method == http.MethodDelete {
			s.end("deleted by the client")
			w.WriteHeader(http.StatusOK)
			return
		}
		// Trickle and ICE restarts are optional (RFC 9725 4.3); the answer
		// already holds every candidate.
		h.Set("Allow", "DELETE, OPTIONS")
		http.Error(w, "trickle ICE and ICE restarts are not supported: the answer holds all candidates", http.StatusMethodNotAllowed)
	default:
		h.Set("Allow", allow)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// httpError is a refusal with its HTTP status.
type httpError struct {
	status int
	msg    string
	// challenge, with a 401, is the WWW-Authenticate header (RFC 6750).
	challenge string
}

func (e *httpError) Error() string { return e.msg }

func (e *httpError) write(w http.ResponseWriter) {
	if e.challenge != "" {
		w.Header().Set("WWW-Authenticate", e.challenge)
	}
	http.Error(w, e.msg, e.status)
}

// closeAfter has an HTTP/1 connection closed after this response, so that
// net/http does not first read the rest of a request body it will not use
// (at the client's pace). HTTP/2 resets the stream instead, and there
// "Connection: close" would end every other stream of the connection.
func closeAfter(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 1 {
		w.Header().Set("Connection", "close")
	}
}

// mediaRequest is what a WHIP or WHEP POST asks for: everything known from
// its headers and URL, checked before its body is read.
type mediaRequest struct {
	kind, room          string
	name, identity      string
	role                access.Role
	perms               access.Permissions
	bearer              string // the Authorization token, "" without one
	participant, source string // WHEP: whom to watch
}

// checkMediaRequest checks a WHIP/WHEP POST from its headers alone: the
// content type, the token, the display name and the permission the kind
// needs, so that a refused request costs no body read.
func (m *Manager) checkMediaRequest(r *http.Request, kind, roomName string) (*mediaRequest, *httpError) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/sdp" {
		return nil, &httpError{status: http.StatusUnsupportedMediaType, msg: "the body must be an SDP offer (Content-Type: application/sdp)"}
	}
	q := r.URL.Query()
	req := &mediaRequest{kind: kind, room: roomName, perms: access.Open, bearer: bearerToken(r),
		participant: q.Get("participant"), source: q.Get("source")}
	if len(m.cfg.AuthSecret) > 0 {
		c, err := access.Verify(m.cfg.AuthSecret, req.bearer, roomName, time.Now())
		if err != nil {
			challenge := `Bearer realm="confab", error="invalid_token"`
			if errors.Is(err, access.ErrTokenMissing) {
				challenge = `Bearer realm="confab"`
			}
			return nil, &httpError{status: http.StatusUnauthorized, msg: access.Code(err) + ": " + err.Error(), challenge: challenge}
		}
		req.perms, req.identity, req.role, req.name = c.Perms, c.Subject, c.Role, c.Name
	}
	if kind == "whip" {
		if !req.perms.Publish {
			return nil, &httpError{status: http.StatusForbidden, msg: "this token may not publish"}
		}
		if err := req.pickName(q.Get("name")); err != nil {
			return nil, err
		}
	} else if !req.perms.Subscribe {
		return nil, &httpError{status: http.StatusForbidden, msg: "this token may not receive"}
	}
	return req, nil
}

// pickName names a WHIP publisher: the token's name, else ?name= (checked
// like a join's name), else the identity, else "WHIP".
func (req *mediaRequest) pickName(query string) *httpError {
	if req.name != "" {
		return nil // checked with the token
	}
	if query != "" {
		name, err := signal.CheckName(query)
		if err != nil {
			return &httpError{status: http.StatusBadRequest, msg: "?name=: " + err.Message}
		}
		req.name = name
		return nil
	}
	req.name = "WHIP"
	if name, err := signal.CheckName(req.identity); req.identity != "" && err == nil {
		req.name = name
	}
	return nil
}

// readOffer reads a WHIP/WHEP body within OfferReadTimeout, so a client
// trickling it cannot hold the connection (slowloris).
func (m *Manager) readOffer(w http.ResponseWriter, r *http.Request) ([]byte, *httpError) {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(m.cfg.OfferReadTimeout))
	body, err := io.ReadAll(io.LimitReader(r.Body, maxHTTPOffer+1))
	// On a refusal the deadline stays: net/http's drain of an unread body
	// then ends with it, and the connection closes.
	if err != nil {
		closeAfter(w, r)
		if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
			return nil, &httpError{status: http.StatusRequestTimeout, msg: fmt.Sprintf("the offer did not arrive within %s", m.cfg.OfferReadTimeout)}
		}
		return nil, &httpError{status: http.StatusBadRequest, msg: "reading the offer: " + err.Error()}
	}
	if len(body) > maxHTTPOffer {
		closeAfter(w, r)
		return nil, &httpError{status: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf("the offer is larger than %d bytes", maxHTTPOffer)}
	}
	// The connection's read after the body must not time out while the
	// answer is made (that would cancel the request), and the answer must
	// have time to be written.
	_ = rc.SetReadDeadline(time.Now().Add(answerTimeout + 5*time.Second))
	_ = rc.SetWriteDeadline(time.Now().Add(answerTimeout + 5*time.Second))
	return body, nil
}

func (m *Manager) startHTTPSession(w http.ResponseWriter, r *http.Request, kind, roomName string) {
	// A request refused before its body is read is answered at once and its
	// connection closed: net/http would otherwise read (up to 256 KiB of)
	// the unread body first, at the client's pace.
	req, herr := m.checkMediaRequest(r, kind, roomName)
	if herr != nil {
		closeAfter(w, r)
		herr.write(w)
		return
	}
	// The address's budget is checked before the body is read: a client
	// over it costs nothing more.
	ip := addrlimit.OfRequest(r)
	if !m.cfg.Addrs.Reserve(ip) {
		closeAfter(w, r)
		http.Error(w, "too many connections from your address", http.StatusTooManyRequests)
		return
	}
	body, herr := m.readOffer(w, r)
	if herr == nil {
		var s *httpSession
		if kind == "whip" {
			s, herr = m.startWHIP(req)
		} else {
			s, herr = m.startWHEP(req)
		}
		if herr == nil {
			s.ip = ip
			m.answerHTTP(w, r, s, body)
			return
		}
	}
	m.cfg.Addrs.Release(ip)
	herr.write(w)
}

// answerHTTP negotiates a new session and sends the 201 with its answer
// and secret Location; a session whose negotiation fails ends.
func (m *Manager) answerHTTP(w http.ResponseWriter, r *http.Request, s *httpSession, offer []byte) {
	ctx, cancel := context.WithTimeout(r.Context(), answerTimeout)
	defer cancel()
	var send []sfu.TrackID
	if s.kind == "whep" {
		for _, r := range s.room.watchTracks(s) {
			send = append(send, r.ID())
		}
	}
	answer, err := s.peer.AnswerWhole(ctx, string(offer), send)
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
	for _, link := range iceServerLinks(m.cfg.ICE.For(s.id, time.Now())) {
		h.Add("Link", link)
	}
	h.Set("Content-Type", "application/sdp")
	h.Set("Location", s.location())
	h.Set("ETag", `"`+s.id+`"`)
	h.Set("Cache-Control", "no-store") // the Location is a credential
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
}

// newHTTPPeer creates the Peer of a WHIP/WHEP session.
func (m *Manager) newHTTPPeer(s *httpSession, roomName string, onTrack func(*sfu.Receiver)) (*sfu.Peer, error) {
	canPublish := func() bool { return false }
	if s.kind == "whip" {
		canPublish = func() bool { return s.p.permissions().Publish }
	}
	return m.engine.NewPeer(sfu.PeerParams{
		ID:         sfu.PeerID(s.id),
		Logger:     m.log.With("room", roomName, "session", s.id, "kind", s.kind),
		OnTrack:    onTrack,
		OnFailed:   func(err error) { s.end("media connection failed: " + err.Error()) },
		MaxTracks:  m.cfg.MaxTracksPerParticipant,
		CanPublish: canPublish,
	})
}

func joinError(err error) *httpError {
	switch {
	case errors.Is(err, ErrRoomFull), errors.Is(err, ErrTooManyRooms), errors.Is(err, ErrShutdown):
		return &httpError{status: http.StatusServiceUnavailable, msg: err.Error()}
	case errors.Is(err, ErrRemoved), errors.Is(err, ErrPublishRevoked):
		return &httpError{status: http.StatusForbidden, msg: err.Error()}
	}
	return &httpError{status: http.StatusInternalServerError, msg: err.Error()}
}

func (m *Manager) startWHIP(req *mediaRequest) (*httpSession, *httpError) {
	s := newHTTPSession(m, "whip", sfu.NewID("P"), req.bearer)
	s.identity = req.identity
	p := &participant{id: s.id, name: req.name, identity: req.identity, role: req.role,
		perms: access.Permissions{Publish: true}, publishOnly: true}
	p.kick = func(reason, _ string) { go s.end(reason) }
	s.p = p
	peer, err := m.newHTTPPeer(s, req.room, func(recv *sfu.Receiver) { p.room.publish(p, recv) })
	if err != nil {
		return nil, &httpError{status: http.StatusInternalServerError, msg: err.Error()}
	}
	p.peer, s.peer = peer, peer
	r, err := m.join(req.room, p)
	if err != nil {
		_ = peer.Close()
		return nil, joinError(err)
	}
	s.room = r
	m.registerHTTP(s)
	metricParticipants.Inc()
	metricJoins.WithLabelValues("ok").Inc()
	m.log.Info("joined", "room", req.room, "participant", p.id, "name", p.name, "via", "whip")
	r.welcome(p, "", nil)
	return s, nil
}

func (m *Manager) startWHEP(req *mediaRequest) (*httpSession, *httpError) {
	r := m.Room(req.room)
	if r == nil {
		return nil, &httpError{status: http.StatusNotFound, msg: "nothing is being published in room " + req.room}
	}
	s := newHTTPSession(m, "whep", sfu.NewID("V"), req.bearer)
	s.identity, s.room = req.identity, r
	peer, err := m.newHTTPPeer(s, req.room, nil)
	if err != nil {
		return nil, &httpError{status: http.StatusInternalServerError, msg: err.Error()}
	}
	s.peer = peer
	if herr := r.addWatcher(s, req.participant, req.source); herr != nil {
		_ = peer.Close()
		return nil, herr
	}
	m.registerHTTP(s)
	m.log.Info("watching", "room", req.room, "session", s.id, "via", "whep")
	return s, nil
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
		case t.recv.Kind() == webrtc.RTPCodecTypeAudio && (audio == nil || t.recv.Info().Source == sfu.SourceMicrophone):
			audio = t.recv
		case t.recv.Kind() == webrtc.RTPCodecTypeVideo && t.recv.Info().Source == sfu.SourceScreen:
			screen = t.recv
		case t.recv.Kind() == webrtc.RTPCodecTypeVideo:
			camera = t.recv
		}
	}
	video := screen
	if video == nil || sfu.Source(source) == sfu.SourceCamera {
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
