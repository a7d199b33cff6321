package room

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/confab-sfu/confab/sfu"
	"github.com/confab-sfu/confab/signal"
	"github.com/pion/webrtc/v4"
	"nhooyr.io/websocket"
)

// participant is a joined member: its signaling connection and its Peer.
type participant struct {
	id       string
	name     string
	identity string // the token's subject; "" in open rooms
	role     string
	permMu   sync.Mutex // guards perms and role; taken last, never held while taking another lock
	perms    Permissions
	// publishOnly marks a WHIP publisher: it never receives, and it may
	// not stay if its identity may no longer publish.
	publishOnly bool
	// wantsLecture makes the room a lecture if this join creates it.
	wantsLecture bool
	// videoCodecs are the video codecs the client can send and decode
	// (none: any); they decide the room's codec (codec.go).
	videoCodecs []string
	conn        *signal.Conn
	peer        *sfu.Peer
	room        *Room
	// kick closes the participant's connection with a bye.
	kick func(reason, code string)

	mu          sync.Mutex
	layersTimer *time.Timer
	lastLayers  time.Time
}

// send queues a message; a client too slow to read is disconnected by the
// connection itself, never waited for.
func (p *participant) send(m *signal.Message) {
	if p.conn == nil {
		return // a WHIP publisher has no signaling channel
	}
	_ = p.conn.Send(m)
}

// public is how others see p.
func (p *participant) public() signal.Participant {
	p.permMu.Lock()
	defer p.permMu.Unlock()
	return signal.Participant{ID: p.id, Name: p.name, Identity: p.identity, Role: p.role}
}

// permissions is what p may do now (a moderator may change it).
func (p *participant) permissions() Permissions {
	p.permMu.Lock()
	defer p.permMu.Unlock()
	return p.perms
}

func (p *participant) setRole(perms Permissions, role string) {
	p.permMu.Lock()
	defer p.permMu.Unlock()
	p.perms, p.role = perms, role
}

func (p *participant) subscribe(r *sfu.Receiver) {
	if !p.permissions().Subscribe {
		return
	}
	if _, err := p.peer.Subscribe(r); err != nil && !errors.Is(err, sfu.ErrClosed) {
		p.room.mgr.log.Warn("subscribe", "room", p.room.name, "participant", p.id, "track", r.ID(), "err", err)
	}
}

func (p *participant) unsubscribe(r *sfu.Receiver) { p.peer.Unsubscribe(r) }

// decisionChanged schedules a layers report, at most one per interval.
func (p *participant) decisionChanged(*sfu.DownTrack) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.layersTimer != nil {
		return
	}
	wait := p.room.mgr.cfg.LayersInterval - time.Since(p.lastLayers)
	if wait < 0 {
		wait = 0
	}
	p.layersTimer = time.AfterFunc(wait, p.sendLayers)
}

func (p *participant) sendLayers() {
	p.mu.Lock()
	p.layersTimer = nil
	p.lastLayers = time.Now()
	p.mu.Unlock()
	downs := p.peer.DownTracks()
	decisions := make([]signal.LayerDecision, 0, len(downs))
	for _, d := range downs {
		if d.Receiver().Kind() != webrtc.RTPCodecTypeVideo {
			continue
		}
		dec := d.Decision()
		decisions = append(decisions, signal.LayerDecision{
			TrackID: dec.TrackID, Current: sfu.LayerName(dec.Current), Target: sfu.LayerName(dec.Target),
			Reason: dec.Reason, Paused: dec.Paused, Bandwidth: int(dec.Bandwidth),
		})
	}
	if len(decisions) > 0 {
		p.send(&signal.Message{Type: signal.TypeLayers, Decisions: decisions})
	}
}

func (p *participant) stopTimers() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.layersTimer != nil {
		p.layersTimer.Stop()
		p.layersTimer = nil
	}
}

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
		if m.Type == signal.TypeLeave {
			s.closeWith(websocket.StatusNormalClosure, "left", "")
			return
		}
		if m.Type == signal.TypeJoin {
			if s.handleJoin(m) {
				joinTimer.Stop()
			}
			continue
		}
		if s.p == nil {
			s.fail(m.ID, signal.Errorf(signal.CodeNotJoined, "%s before join", m.Type))
			continue
		}
		s.busy.Lock()
		s.handle(m)
		s.busy.Unlock()
	}
}

