package room

import (
	"context"
	"log/slog"
	"sync"

	"github.com/confab-sfu/confab/room/whip"
	"github.com/confab-sfu/confab/sfu"
)

// httpSession is one WHIP publisher or WHEP viewer in a room: a
// whip.Session. Package whip knows it by its secret URL; here it is its
// public id, its room and its media.
type httpSession struct {
	id       string // public: the Peer, logs, TURN usernames; a WHIP publisher's participant id
	kind     whip.Kind
	identity string       // the token's subject; "" on an open server
	log      *slog.Logger // carries room, the session (or participant) and kind
	room     *Room
	p        *participant // WHIP: the publishing participant
	peer     Peer
	mgr      *Manager
	ended    func() // tells package whip
	once     sync.Once
}

func (m *Manager) newHTTPSession(kind whip.Kind, id string, req whip.Request) *httpSession {
	ended := req.Ended
	if ended == nil {
		ended = func() {}
	}
	key := "session"
	if kind == whip.WHIP {
		key = "participant" // a WHIP publisher is one
	}
	return &httpSession{id: id, kind: kind, identity: req.Identity, mgr: m, ended: ended,
		log: m.log.With("room", req.Room, key, id, "kind", string(kind))}
}

// ID is the session's public id.
func (h *httpSession) ID() string { return h.id }

// Answer negotiates the session once: a viewer is sent what it watches.
func (h *httpSession) Answer(ctx context.Context, offer string) (string, error) {
	var send []sfu.TrackID
	if h.kind == whip.WHEP {
		send = h.room.watchTracks(h)
		// What members of other nodes publish must be relayed here first.
		wctx, cancel := context.WithTimeout(ctx, relayWaitForViewer)
		h.room.awaitRelayed(wctx, send)
		cancel()
	}
	answer, err := h.peer.AnswerWhole(ctx, offer, send)
	if err != nil {
		return "", answerRefusal(err)
	}
	return answer, nil
}

// End stops the session: it leaves its room and its peer closes.
func (h *httpSession) End(reason string) {
	h.once.Do(func() {
		h.mgr.dropHTTPSession(h)
		h.log.Info(string(h.kind)+" session ended", "reason", reason)
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
		h.ended()
	})
}

func (m *Manager) addHTTPSession(s *httpSession) {
	m.httpMu.Lock()
	defer m.httpMu.Unlock()
	m.httpSessions[s] = struct{}{}
}

func (m *Manager) dropHTTPSession(s *httpSession) {
	m.httpMu.Lock()
	defer m.httpMu.Unlock()
	delete(m.httpSessions, s)
}

// closeHTTPSessions ends every WHIP/WHEP session (shutdown).
func (m *Manager) closeHTTPSessions() {
	m.httpMu.Lock()
	all := make([]*httpSession, 0, len(m.httpSessions))
	for s := range m.httpSessions {
		all = append(all, s)
	}
	m.httpMu.Unlock()
	for _, s := range all {
		s.End("server is shutting down")
	}
}
