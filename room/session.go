package room

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/confab-sfu/confab/room/access"
	"github.com/confab-sfu/confab/sfu"
	"github.com/confab-sfu/confab/signal"
	"github.com/pion/webrtc/v4"
	"nhooyr.io/websocket"
)

// session serves one signaling WebSocket: before join it is a bare
// connection, after join it drives one participant.
type session struct {
	mgr  *Manager
	conn *signal.Conn
	p    *participant
	bye  sync.Once
	// busy is held while a joined participant's request is handled.
	busy sync.Mutex
}

func newSession(m *Manager, c *signal.Conn) *session { return &session{mgr: m, conn: c} }

// serve reads messages until the connection ends, then cleans up.
func (s *session) serve(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer s.leave()
	joinTimer := time.AfterFunc(s.mgr.cfg.JoinTimeout, func() {
		s.closeWith(websocket.StatusPolicyViolation, "join timeout", "")
	})
	defer joinTimer.Stop()
	for {
		m, err := s.conn.Read(ctx)
		if err != nil {
			return
		}
		if verr := m.Validate(); verr != nil {
			s.fail(m.ID, verr)
			continue
		}
		switch {
		case m.Type == signal.TypeLeave:
			s.closeWith(websocket.StatusNormalClosure, "left", "")
			return
		case m.Type == signal.TypeJoin:
			if s.handleJoin(m) {
				joinTimer.Stop()
			}
		case s.p == nil:
			s.fail(m.ID, signal.Errorf(signal.CodeNotJoined, "%s before join", m.Type))
		default:
			s.busy.Lock()
			s.handle(m)
			s.busy.Unlock()
		}
	}
}

// fail answers a request with an error; the connection stays open.
func (s *session) fail(id string, e *signal.Error) {
	metricSignalErrors.WithLabelValues(e.Code).Inc()
	_ = s.conn.SendError(id, e)
}

// reply answers a request with ok, or with its error.
func (s *session) reply(id string, e *signal.Error) {
	if e != nil {
		s.fail(id, e)
		return
	}
	if id != "" {
		_ = s.conn.Send(&signal.Message{Type: signal.TypeOK, ID: id})
	}
}

// closeWith says bye (when code is given) and closes the connection.
func (s *session) closeWith(status websocket.StatusCode, reason, code string) {
	s.bye.Do(func() {
		msg := &signal.Message{Type: signal.TypeBye, Message: reason}
		if code != "" {
			msg.Code = code
		}
		_ = s.conn.Send(msg)
		s.conn.Close(status, reason)
	})
}

// shutdown is the server going away.
func (s *session) shutdown() {
	s.closeWith(closeCodeShutdown, "server is shutting down", signal.CodeShuttingDown)
}

// handle serves the messages of a joined participant.
func (s *session) handle(m *signal.Message) {
	p := s.p
	switch m.Type {
	case signal.TypeOffer, signal.TypeAnswer, signal.TypeCandidate, signal.TypeEndOfCandidates:
		s.negotiate(m)
	case signal.TypeSubscribe:
		s.reply(m.ID, s.limit(m.Subscriptions))
	case signal.TypeMute:
		s.reply(m.ID, p.room.setMuted(p, m.TrackID, *m.Muted))
	case signal.TypeRemove:
		s.reply(m.ID, p.room.removeByModerator(p, ParticipantID(m.ParticipantID)))
	case signal.TypeRaiseHand:
		s.reply(m.ID, p.room.raiseHand(p, *m.Raised))
	case signal.TypeLectureSettings:
		s.reply(m.ID, p.room.setAudienceChat(p, *m.AudienceChat))
	case signal.TypePromote:
		s.reply(m.ID, p.room.promote(p, ParticipantID(m.ParticipantID), access.Role(m.Role)))
	case signal.TypeChat:
		if !p.room.mayChat(p) {
			s.fail(m.ID, signal.Errorf(signal.CodeForbidden, "you may not chat in this room now"))
			return
		}
		p.room.chat(p, m.Text)
		s.reply(m.ID, nil)
	default:
		s.fail(m.ID, signal.Errorf(signal.CodeUnknownType, "unknown type %q", m.Type))
	}
}

