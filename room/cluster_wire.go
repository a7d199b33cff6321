package room

import (
	"errors"
	"fmt"

	"github.com/confab-sfu/confab/room/cluster"
	"github.com/confab-sfu/confab/sfu"
	"github.com/confab-sfu/confab/signal"
)

// What crosses between the nodes of a cluster (the data of room/cluster's
// envelopes). Rooms speak on their room subject; requests go to one node.

// Kinds on a room subject.
const (
	kindState    = "state"    // nodeState: a node's local part of the room, on change and periodically
	kindChat     = "chat"     // chatEvent
	kindSettings = "settings" // settingsEvent: a moderator changed the lecture's settings
	kindRemoved  = "removed"  // identityEvent: a moderator removed an identity
	kindRole     = "role"     // identityEvent: a moderator gave an identity a role
)

// Kinds of node-directed requests.
const (
	reqSnapshot = "room.snapshot" // roomRequest -> nodeState
	reqOffer    = "relay.offer"   // offerRequest -> offerReply
	reqWant     = "relay.want"    // wantRequest -> struct{}
	reqMute     = "mod.mute"      // modRequest -> struct{}
	reqRemove   = "mod.remove"    // modRequest -> struct{}
	reqPromote  = "mod.promote"   // modRequest -> struct{}
)

// nodeState is one node's local part of a room: what its members are,
// publish and raise, and how many watch there. Every node keeps the
// others' parts; a part not refreshed within DeadAfter expires, so a node
// that vanished leaves no ghosts.
type nodeState struct {
	// Hosted is false when the node has left the room (its last member
	// left) or does not host it (a snapshot's answer).
	Hosted bool `json:"hosted"`
	// Epoch (the node's start, ns) and Version order a node's states: an
	// older one arriving late is ignored.
	Epoch   int64  `json:"epoch"`
	Version uint64 `json:"version"`
	// Members are the announced members (a lecture's audience is only
	// counted), in join order.
	Members  []signal.Participant `json:"members,omitempty"`
	Tracks   []signal.Track       `json:"tracks,omitempty"`
	Audience int                  `json:"audience,omitempty"`
	Hands    []signal.Participant `json:"hands,omitempty"`
	// Room-wide settings and moderators' decisions, as this node knows
	// them: a node that opens the room later learns them here.
	Lecture         bool `json:"lecture,omitempty"`
	AudienceChatOff bool `json:"audienceChatOff,omitempty"`
	// AudienceChatAt is when a moderator last set AudienceChatOff (ns,
	// 0: never): the latest setting wins on every node.
	AudienceChatAt int64                `json:"audienceChatAt,omitempty"`
	Removed        []string             `json:"removed,omitempty"`
	Roles          map[string]roleGrant `json:"roles,omitempty"` // by identity
}

// roleGrant is a role a moderator gave an identity, and when (ns): the
// latest grant wins on every node.
type roleGrant struct {
	Role string `json:"role"`
	At   int64  `json:"at"`
}

// newer reports whether s follows a state of (epoch, version).
func (s *nodeState) newer(epoch int64, version uint64) bool {
	return s.Epoch > epoch || (s.Epoch == epoch && s.Version > version)
}

type chatEvent struct {
	From string `json:"from"`
	Name string `json:"name"`
	Text string `json:"text"`
}

type settingsEvent struct {
	AudienceChat bool  `json:"audienceChat"`
	At           int64 `json:"at"` // when the moderator set it (ns)
}

type identityEvent struct {
	Identity string `json:"identity"`
	Role     string `json:"role,omitempty"`
	At       int64  `json:"at,omitempty"` // a role's grant time (ns)
}

type roomRequest struct {
	Room string `json:"room"`
}

// offerRequest carries a relay link's offer; Link names the link, so that
// a new link from the same node replaces an old one.
type offerRequest struct {
	Link  string         `json:"link"`
	Offer sfu.RelayOffer `json:"offer"`
}

type offerReply struct {
	Answer string `json:"answer"`
}

// wantRequest asks a track's node to relay exactly these layers of it to
// the asking node; none stops it.
type wantRequest struct {
	Room   string      `json:"room"`
	Track  sfu.TrackID `json:"track"`
	Layers []int       `json:"layers"`
}

// modRequest is a moderator's action on a member of another node. The
// moderator's node checked the permission; the member's node acts.
type modRequest struct {
	Room      string `json:"room"`
	Moderator string `json:"moderator"` // the moderator's participant id
	Target    string `json:"target,omitempty"`
	Track     string `json:"track,omitempty"`
	Role      string `json:"role,omitempty"`
}

// codedError carries a protocol error code to the requesting node
// (room/cluster takes the code from ErrorCode).
type codedError struct{ e *signal.Error }

func (c codedError) Error() string     { return c.e.Message }
func (c codedError) ErrorCode() string { return c.e.Code }

// asCoded wraps a refusal for the requesting node; nil stays nil.
func asCoded(e *signal.Error) error {
	if e == nil {
		return nil
	}
	return codedError{e}
}

// protocolError turns a failed request into what the participant who
// asked is told: the other node's refusal as it was, or why the request
// failed.
func protocolError(err error) *signal.Error {
	var re *cluster.RemoteError
	if errors.As(err, &re) && isProtocolCode(re.Code) {
		return &signal.Error{Code: re.Code, Message: re.Message}
	}
	return signal.Errorf(signal.CodeInternal, "the participant's server did not act: %v", err)
}

// isProtocolCode reports whether a remote error's code is one of the
// protocol's (and not the transport's own).
func isProtocolCode(code string) bool {
	switch code {
	case signal.CodeInvalidField, signal.CodeForbidden, signal.CodeUnknownTrack, signal.CodeInvalidState:
		return true
	}
	return false
}

// errBadData refuses a message whose data does not decode.
var errBadData = errors.New("room: cluster message data does not decode")

func badData(kind string, err error) error {
	return fmt.Errorf("%w: %s: %w", errBadData, kind, err)
}
