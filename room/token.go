package room

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/confab-sfu/confab/signal"
	"github.com/golang-jwt/jwt/v5"
)

// Roles name the usual sets of permissions a token grants.
const (
	RoleViewer    = "viewer"    // receives and chats: a lecture audience
	RoleSpeaker   = "speaker"   // publishes, receives and chats: a meeting member
	RoleModerator = "moderator" // a speaker who may also mute and remove others
)

// roleRank orders the roles by what they may do.
var roleRank = map[string]int{RoleViewer: 0, RoleSpeaker: 1, RoleModerator: 2}

// Permissions is what a participant may do in its room.
type Permissions = signal.Permissions

// RolePermissions returns the permissions of a role, or false for an
// unknown role.
func RolePermissions(role string) (Permissions, bool) {
	switch role {
	case RoleViewer:
		return Permissions{Subscribe: true, Chat: true}, true
	case RoleSpeaker:
		return Permissions{Publish: true, Subscribe: true, Chat: true}, true
	case RoleModerator:
		return Permissions{Publish: true, Subscribe: true, Chat: true, Moderate: true}, true
	}
	return Permissions{}, false
}

// openPermissions apply when the server has no auth secret: everyone may
// do everything but moderate (there is nobody to trust with it).
var openPermissions = Permissions{Publish: true, Subscribe: true, Chat: true}

// Claims are the contents of an access token: an HS256 JWT whose subject
// is the participant's identity.
type Claims struct {
	Room string `json:"room"`
	// Lecture makes the room a lecture when this token's join creates it.
	Lecture bool        `json:"lecture,omitempty"`
	Name    string      `json:"name,omitempty"`
	Role    string      `json:"role,omitempty"`
	Perms   Permissions `json:"perms"`
	jwt.RegisteredClaims
}

// TokenParams describe a token to mint.
type TokenParams struct {
	Room     string
	Identity string
	Name     string        // display name; the join's name when empty
	Role     string        // RoleViewer, RoleSpeaker or RoleModerator
	TTL      time.Duration // validity from now
	Lecture  bool          // the room is a lecture when this token's join creates it
}

// MintToken signs an access token with secret.
func MintToken(secret []byte, tp TokenParams, now time.Time) (string, error) {
	if len(secret) == 0 {
		return "", errors.New("empty secret")
	}
	if !signal.ValidRoomName(tp.Room) {
		return "", fmt.Errorf("invalid room name %q", tp.Room)
	}
	if err := checkIdentity(tp.Identity); err != nil {
		return "", err
	}
	if tp.Name != "" {
		name, err := signal.CheckName(tp.Name)
		if err != nil {
			return "", errors.New(err.Message)
		}
		tp.Name = name
	}
	if tp.TTL <= 0 {
		return "", errors.New("ttl must be positive")
	}
	if tp.Role == "" {
		tp.Role = RoleSpeaker
	}
	perms, ok := RolePermissions(tp.Role)
	if !ok {
		return "", fmt.Errorf("unknown role %q (viewer, speaker or moderator)", tp.Role)
	}
	c := Claims{Room: tp.Room, Name: tp.Name, Role: tp.Role, Perms: perms, Lecture: tp.Lecture,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   tp.Identity,
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)), // clock skew
			ExpiresAt: jwt.NewNumericDate(now.Add(tp.TTL)),
		}}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
}

// Token errors, each answered with its own protocol code.
var (
	ErrTokenMissing = errors.New("this server requires an access token")
	ErrTokenInvalid = errors.New("the access token is not valid")
	ErrTokenExpired = errors.New("the access token has expired")
	ErrWrongRoom    = errors.New("the access token is for another room")
)

// verifyToken checks a token's signature, times and room and returns its
// claims. leeway tolerates clock skew between the minter and the server.
func verifyToken(secret []byte, token, room string, now time.Time) (*Claims, error) {
	if token == "" {
		return nil, ErrTokenMissing
	}
	var c Claims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(5*time.Second),
		jwt.WithTimeFunc(func() time.Time { return now }))
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, ErrTokenExpired
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrTokenInvalid, err)
	}
	if err := checkClaims(&c); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTokenInvalid, err)
	}
	if c.Room != room {
		return nil, fmt.Errorf("%w: token for %q, join for %q", ErrWrongRoom, c.Room, room)
	}
	return &c, nil
}

// checkClaims refuses what a token may not say, even when signed: an
// identity or name that others would see disguised, a role this server does
// not know, or permissions beyond the role (others are shown the role, so
// it must not understate what the participant may do). It fills in the
// permissions of a role given alone.
func checkClaims(c *Claims) error {
	if err := checkIdentity(c.Subject); err != nil {
		return err
	}
	if c.Name != "" {
		name, err := signal.CheckName(c.Name)
		if err != nil {
			return errors.New("name claim: " + err.Message)
		}
		c.Name = name
	}
	if c.Role == "" {
		if c.Perms == (Permissions{}) {
			return errors.New("neither a role nor permissions")
		}
		return nil
	}
	rolePerms, ok := RolePermissions(c.Role)
	if !ok {
		return fmt.Errorf("unknown role %q (viewer, speaker or moderator)", c.Role)
	}
	if c.Perms == (Permissions{}) {
		c.Perms = rolePerms
		return nil
	}
	if !withinPerms(c.Perms, rolePerms) {
		return fmt.Errorf("perms %+v grant more than role %q", c.Perms, c.Role)
	}
	return nil
}

// checkIdentity checks a token subject: 1-128 bytes of visible UTF-8.
func checkIdentity(id string) error {
	if id == "" || len(id) > 128 {
		return errors.New("identity (sub) must be 1-128 bytes")
	}
	if !utf8.ValidString(id) || strings.IndexFunc(id, signal.HiddenRune) >= 0 {
		return errors.New("identity (sub) must be UTF-8 without control, formatting or invisible characters")
	}
	return nil
}

// withinPerms reports whether a grants nothing b does not.
func withinPerms(a, b Permissions) bool {
	return (!a.Publish || b.Publish) && (!a.Subscribe || b.Subscribe) && (!a.Chat || b.Chat) && (!a.Moderate || b.Moderate)
}
