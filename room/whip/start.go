package whip

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"time"

	"github.com/confab-sfu/confab/room/access"
	"github.com/confab-sfu/confab/room/addrlimit"
	"github.com/confab-sfu/confab/sfu"
	"github.com/confab-sfu/confab/signal"
)

// start serves a POST: a new session.
func (h *Handler) start(w http.ResponseWriter, r *http.Request, kind Kind, room string) {
	// A request refused before its body is read is answered at once and its
	// connection closed: net/http would otherwise read (up to 256 KiB of)
	// the unread body first, at the client's pace.
	req, bearer, herr := h.check(r, kind, room)
	if herr != nil {
		closeAfter(w, r)
		herr.write(w)
		return
	}
	// The address's budget is checked before the body is read: a client
	// over it costs nothing more.
	addr := addrlimit.OfRequest(r)
	if !h.cfg.Addrs.Reserve(addr) {
		closeAfter(w, r)
		http.Error(w, "too many connections from your address", http.StatusTooManyRequests)
		return
	}
	e := newEntry(kind, room, bearer, addr)
	offer, herr := h.readOffer(w, r)
	if herr != nil {
		h.forget(e)
		herr.write(w)
		return
	}
	// Listed before the conference knows it, so that an end that comes at
	// once (a moderator, the room closing) finds it to forget.
	h.register(e)
	req.Ended = func() { h.forget(e) }
	var s Session
	var err error
	if kind == WHIP {
		s, err = h.conf.NewPublisher(req)
	} else {
		s, err = h.conf.NewViewer(req)
	}
	if err != nil {
		h.forget(e)
		refusal(err).write(w)
		return
	}
	h.setSession(e, s)
	h.answer(w, r, e, s, offer)
}

// answer negotiates a new session and sends the 201 with its answer and
// secret Location; a session whose negotiation fails ends.
func (h *Handler) answer(w http.ResponseWriter, r *http.Request, e *entry, s Session, offer []byte) {
	ctx, cancel := context.WithTimeout(r.Context(), AnswerTimeout)
	defer cancel()
	answer, err := s.Answer(ctx, string(offer))
	if err != nil {
		s.End("negotiation failed: " + err.Error())
		refusal(err).write(w)
		return
	}
	hd := w.Header()
	for _, link := range iceServerLinks(h.cfg.ICE.For(s.ID(), time.Now())) {
		hd.Add("Link", link)
	}
	hd.Set("Content-Type", "application/sdp")
	hd.Set("Location", e.location())
	hd.Set("ETag", `"`+s.ID()+`"`)
	hd.Set("Cache-Control", "no-store") // the Location is a credential
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
}

// check checks a POST from its headers alone: the content type, the token,
// the display name and the permission the kind needs, so that a refused
// request costs no body read. It returns the request for the conference
// and the bearer token the session is bound to.
func (h *Handler) check(r *http.Request, kind Kind, room string) (Request, string, *httpError) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/sdp" {
		return Request{}, "", &httpError{status: http.StatusUnsupportedMediaType, msg: "the body must be an SDP offer (Content-Type: application/sdp)"}
	}
	q := r.URL.Query()
	req, perms, bearer := Request{Room: room}, access.Open, bearerToken(r)
	if len(h.cfg.AuthSecret) > 0 {
		c, err := access.Verify(h.cfg.AuthSecret, bearer, room, time.Now())
		if err != nil {
			challenge := challengeInvalid
			if errors.Is(err, access.ErrTokenMissing) {
				challenge = challengeMissing
			}
			return Request{}, "", &httpError{status: http.StatusUnauthorized, msg: access.Code(err) + ": " + err.Error(), challenge: challenge}
		}
		perms, req.Identity, req.Role, req.Name, req.Record = c.Perms, c.Subject, c.Role, c.Name, c.Record
	}
	if kind == WHEP {
		if !perms.Subscribe {
			return Request{}, "", &httpError{status: http.StatusForbidden, msg: "this token may not receive"}
		}
		req.Participant = q.Get("participant")
		switch src := sfu.Source(q.Get("source")); src {
		case "", sfu.SourceScreen, sfu.SourceCamera:
			req.Source = src
		default:
			return Request{}, "", &httpError{status: http.StatusBadRequest, msg: fmt.Sprintf("?source=%q: want camera or screen", src)}
		}
		return req, bearer, nil
	}
	if !perms.Publish {
		return Request{}, "", &httpError{status: http.StatusForbidden, msg: "this token may not publish"}
	}
	name, herr := publisherName(req.Name, q.Get("name"), req.Identity)
	if herr != nil {
		return Request{}, "", herr
	}
	req.Name = name
	return req, bearer, nil
}

// publisherName names a WHIP publisher: the token's name (checked with the
// token), else ?name= (checked like a join's name), else the identity,
// else "WHIP".
func publisherName(token, query, identity string) (string, *httpError) {
	if token != "" {
		return token, nil
	}
	if query != "" {
		name, err := signal.CheckName(query)
		if err != nil {
			return "", &httpError{status: http.StatusBadRequest, msg: "?name=: " + err.Message}
		}
		return name, nil
	}
	if name, err := signal.CheckName(identity); identity != "" && err == nil {
		return name, nil
	}
	return "WHIP", nil
}

// readOffer reads an offer within OfferReadTimeout, so a client trickling
// it cannot hold the connection (slowloris).
func (h *Handler) readOffer(w http.ResponseWriter, r *http.Request) ([]byte, *httpError) {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(h.cfg.OfferReadTimeout))
	body, err := io.ReadAll(io.LimitReader(r.Body, maxOffer+1))
	// On a refusal the deadline stays: net/http's drain of an unread body
	// then ends with it, and the connection closes.
	if err != nil {
		closeAfter(w, r)
		if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
			return nil, &httpError{status: http.StatusRequestTimeout, msg: fmt.Sprintf("the offer did not arrive within %s", h.cfg.OfferReadTimeout)}
		}
		return nil, &httpError{status: http.StatusBadRequest, msg: "reading the offer: " + err.Error()}
	}
	if len(body) > maxOffer {
		closeAfter(w, r)
		return nil, &httpError{status: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf("the offer is larger than %d bytes", maxOffer)}
	}
	// The connection's read after the body must not time out while the
	// answer is made (that would cancel the request), and the answer must
	// have time to be written.
	_ = rc.SetReadDeadline(time.Now().Add(AnswerTimeout + 5*time.Second))
	_ = rc.SetWriteDeadline(time.Now().Add(AnswerTimeout + 5*time.Second))
	return body, nil
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
