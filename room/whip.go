package room

import (
	"errors"
	"fmt"

	"github.com/confab-sfu/confab/room/access"
	"github.com/confab-sfu/confab/room/whip"
	"github.com/confab-sfu/confab/sfu"
)

// WHIP and WHEP sessions in the conference (package whip serves their
// HTTP side): a WHIP publisher is a room participant that only publishes;
// a WHEP viewer is part of the room's audience, counted but never
// announced, and receives one participant's audio and video. Neither can
// renegotiate, so neither is ever offered anything after its answer.

var _ whip.Conference = (*Manager)(nil)

// NewPublisher admits a WHIP publisher into its room.
func (m *Manager) NewPublisher(req whip.Request) (whip.Session, error) {
	id := newParticipantID()
	s := m.newHTTPSession(whip.WHIP, string(id), req)
	p := &participant{id: id, name: req.Name, identity: req.Identity, role: req.Role, log: s.log,
		perms: access.Permissions{Publish: true}, publishOnly: true}
	p.kick = func(reason, _ string) { go s.End(reason) }
	s.p = p
	peer, err := m.newHTTPPeer(s, func(recv *sfu.Receiver) { p.room.publish(p, recv) })
	if err != nil {
		return nil, err
	}
	p.peer, s.peer = peer, peer
	// Listed before it joins: from then on a moderator may end it.
	m.addHTTPSession(s)
	r, err := m.join(req.Room, p)
	if err != nil {
		m.dropHTTPSession(s)
		_ = peer.Close()
		return nil, joinRefusal(err)
	}
	s.room = r
	metricParticipants.Inc()
	metricJoins.WithLabelValues("ok").Inc()
	p.log.Info("joined", "name", p.name)
	r.welcome(p, "", nil)
	return s, nil
}

// NewViewer admits a WHEP viewer into its room's audience.
func (m *Manager) NewViewer(req whip.Request) (whip.Session, error) {
	if !m.Ready() {
		return nil, fmt.Errorf("%w: %w", whip.ErrUnavailable, ErrShutdown)
	}
	// In a cluster the room may live on other nodes only: entering opens
	// it here, and a viewer of a room that exists nowhere is refused.
	r := m.Room(req.Room)
	if r == nil && m.cl == nil {
		return nil, fmt.Errorf("%w: nothing is being published in room %s", whip.ErrNotFound, req.Room)
	}
	s := m.newHTTPSession(whip.WHEP, sfu.NewID("V"), req)
	peer, err := m.newHTTPPeer(s, nil)
	if err != nil {
		return nil, err
	}
	s.peer = peer
	m.addHTTPSession(s)
	admit := func(room *Room) error {
		s.room = room
		return room.addWatcher(s, req.Participant, req.Source)
	}
	if r != nil {
		err = admit(r)
	} else if _, err = m.enter(req.Room, false, false, admit); errors.Is(err, ErrShutdown) || errors.Is(err, ErrTooManyRooms) {
		err = joinRefusal(err)
	}
	if err != nil {
		m.dropHTTPSession(s)
		_ = peer.Close()
		return nil, err
	}
	s.log.Info("watching")
	return s, nil
}

// newHTTPPeer creates the Peer of a WHIP/WHEP session.
func (m *Manager) newHTTPPeer(s *httpSession, onTrack func(*sfu.Receiver)) (Peer, error) {
	canPublish := func() bool { return false }
	if s.kind == whip.WHIP {
		canPublish = func() bool { return s.p.permissions().Publish }
	}
	return m.newPeer(sfu.PeerParams{
		ID:         sfu.PeerID(s.id),
		Logger:     s.log,
		OnTrack:    onTrack,
		OnFailed:   func(err error) { s.End("media connection failed: " + err.Error()) },
		MaxTracks:  m.cfg.MaxTracksPerParticipant,
		CanPublish: canPublish,
	})
}

// joinRefusal tells package whip how to answer a refused join.
func joinRefusal(err error) error {
	switch {
	case errors.Is(err, ErrRoomFull), errors.Is(err, ErrTooManyRooms), errors.Is(err, ErrShutdown):
		return fmt.Errorf("%w: %w", whip.ErrUnavailable, err)
	case errors.Is(err, ErrRemoved), errors.Is(err, ErrPublishRevoked):
		return fmt.Errorf("%w: %w", whip.ErrForbidden, err)
	}
	return err
}

// answerRefusal tells package whip how to answer a failed negotiation.
func answerRefusal(err error) error {
	switch {
	case errors.Is(err, sfu.ErrPublishDenied):
		return fmt.Errorf("%w: %w", whip.ErrForbidden, err)
	case errors.Is(err, sfu.ErrTooManyTracks), errors.Is(err, sfu.ErrInvalidSDP):
		return fmt.Errorf("%w: %w", whip.ErrBadOffer, err)
	}
	return err
}
