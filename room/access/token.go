package access

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/confab-sfu/confab/signal"
	"github.com/golang-jwt/jwt/v5"
)

// Claims are the contents of an access token: an HS256 JWT whose subject
// is the participant's identity.
type Claims struct {
	Room string `json:"room"`
	// Lecture makes the room a lecture when this token's join creates it.
	Lecture bool `json:"lecture,omitempty"`
	// Record makes the room record from its start when this token's join
	// creates it (on a server with a recording directory).
	Record bool        `json:"record,omitempty"`
	Name   string      `json:"name,omitempty"`
	Role   Role        `json:"role,omitempty"`
	Perms  Permissions `json:"perms"`
	jwt.RegisteredClaims
}

// TokenParams describe a token to mint.
type TokenParams struct {
	Room     string
	Identity string
	Name     string        // display name; the join's name when empty
	Role     Role          // Viewer, Speaker (the default) or Moderator
	TTL      time.Duration // validity from now
	Lecture  bool          // the room is a lecture when this token's join creates it
	Record   bool          // the room records from its start when this token's join creates it
}

// Token errors, each answered with its own protocol code (see Code).
var (
	ErrTokenMissing = errors.New("this server requires an access token")
	ErrTokenInvalid = errors.New("the access token is not valid")
	ErrTokenExpired = errors.New("the access token has expired")
	ErrWrongRoom    = errors.New("the access token is for another room")
)

// Mint signs an access token with secret.
func Mint(secret []byte, tp TokenParams, now time.Time) (string, error) {
	if len(secret) == 0 {
		return "", errors.New("mint token: empty secret")
	}
	if !signal.ValidRoomName(tp.Room) {
		return "", fmt.Errorf("mint token: invalid room name %q: %s", tp.Room, signal.RoomNameRule)
	}
	if err := checkIdentity(tp.Identity); err != nil {
		return "", fmt.Errorf("mint token: %w", err)
	}
	if tp.Name != "" {
		name, err := signal.CheckName(tp.Name)
		if err != nil {
			return "", fmt.Errorf("mint token: %s", err.Message) // a protocol error: its message says it all
		}
		tp.Name = name
	}
	if tp.TTL <= 0 {
		return "", errors.New("mint token: ttl must be positive")
	}
	if tp.Role == "" {
		tp.Role = Speaker
	}
	perms, ok := tp.Role.Permissions()
	if !ok {
		return "", fmt.Errorf("mint token: unknown role %q (viewer, speaker or moderator)", tp.Role)
	}
	c := Claims{Room: tp.Room, Name: tp.Name, Role: tp.Role, Perms: perms, Lecture: tp.Lecture, Record: tp.Record,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   tp.Identity,
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)), // clock skew
			ExpiresAt: jwt.NewNumericDate(now.Add(tp.TTL)),
		}}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("mint token: sign: %w", err)
	}
	return tok, nil
}

// leeway tolerates clock skew between the minter and the server.
const leeway = 5 * time.Second

// Verify checks a token's signature, times and room and returns its
// claims, their permissions filled in from the role when the token gives
// only a role.
func Verify(secret []byte, token, room string, now time.Time) (*Claims, error) {
	if token == "" {
		return nil, ErrTokenMissing
	}
	var c Claims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(func() time.Time { return now }))
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, ErrTokenExpired
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrTokenInvalid, err)
	}
	if err := checkClaims(&c); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTokenInvalid, err)
	}
	if c.Room != room {
		return nil, fmt.Errorf("%w: token for %q, join for %q", ErrWrongRoom, c.Room, room)
	}
	return &c, nil
}

// Code is the protocol's error code for a token refused by Verify.
func Code(err error) string {
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
			return fmt.Errorf("name claim: %s", err.Message)
		}
		c.Name = name
	}
	if c.Role == "" {
		if c.Perms == (Permissions{}) {
			return errors.New("neither a role nor permissions")
		}
		return nil
	}
	rolePerms, ok := c.Role.Permissions()
	if !ok {
		return fmt.Errorf("unknown role %q (viewer, speaker or moderator)", c.Role)
	}
	if c.Perms == (Permissions{}) {
		c.Perms = rolePerms
		return nil
	}
	if !Within(c.Perms, rolePerms) {
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
