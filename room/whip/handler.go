package whip

import (
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/confab-sfu/confab/room/addrlimit"
	"github.com/confab-sfu/confab/room/turn"
	"github.com/confab-sfu/confab/signal"
)

// AnswerTimeout bounds how long an answer may take after its offer arrived
// (ICE gathering): the HTTP server's write timeout must leave room for it.
const AnswerTimeout = 10 * time.Second

// maxOffer bounds a WHIP/WHEP offer.
const maxOffer = signal.MaxSDPBytes

// Config configures the handlers.
type Config struct {
	// AuthSecret, when set, makes every request present a bearer access
	// token signed with it (see package access). Without it anyone may
	// publish and watch.
	AuthSecret []byte
	// ICE are the STUN servers and TURN credentials an answer's Link
	// headers carry.
	ICE turn.ICE
	// Addrs is the per-address budget sessions count against while they
	// live (nil: no limit); the signaling WebSockets share it.
	Addrs *addrlimit.Limiter
	// OfferReadTimeout bounds reading an offer (default 10 s): a client
	// trickling its offer is answered 408 and closed.
	OfferReadTimeout time.Duration
	Logger           *slog.Logger
}

// Handler serves /whip/ and /whep/ for one Conference.
type Handler struct {
	conf Conference
	cfg  Config
	log  *slog.Logger

	mu       sync.Mutex
	sessions map[string]*entry // by the secret of their URL
}

// New returns the handlers of conf's WHIP and WHEP sessions.
func New(conf Conference, cfg Config) *Handler {
	if cfg.OfferReadTimeout <= 0 {
		cfg.OfferReadTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Handler{conf: conf, cfg: cfg, log: cfg.Logger, sessions: map[string]*entry{}}
}

// ServeWHIP serves /whip/{room} (POST an offer) and /whip/{room}/{session}
// (DELETE to stop).
func (h *Handler) ServeWHIP(w http.ResponseWriter, r *http.Request) { h.serve(w, r, WHIP) }

// ServeWHEP serves /whep/{room} (POST an offer; ?participant=P… picks
// whose tracks, ?source=camera prefers a camera to a screen share) and
// /whep/{room}/{session}.
func (h *Handler) ServeWHEP(w http.ResponseWriter, r *http.Request) { h.serve(w, r, WHEP) }

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, kind Kind) {
	hd := w.Header()
	// Players and publishers may live on other origins; the token, not the
	// origin, is what admits them.
	hd.Set("Access-Control-Allow-Origin", "*")
	hd.Set("Access-Control-Allow-Methods", "POST, DELETE, PATCH, OPTIONS")
	hd.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match")
	hd.Set("Access-Control-Expose-Headers", "Location, Link, ETag, Retry-After")
	rest := strings.TrimPrefix(r.URL.Path, "/"+string(kind)+"/")
	room, secret, hasSession := strings.Cut(rest, "/")
	if r.ContentLength != 0 && (hasSession || r.Method != http.MethodPost) {
		// Only an offer has a body worth reading; close rather than wait
		// for one (see start).
		closeAfter(w, r)
	}
	if !signal.ValidRoomName(room) || (hasSession && secret == "") {
		http.Error(w, "no such room: "+signal.RoomNameRule, http.StatusNotFound)
		return
	}
	allow := "POST, OPTIONS"
	if hasSession {
		allow = "DELETE, PATCH, OPTIONS"
	}
	switch {
	case r.Method == http.MethodOptions:
		hd.Set("Allow", allow)
		w.WriteHeader(http.StatusNoContent)
	case !hasSession && r.Method == http.MethodPost:
		h.start(w, r, kind, room)
	case hasSession && (r.Method == http.MethodDelete || r.Method == http.MethodPatch):
		h.change(w, r, kind, room, secret)
	default:
		hd.Set("Allow", allow)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// change serves a DELETE or PATCH of a session.
func (h *Handler) change(w http.ResponseWriter, r *http.Request, kind Kind, room, secret string) {
	e, s := h.lookup(kind, room, secret)
	if s == nil {
		http.Error(w, "no such session", http.StatusNotFound)
		return
	}
	if herr := e.authorize(r); herr != nil {
		h.log.Info(string(kind)+" session request refused", "room", room, "session", s.ID(), "method", r.Method,
			"status", herr.status, "remote", r.RemoteAddr)
		herr.write(w)
		return
	}
	if r.Method == http.MethodDelete {
		s.End("deleted by the client")
		w.WriteHeader(http.StatusOK)
		return
	}
	// Trickle and ICE restarts are optional (RFC 9725 4.3); the answer
	// already holds every candidate.
	w.Header().Set("Allow", "DELETE, OPTIONS")
	http.Error(w, "trickle ICE and ICE restarts are not supported: the answer holds all candidates", http.StatusMethodNotAllowed)
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
