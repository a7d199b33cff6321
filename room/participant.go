package room

import (
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/confab-sfu/confab/room/access"
	"github.com/confab-sfu/confab/sfu"
	"github.com/confab-sfu/confab/signal"
)

// ParticipantID names a participant: in its room, in logs, on the wire.
type ParticipantID string

// newParticipantID returns a fresh participant id ("P" and 80 random bits).
func newParticipantID() ParticipantID { return ParticipantID(sfu.NewID("P")) }

// participant is a member of a room: a WebSocket participant, or a WHIP
// publisher (which only publishes and has no signaling channel).
type participant struct {
	id       ParticipantID
	name     string
	identity string // the token's subject; "" in open rooms
	// node is the cluster node a member of another node is connected to;
	// "" for this node's own participants (only they have a connection,
	// a peer and a log here).
	node string
	log  *slog.Logger // carries room and participant: everything about it logs here
	out  sender       // nil for a WHIP publisher
	peer Peer
	room *Room
	// publishOnly marks a WHIP publisher: it never receives, and it may
	// not stay if its identity may no longer publish.
	publishOnly bool
	// wantsLecture makes the room a lecture if this join creates it.
	wantsLecture bool
	// videoCodecs are the video codecs the client can send and decode
	// (none: any); they decide the room's codec (codec.go).
	videoCodecs []string
	// kick closes the participant's connection with a bye.
	kick func(reason, code string)

	permMu sync.Mutex // guards perms and role; taken last, never held while taking another lock
	role   access.Role
	perms  access.Permissions

	mu          sync.Mutex
	layersTimer *time.Timer
	lastLayers  time.Time
}

// send queues a message; a client too slow to read is disconnected by the
// connection itself, never waited for.
func (p *participant) send(m *signal.Message) {
	if p.out != nil {
		_ = p.out.Send(m)
	}
}

// public is how others see p.
func (p *participant) public() signal.Participant {
	p.permMu.Lock()
	defer p.permMu.Unlock()
	return signal.Participant{ID: string(p.id), Name: p.name, Identity: p.identity, Role: string(p.role)}
}

// permissions is what p may do now (a moderator may change it).
func (p *participant) permissions() access.Permissions {
	p.permMu.Lock()
	defer p.permMu.Unlock()
	return p.perms
}

func (p *participant) setRole(perms access.Permissions, role access.Role) {
	p.permMu.Lock()
	defer p.permMu.Unlock()
	p.perms, p.role = perms, role
}

// subscribe forwards a track to p, when p may receive. A track that ended
// meanwhile, or a peer that is closing, is not worth a warning.
func (p *participant) subscribe(track sfu.TrackID) {
	if !p.permissions().Subscribe {
		return
	}
	if err := p.peer.Subscribe(track); err != nil && !errors.Is(err, sfu.ErrClosed) && !errors.Is(err, sfu.ErrUnknownTrack) {
		p.log.Warn("subscribe", "track", string(track), "err", err)
	}
}

// decisionChanged schedules a layers report, at most one per interval.
func (p *participant) decisionChanged() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.layersTimer != nil {
		return
	}
	wait := max(0, p.room.mgr.cfg.LayersInterval-time.Since(p.lastLayers))
	p.layersTimer = time.AfterFunc(wait, p.sendLayers)
}

// sendLayers reports how each video track is forwarded to p.
func (p *participant) sendLayers() {
	p.mu.Lock()
	p.layersTimer = nil
	p.lastLayers = time.Now()
	p.mu.Unlock()
	var decisions []signal.LayerDecision
	for _, dec := range p.peer.Decisions() {
		decisions = append(decisions, signal.LayerDecision{
			TrackID: string(dec.TrackID), Current: signal.LayerName(dec.Current), Target: signal.LayerName(dec.Target),
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