// negotiate hands the participant's offers, answers and candidates to its
// media connection.
func (s *session) negotiate(m *signal.Message) {
	p := s.p
	switch m.Type {
	case signal.TypeOffer:
		sources := map[string]sfu.Source{}
		for _, t := range m.Tracks {
			if t.ID != "" && t.Source != "" {
				sources[t.ID] = sfu.Source(t.Source)
			}
		}
		err := p.peer.HandleOffer(m.SDP, sources, func(answer string) {
			p.send(&signal.Message{Type: signal.TypeAnswer, ID: m.ID, SDP: answer})
		})
		if err != nil {
			s.fail(m.ID, offerError(err))
		}
	case signal.TypeAnswer:
		if err := p.peer.HandleAnswer(m.SDP); errors.Is(err, sfu.ErrNoOffer) {
			s.fail(m.ID, signal.Errorf(signal.CodeInvalidState, "answer without an outstanding offer"))
		} else if err != nil {
			s.fail(m.ID, signal.Errorf(signal.CodeInvalidSDP, "%v", err))
		}
	case signal.TypeCandidate:
		c := m.Candidate
		if err := p.peer.AddCandidate(webrtc.ICECandidateInit{Candidate: c.Candidate, SDPMid: c.SDPMid,
			SDPMLineIndex: c.SDPMLineIndex, UsernameFragment: c.UsernameFragment}); err != nil {
			s.fail(m.ID, signal.Errorf(signal.CodeInvalidCandidate, "%v", err))
		}
	case signal.TypeEndOfCandidates:
		// pion needs no signal for it; nothing to do.
	}
}

// limit applies per-track layer caps and pauses, then reports the
// decisions they lead to.
func (s *session) limit(subs []signal.Subscription) *signal.Error {
	limits := make([]sfu.Limit, len(subs))
	for i, sub := range subs {
		layer, _ := signal.LayerIndex(sub.MaxLayer) // Validate checked the name
		limits[i] = sfu.Limit{Track: sfu.TrackID(sub.TrackID), MaxLayer: layer,
			MaxWidth: sub.MaxWidth, MaxHeight: sub.MaxHeight, Paused: sub.Paused}
	}
	if err := s.p.peer.SetLimits(limits); err != nil {
		if errors.Is(err, sfu.ErrUnknownTrack) {
			return signal.Errorf(signal.CodeUnknownTrack, "not subscribed: %v", err)
		}
		return signal.Errorf(signal.CodeInternal, "%v", err)
	}
	s.p.decisionChanged()
	return nil
}

// offerError maps the Peer's errors to protocol codes.
func offerError(err error) *signal.Error {
	switch {
	case errors.Is(err, sfu.ErrGlare):
		return signal.Errorf(signal.CodeGlare, "the server's offer is outstanding; apply it and offer again")
	case errors.Is(err, sfu.ErrPublishDenied):
		return signal.Errorf(signal.CodeForbidden, "you may not publish in this room")
	case errors.Is(err, sfu.ErrTooManyTracks):
		return signal.Errorf(signal.CodeTooManyTracks, "%v", err)
	case errors.Is(err, sfu.ErrInvalidSDP):
		return signal.Errorf(signal.CodeInvalidSDP, "%v", err)
	case errors.Is(err, sfu.ErrClosed):
		return signal.Errorf(signal.CodeInvalidState, "the connection is closing")
	}
	return signal.Errorf(signal.CodeInternal, "%v", err)
}

// leave cleans up after the connection ends: the participant leaves its
// room, its Peer closes (its tracks end for everyone), and an empty room
// goes away.
func (s *session) leave() {
	s.conn.Close(websocket.StatusNormalClosure, "")
	p := s.p
	if p == nil {
		return
	}
	p.room.remove(p)
	p.stopTimers()
	// Outside the room lock: closing waits for the peer's tracks to end,
	// and ending a track takes the room lock to unpublish it.
	if err := p.peer.Close(); err != nil {
		p.log.Debug("close peer", "err", err)
	}
	p.stopTimers()
	metricParticipants.Dec()
	p.log.Info("left")
	s.mgr.removeIfEmpty(p.room)
}
