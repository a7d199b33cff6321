package room

import (
	"context"

	"github.com/confab-sfu/confab/sfu"
	"github.com/confab-sfu/confab/signal"
	"github.com/pion/webrtc/v4"
)

// The seams between the conference and the media plane: what a room needs
// of a published track and of a participant's media connection, named by
// the direction media flows (Galène's conn package is the model). Package
// sfu implements them (*sfu.Receiver, *sfu.Peer); a track relayed from
// another node will be a second UpTrack, so nothing here assumes that a
// track's publisher is a Peer of this server: a room knows a track's owner
// as a participant, and subscribes by the track's id. Tests use small fakes.

// UpTrack is a published track: what subscribers are told of it, the
// moderator's stop, its loudness for speaker detection, and its end.
type UpTrack interface {
	// Info describes the track; it does not change while the track lives.
	Info() sfu.TrackInfo
	// Layers are the simulcast layers received so far, lowest (0) first.
	Layers() []int
	// SetBlocked stops (or resumes) forwarding the track to everyone.
	SetBlocked(blocked bool)
	// TakeLoudness is the mean loudness since the last call (0 silence ..
	// 127 loudest).
	TakeLoudness() int
	// OnClose registers f to run once the track has ended.
	OnClose(f func())
}

// Down is the receiving side of a media connection: the tracks forwarded
// to it, and its subscriber's controls over each (the down-tracks, named
// by their up-track's id).
type Down interface {
	// Subscribe starts forwarding a track; sfu.ErrUnknownTrack when it is
	// not live (any more).
	Subscribe(track sfu.TrackID) error
	Unsubscribe(track sfu.TrackID)
	// SetLimits caps layers, sizes and pauses tracks, all or none.
	SetLimits(limits []sfu.Limit) error
	// Decisions report how each video track is forwarded now.
	Decisions() []sfu.Decision
}

// Negotiator is how signaling reaches a media connection: trickled offers,
// answers and candidates over a WebSocket, or one whole offer and answer
// (WHIP, WHEP).
type Negotiator interface {
	HandleOffer(sdp string, sources map[string]sfu.Source, reply func(answer string)) error
	HandleAnswer(sdp string) error
	AddCandidate(c webrtc.ICECandidateInit) error
	AnswerWhole(ctx context.Context, offer string, send []sfu.TrackID) (string, error)
}

// Peer is one participant's (or viewer's) media connection.
type Peer interface {
	Down
	Negotiator
	// StopPublishing ends every track the peer publishes (a demotion).
	StopPublishing()
	// Close ends the connection; its published tracks end for everyone.
	Close() error
}

// The media plane implements the seams.
var (
	_ UpTrack = (*sfu.Receiver)(nil)
	_ Peer    = (*sfu.Peer)(nil)
)

// sender is where a participant's messages go: its signaling connection
// (*signal.Conn). A WHIP publisher has none.
type sender interface {
	Send(m *signal.Message) error
}
