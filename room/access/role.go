// Package access decides who may do what in a room: the roles and the
// permissions they grant, and the HS256 access tokens (JWTs) that carry an
// identity, a room and a role to the server. It knows nothing of rooms
// beyond their names; package room and the WHIP/WHEP handlers ask it.
package access

import "github.com/confab-sfu/confab/signal"

// Role names a usual set of permissions. Its names are the protocol's
// (signal.Role*).
type Role string

// The roles a token or a moderator may give.
const (
	Viewer    Role = signal.RoleViewer    // receives and chats: a lecture audience
	Speaker   Role = signal.RoleSpeaker   // publishes, receives and chats: a meeting member
	Moderator Role = signal.RoleModerator // a speaker who may also mute, remove and promote others
)

// rank orders the roles by what they may do.
var rank = map[Role]int{Viewer: 0, Speaker: 1, Moderator: 2}

// Permissions is what a participant may do in its room.
type Permissions = signal.Permissions

// Open is what everyone may do on a server without an auth secret:
// everything but moderate (there is nobody to trust with it).
var Open = Permissions{Publish: true, Subscribe: true, Chat: true}

// Permissions returns what the role may do, or false for an unknown role.
func (r Role) Permissions() (Permissions, bool) {
	switch r {
	case Viewer:
		return Permissions{Subscribe: true, Chat: true}, true
	case Speaker:
		return Permissions{Publish: true, Subscribe: true, Chat: true}, true
	case Moderator:
		return Permissions{Publish: true, Subscribe: true, Chat: true, Moderate: true}, true
	}
	return Permissions{}, false
}

// Within reports whether a grants nothing b does not.
func Within(a, b Permissions) bool {
	return (!a.Publish || b.Publish) && (!a.Subscribe || b.Subscribe) && (!a.Chat || b.Chat) && (!a.Moderate || b.Moderate)
}

// Highest is the highest role whose permissions perms hold, or "" when
// they hold none.
func Highest(perms Permissions) Role {
	var best Role
	for role, n := range rank {
		if rp, _ := role.Permissions(); Within(rp, perms) && (best == "" || n > rank[best]) {
			best = role
		}
	}
	return best
}

// Ask narrows what a participant may do to the role it asked for: a join
// may ask for less than it may have (an open room's viewer joins as one),
// never more. The role others are shown is the highest the result holds,
// never above what the participant may do: on an open server, where nobody
// moderates, a join asking for "moderator" is shown as the speaker it is.
// An unknown role changes nothing.
func Ask(perms Permissions, asked Role) (Permissions, Role, bool) {
	want, ok := asked.Permissions()
	if !ok {
		return perms, "", false
	}
	perms = Permissions{Publish: perms.Publish && want.Publish, Subscribe: perms.Subscribe && want.Subscribe,
		Chat: perms.Chat && want.Chat, Moderate: perms.Moderate && want.Moderate}
	return perms, Highest(perms), true
}