// fail answers a request with an error; the connection stays open.
func (s *session) fail(id string, e *signal.Error) {
	metricSignalErrors.WithLabelValues(e.Code).Inc()
	_ = s.conn.SendError(id, e)
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

func (s *session) handleJoin(m *signal.Message) bool {
	if s.p != nil {
		s.fail(m.ID, signal.Errorf(signal.CodeAlreadyJoined, "already joined room %q", s.p.room.name))
		return false
	}
	if !ValidRoomName(m.Room) {
		metricJoins.WithLabelValues("invalid_room").Inc()
		s.fail(m.ID, signal.Errorf(signal.CodeInvalidRoom, "room names are 1-64 characters of A-Z a-z 0-9 - _ . not starting with a dot"))
		return false
	}
	p := &participant{id: sfu.NewID("P"), name: strings.TrimSpace(m.Name), conn: s.conn, perms: openPermissions,
		wantsLecture: m.Lecture, videoCodecs: m.VideoCodecs}
	if !s.applyToken(p, m) {
		return false
	}
	if m.Role != "" {
		askRole(p, m.Role)
	}
	p.kick = func(reason, code string) { s.closeWith(websocket.StatusPolicyViolation, reason, code) }

	// The Peer exists before the participant enters the room: from then on
	// others' new tracks are subscribed to it at once.
	peer, err := s.mgr.engine.NewPeer(sfu.PeerParams{
		ID:     p.id,
		Logger: s.mgr.log.With("room", m.Room, "participant", p.id),
		OnOffer: func(sdp string, mids map[string]string) {
			p.send(&signal.Message{Type: signal.TypeOffer, SDP: sdp, Mids: mids})
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
		OnDecision: p.decisionChanged,
		OnFailed: func(err error) {
			s.mgr.log.Info("connection failed", "room", m.Room, "participant", p.id, "err", err)
			// A failure caused by a request (an offer the WebRTC stack
			// refused half-way) is answered first, then the bye.
			s.busy.Lock()
			s.busy.Unlock()
			s.closeWith(websocket.StatusNormalClosure, "media connection failed: "+err.Error(), "")
		},
		MaxTracks:  s.mgr.cfg.MaxTracksPerParticipant,
		CanPublish: func() bool { return p.permissions().Publish },
	})
	if err != nil {
		metricJoins.WithLabelValues(signal.CodeInternal).Inc()
		s.fail(m.ID, signal.Errorf(signal.CodeInternal, "create peer connection: %v", err))
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
	s.mgr.log.Info("joined", "room", r.name, "participant", p.id, "name", p.name, "remote", s.conn.RemoteAddr())
	r.welcome(p, m.ID, s.mgr.iceServersFor(p.id))
	return true
}

// applyToken checks a join's token, when the server requires one, and
// gives p what it grants; a refusal is answered and counted.
func (s *session) applyToken(p *participant, m *signal.Message) bool {
	if len(s.mgr.cfg.AuthSecret) == 0 {
		return true
	}
	c, err := verifyToken(s.mgr.cfg.AuthSecret, m.Token, m.Room, time.Now())
	if err != nil {
		code := tokenErrorCode(err)
		metricJoins.WithLabelValues(code).Inc()
		s.mgr.log.Info("join refused", "room", m.Room, "code", code, "err", err, "remote", s.conn.RemoteAddr())
		s.fail(m.ID, signal.Errorf(code, "%v", err))
		return false
	}
	p.identity, p.role, p.perms = c.Subject, c.Role, c.Perms
	p.wantsLecture = p.wantsLecture || c.Lecture
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

// askRole applies the role a join asks for. A join may ask for less than
// it may have (an open room's viewer joins as one), never more; and the
// role others are shown is never above what the participant may do: on an
// open server, where nobody moderates, a join asking for "moderator" is
// shown as the speaker it is.
func askRole(p *participant, role string) {
	asked, ok := RolePermissions(role)
	if !ok {
		return // Validate refused it already
	}
	p.perms = Permissions{Publish: p.perms.Publish && asked.Publish, Subscribe: p.perms.Subscribe && asked.Subscribe,
		Chat: p.perms.Chat && asked.Chat, Moderate: p.perms.Moderate && asked.Moderate}
	p.role = roleWithin(p.perms) // never above asked: p.perms are within it
}

// roleWithin is the highest role whose permissions perms hold, or "".
func roleWithin(perms Permissions) string {
	best := ""
	for role, rank := range roleRank {
		if rp, _ := RolePermissions(role); withinPerms(rp, perms) && (best == "" || rank > roleRank[best]) {
			best = role
		}
	}
	return best
}

// handle serves the messages of a joined participant.
func (s *session) handle(m *signal.Message) {
	p := s.p
	switch m.Type {
	case signal.TypeOffer:
		sources := map[string]string{}
		for _, t := range m.Tracks {
			if t.ID != "" && t.Source != "" {
				sources[t.ID] = t.Source
			}
		}
		err := p.peer.HandleOffer(m.SDP, sources, func(answer string) {
			p.send(&signal.Message{Type: signal.TypeAnswer, ID: m.ID, SDP: answer})
		})
		if err != nil {
			s.fail(m.ID, offerError(err))
		}
	case signal.TypeAnswer:
		if err := p.peer.HandleAnswer(m.SDP); err != nil {
			if errors.Is(err, sfu.ErrNoOffer) {
				s.fail(m.ID, signal.Errorf(signal.CodeInvalidState, "answer without an outstanding offer"))
			} else {
				s.fail(m.ID, signal.Errorf(signal.CodeInvalidSDP, "%v", err))
			}
		}
	case signal.TypeCandidate:
		c := m.Candidate
		if err := p.peer.AddCandidate(webrtc.ICECandidateInit{Candidate: c.Candidate, SDPMid: c.SDPMid,
			SDPMLineIndex: c.SDPMLineIndex, UsernameFragment: c.UsernameFragment}); err != nil {
			s.fail(m.ID, signal.Errorf(signal.CodeInvalidCandidate, "%v", err))
		}
	case signal.TypeEndOfCandidates:
		// pion needs no signal for it; nothing to do.
	case signal.TypeSubscribe:
		s.handleSubscribe(m)
	case signal.TypeMute:
		if e := p.room.setMuted(p, m.TrackID, *m.Muted); e != nil {
			s.fail(m.ID, e)
			return
		}
		s.ok(m.ID)
	case signal.TypeRemove:
		if e := p.room.removeByModerator(p, m.ParticipantID); e != nil {
			s.fail(m.ID, e)
			return
		}
		s.ok(m.ID)
	case signal.TypeRaiseHand:
		if e := p.room.raiseHand(p, *m.Raised); e != nil {
			s.fail(m.ID, e)
			return
		}
		s.ok(m.ID)
	case signal.TypeLectureSettings:
		if e := p.room.setAudienceChat(p, *m.AudienceChat); e != nil {
			s.fail(m.ID, e)
			return
		}
		s.ok(m.ID)
	case signal.TypePromote:
		if e := p.room.promote(p, m.ParticipantID, m.Role); e != nil {
			s.fail(m.ID, e)
			return
		}
		s.ok(m.ID)
	case signal.TypeChat:
		if !p.room.mayChat(p) {
			s.fail(m.ID, signal.Errorf(signal.CodeForbidden, "you may not chat in this room now"))
			return
		}
		p.room.broadcast(&signal.Message{Type: signal.TypeChat, From: p.id, Name: p.name, Text: m.Text}, p.id)
		s.ok(m.ID)
	default:
		s.fail(m.ID, signal.Errorf(signal.CodeUnknownType, "unknown type %q", m.Type))
	}
}

func (s *session) ok(id string) {
	if id != "" {
		_ = s.conn.Send(&signal.Message{Type: signal.TypeOK, ID: id})
	}
}

// handleSubscribe applies per-track layer caps and pauses.
func (s *session) handleSubscribe(m *signal.Message) {
	p := s.p
	downs := make([]*sfu.DownTrack, len(m.Subscriptions))
	for i, sub := range m.Subscriptions {
		d := p.peer.DownTrack(sub.TrackID)
		if d == nil {
			s.fail(m.ID, signal.Errorf(signal.CodeUnknownTrack, "not subscribed to track %q", sub.TrackID))
			return
		}
		downs[i] = d
	}
	for i, sub := range m.Subscriptions {
		d := downs[i]
		s.mgr.log.Debug("subscribe", "room", p.room.name, "participant", p.id, "track", sub.TrackID, "maxLayer", sub.MaxLayer, "maxWidth", sub.MaxWidth, "maxHeight", sub.MaxHeight, "paused", sub.Paused)
		layer, _ := sfu.LayerIndex(sub.MaxLayer)
		if sub.MaxWidth > 0 || sub.MaxHeight > 0 {
			if l := d.Receiver().LayerForSize(sub.MaxWidth, sub.MaxHeight); l < layer {
				layer = l
			}
		}
		d.SetMaxLayer(layer)
		d.SetPaused(sub.Paused)
	}
	s.ok(m.ID)
	p.decisionChanged(nil)
}

// tokenErrorCode maps a token error to its protocol code.
func tokenErrorCode(err error) string {
	switch {
	case errors.Is(err, ErrTokenMissing):
		return signal.CodeUnauthorized
	case errors.Is(err, ErrTokenExpired):
		return signal.CodeTokenExpired
	case errors.Is(err, ErrWrongRoom):
		return signal.CodeWrongRoom
	}
	return signal.CodeInvalidToken
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
		s.mgr.log.Debug("close peer", "participant", p.id, "err", err)
	}
	p.stopTimers()
	metricParticipants.Dec()
	s.mgr.log.Info("left", "room", p.room.name, "participant", p.id)
	s.mgr.removeIfEmpty(p.room)
}
