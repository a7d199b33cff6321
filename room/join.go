package room

import (
	"errors"
	"strings"
	"time"

	"github.com/confab-sfu/confab/room/access"
	"github.com/confab-sfu/confab/sfu"
	"github.com/confab-sfu/confab/signal"
	"github.com/pion/webrtc/v4"
	"nhooyr.io/websocket"
)

// handleJoin serves a join: it checks the room's name and the token,
// creates the participant's media connection and enters the room. It
// reports whether the session joined.
func (s *session) handleJoin(m *signal.Message) bool {
	if s.p != nil {
		s.fail(m.ID, signal.Errorf(signal.CodeAlreadyJoined, "already joined room %q", s.p.room.name))
		return false
	}
	if !signal.ValidRoomName(m.Room) {
		metricJoins.WithLabelValues("invalid_room").Inc()
		s.fail(m.ID, signal.Errorf(signal.CodeInvalidRoom, signal.RoomNameRule))
		return false
	}
	p := &participant{id: newParticipantID(), name: strings.TrimSpace(m.Name), out: s.conn, perms: access.Open,
		wantsLecture: m.Lecture, videoCodecs: m.VideoCodecs}
	if !s.applyToken(p, m) {
		return false
	}
	if m.Role != "" {
		// Validate refused unknown roles already.
		p.perms, p.role, _ = access.Ask(p.perms, access.Role(m.Role))
	}
	// What the join adds is reserved until its subscriptions exist.
	release, busy := s.mgr.admitJoin(m.Room)
	if busy != nil {
		metricJoins.WithLabelValues(busy.Code).Inc()
		s.fail(m.ID, busy)
		return false
	}
	defer release()
	p.log = s.mgr.log.With("room", m.Room, "participant", string(p.id))
	p.kick = func(reason, code string) { s.closeWith(websocket.StatusPolicyViolation, reason, code) }
	// The Peer exists before the participant enters the room: from then on
	// others' new tracks are subscribed to it at once.
	peer, err := s.mgr.newPeer(s.peerParams(p))
	if err != nil {
		metricJoins.WithLabelValues(signal.CodeInternal).Inc()
		p.log.Error("join failed", "err", err)
		s.fail(m.ID, signal.Errorf(signal.CodeInternal, "%v", err))
		return false
	}
	p.peer = peer
	r, err := s.mgr.join(m.Room, p)
	if err != nil {
		_ = peer.Close()
		code := joinErrorCode(err)
		metricJoins.WithLabelValues(code).Inc()
		s.fail(m.ID, signal.Errorf(code, "%v", err))
		return false
	}
	s.p = p
	metricJoins.WithLabelValues("ok").Inc()
	metricParticipants.Inc()
	p.log.Info("joined", "name", p.name, "remote", s.conn.RemoteAddr())
	r.welcome(p, m.ID, s.mgr.cfg.ICE.For(string(p.id), time.Now()))
	return true
}

// peerParams wire a WebSocket participant's media connection to its
// signaling and its room.
func (s *session) peerParams(p *participant) sfu.PeerParams {
	return sfu.PeerParams{
		ID:     sfu.PeerID(p.id),
		Logger: p.log,
		OnOffer: func(sdp string, mids map[string]sfu.TrackID) {
			wire := make(map[string]string, len(mids))
			for mid, id := range mids {
				wire[mid] = string(id)
			}
			p.send(&signal.Message{Type: signal.TypeOffer, SDP: sdp, Mids: wire})
		},
		OnCandidate: func(c *webrtc.ICECandidateInit) {
			if c == nil {
				p.send(&signal.Message{Type: signal.TypeEndOfCandidates})
				return
			}
			p.send(&signal.Message{Type: signal.TypeCandidate, Candidate: &signal.Candidate{
				Candidate: c.Candidate, SDPMid: c.SDPMid, SDPMLineIndex: c.SDPMLineIndex, UsernameFragment: c.UsernameFragment}})
		},
		// Tracks are published only after welcome: the room is set by then.
		OnTrack:    func(recv *sfu.Receiver) { p.room.publish(p, recv) },
		OnDecision: func(sfu.Decision) { p.decisionChanged() },
		OnFailed: func(err error) {
			p.log.Info("connection failed", "err", err)
			// A failure caused by a request (an offer the WebRTC stack
			// refused half-way) is answered first, then the bye.
			s.busy.Lock()
			s.busy.Unlock()
			s.closeWith(websocket.StatusNormalClosure, "media connection failed: "+err.Error(), "")
		},
		MaxTracks:  s.mgr.cfg.MaxTracksPerParticipant,
		CanPublish: func() bool { return p.permissions().Publish },
	}
}

// applyToken checks a join's token, when the server requires one, and
// gives p what it grants; a refusal is answered and counted.
func (s *session) applyToken(p *participant, m *signal.Message) bool {
	if len(s.mgr.cfg.AuthSecret) == 0 {
		return true
	}
	c, err := access.Verify(s.mgr.cfg.AuthSecret, m.Token, m.Room, time.Now())
	if err != nil {
		code := access.Code(err)
		metricJoins.WithLabelValues(code).Inc()
		s.mgr.log.Info("join refused", "room", m.Room, "code", code, "err", err, "remote", s.conn.RemoteAddr())
		s.fail(m.ID, signal.Errorf(code, "%v", err))
		return false
	}
	p.identity, p.role, p.perms = c.Subject, c.Role, c.Perms
	p.wantsLecture = p.wantsLecture || c.Lecture
	p.wantsRecord = c.Record
	if c.Name != "" {
		p.name = c.Name
	}
	return true
}

// joinErrorCode maps the errors of entering a room to protocol codes.
func joinErrorCode(err error) string {
	switch {
	case errors.Is(err, ErrRoomFull):
		return signal.CodeRoomFull
	case errors.Is(err, ErrTooManyRooms):
		return signal.CodeTooManyRooms
	case errors.Is(err, ErrShutdown):
		return signal.CodeShuttingDown
	case errors.Is(err, ErrRemoved):
		return signal.CodeForbidden
	}
	return signal.CodeInternal
}
