package room

import (
	"errors"
	"fmt"

	"github.com/confab-sfu/confab/room/access"
	"github.com/confab-sfu/confab/room/whip"
	"github.com/confab-sfu/confab/sfu"
	"github.com/pion/webrtc/v4"
)

// WHIP and WHEP sessions in the conference (package whip serves their
// HTTP side): a WHIP publisher is a room participant that only publishes;
// a WHEP viewer is part of the room's audience, counted but never
// announced, and receives one participant's audio and video. Neither can
// renegotiate, so neither is ever offered anything after its answer.

var _ whip.Conference = (*Manager)(nil)

// NewPublisher admits a WHIP publisher into its room.
func (m *Manager) NewPublisher(req whip.Request) (whip.Session, error) {
	s := m.newHTTPSession(whip.WHIP, sfu.NewID("P"), req)
	p := &participant{id: s.id, name: req.Name, identity: req.Identity, role: req.Role,
		perms: access.Permissions{Publish: true}, publishOnly: true}
	p.kick = func(reason, _ string) { go s.End(reason) }
	s.p = p
	peer, err := m.newHTTPPeer(s, req.Room, func(recv *sfu.Receiver) { p.room.publish(p, recv) })
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
	m.log.Info("joined", "room", req.Room, "participant", p.id, "name", p.name, "via", "whip")
	r.welcome(p, "", nil)
	return s, nil
}

// NewViewer admits a WHEP viewer into its room's audience.
func (m *Manager) NewViewer(req whip.Request) (whip.Session, error) {
	if !m.Ready() {
		return nil, fmt.Errorf("%w: %w", whip.ErrUnavailable, ErrShutdown)
	}
	r := m.Room(req.Room)
	if r == nil {
		return nil, fmt.Errorf("%w: nothing is being published in room %s", whip.ErrNotFound, req.Room)
	}
	s := m.newHTTPSession(whip.WHEP, sfu.NewID("V"), req)
	s.room = r
	peer, err := m.newHTTPPeer(s, req.Room, nil)
	if err != nil {
		return nil, err
	}
	s.peer = peer
	m.addHTTPSession(s)
	if err := r.addWatcher(s, req.Participant, req.Source); err != nil {
		m.dropHTTPSession(s)
		_ = peer.Close()
		return nil, err
	}
	m.log.Info("watching", "room", req.Room, "session", s.id, "via", "whep")
	return s, nil
}

// newHTTPPeer creates the Peer of a WHIP/WHEP session.
func (m *Manager) newHTTPPeer(s *httpSession, roomName string, onTrack func(*sfu.Receiver)) (*sfu.Peer, error) {
	canPublish := func() bool { return false }
	if s.kind == whip.WHIP {
		canPublish = func() bool { return s.p.permissions().Publish }
	}
	peer, err := m.engine.NewPeer(sfu.PeerParams{
		ID:         sfu.PeerID(s.id),
		Logger:     m.log.With("room", roomName, "session", s.id, "kind", string(s.kind)),
		OnTrack:    onTrack,
		OnFailed:   func(err error) { s.End("media connection failed: " + err.Error()) },
		MaxTracks:  m.cfg.MaxTracksPerParticipant,
		CanPublish: canPublish,
	})
	if err != nil {
		return nil, fmt.Errorf("create the %s session's peer: %w", s.kind, err)
	}
	return peer, nil
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

// watchTarget picks whose tracks a WHEP viewer gets: the named participant,
// or the first (in join order) who publishes video; its audio, and its
// screen share or camera (source chooses; a screen share by default, the
// main content of a lecture).
func (r *Room) watchTargetLocked(participantID string, source sfu.Source) (*participant, []*sfu.Receiver) {
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
	if video == nil || source == sfu.SourceCamera {
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
