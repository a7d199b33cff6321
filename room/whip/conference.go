// Package whip serves WHIP (RFC 9725) and WHEP: media sessions negotiated
// with one HTTP request, for broadcasting tools (OBS) and embeddable
// players. It owns the HTTP side: paths and methods, CORS, content types,
// bearer tokens, the per-address budget, reading the offer within a
// deadline, the secret session URLs and who may end them, ICE servers as
// Link headers, and the mapping of refusals to statuses. What a session is
// in the conference (a participant that only publishes, a viewer in a
// room's audience) is the Conference's, which package room implements;
// this package does not import it.
package whip

import (
	"context"
	"errors"

	"github.com/confab-sfu/confab/room/access"
	"github.com/confab-sfu/confab/sfu"
)

// Kind tells the two protocols apart; it is the first segment of their
// paths.
type Kind string

// The kinds.
const (
	WHIP Kind = "whip" // publish: a participant that only sends
	WHEP Kind = "whep" // watch: a viewer that only receives
)

// Conference admits HTTP media sessions into rooms.
type Conference interface {
	// NewPublisher admits a WHIP publisher into req.Room.
	NewPublisher(req Request) (Session, error)
	// NewViewer admits a WHEP viewer into req.Room's audience.
	NewViewer(req Request) (Session, error)
}

// Request is an admitted request: its token checked, its offer read.
type Request struct {
	Room     string
	Identity string      // the token's subject; "" on an open server
	Role     access.Role // the token's role; "" on an open server
	Name     string      // WHIP: the publisher's display name
	// Record (WHIP: the token's record claim) makes the room record from
	// its start if this publisher's join creates it.
	Record bool
	// Participant (WHEP) names whose tracks to watch; "" is the first
	// participant publishing video.
	Participant string
	// Source (WHEP) is the video preferred: SourceScreen (the default) or
	// SourceCamera.
	Source sfu.Source
	// Ended is called once when the session ends, whatever ended it: its
	// DELETE, a moderator, the room closing, its media failing.
	Ended func()
}

// Session is one WHIP or WHEP session in the conference.
type Session interface {
	// ID is the session's public id (its participant's or viewer's): logs,
	// TURN usernames, ETag. It never addresses the session.
	ID() string
	// Answer negotiates the session's media, once, and returns the answer
	// with every candidate in it.
	Answer(ctx context.Context, offer string) (string, error)
	// End ends the session: it leaves its room and its media stops.
	End(reason string)
}

// Refusals a Conference wraps its errors in, so that each is answered
// with its status; anything else is a 500.
var (
	ErrBadOffer    = errors.New("bad offer")   // 400: the offer cannot be used
	ErrForbidden   = errors.New("forbidden")   // 403: not allowed (removed, no permission)
	ErrNotFound    = errors.New("not found")   // 404: no such room or publisher
	ErrUnavailable = errors.New("unavailable") // 503: full or shutting down
)
