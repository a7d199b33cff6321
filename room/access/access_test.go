package access

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/confab-sfu/confab/signal"
	"github.com/golang-jwt/jwt/v5"
)

var secret = []byte("an access test secret, long enough")

func sign(t *testing.T, method jwt.SigningMethod, key any, c Claims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(method, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestMintVerifyRoundTrip(t *testing.T) {
	now := time.Now()
	tok, err := Mint(secret, TokenParams{Room: "hall", Identity: "ann@example.org", Name: " Ann ", Role: Moderator,
		TTL: time.Hour, Lecture: true}, now)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Verify(secret, tok, "hall", now)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := Moderator.Permissions()
	if c.Subject != "ann@example.org" || c.Name != "Ann" || c.Role != Moderator || c.Perms != want || !c.Lecture {
		t.Fatalf("claims %+v", c)
	}
	if tok, err = Mint(secret, TokenParams{Room: "hall", Identity: "bob", TTL: time.Minute}, now); err != nil {
		t.Fatal(err)
	}
	if c, err = Verify(secret, tok, "hall", now); err != nil || c.Role != Speaker {
		t.Fatalf("a token without a role: %+v %v, want a speaker's", c, err)
	}
}

func TestMintRefusesBadParams(t *testing.T) {
	for what, tp := range map[string]TokenParams{
		"no room":            {Identity: "a", TTL: time.Hour},
		"a bad room":         {Room: ".x", Identity: "a", TTL: time.Hour},
		"no identity":        {Room: "r", TTL: time.Hour},
		"a hidden character": {Room: "r", Identity: "a\u200Bb", TTL: time.Hour},
		"a long name":        {Room: "r", Identity: "a", Name: strings.Repeat("n", 65), TTL: time.Hour},
		"no ttl":             {Room: "r", Identity: "a"},
		"an unknown role":    {Room: "r", Identity: "a", Role: "admin", TTL: time.Hour},
	} {
		if _, err := Mint(secret, tp, time.Now()); err == nil || !strings.HasPrefix(err.Error(), "mint token: ") {
			t.Errorf("%s: %v, want a mint token error", what, err)
		}
	}
	if _, err := Mint(nil, TokenParams{Room: "r", Identity: "a", TTL: time.Hour}, time.Now()); err == nil {
		t.Error("minted without a secret")
	}
}

func TestVerifyRefusals(t *testing.T) {
	now := time.Now()
	valid := func(mut func(*Claims)) Claims {
		c := Claims{Room: "hall", Role: Speaker, RegisteredClaims: jwt.RegisteredClaims{Subject: "ann",
			ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))}}
		if mut != nil {
			mut(&c)
		}
		return c
	}
	hs := jwt.SigningMethodHS256
	cases := []struct {
		what, token string
		want        error
		code        string
	}{
		{"missing", "", ErrTokenMissing, signal.CodeUnauthorized},
		{"garbage", "not.a.jwt", ErrTokenInvalid, signal.CodeInvalidToken},
		{"another secret", sign(t, hs, []byte("another secret"), valid(nil)), ErrTokenInvalid, signal.CodeInvalidToken},
		{"HS512", sign(t, jwt.SigningMethodHS512, secret, valid(nil)), ErrTokenInvalid, signal.CodeInvalidToken},
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, valid(nil)), ErrTokenInvalid, signal.CodeInvalidToken},
		{"expired", sign(t, hs, secret, valid(func(c *Claims) { c.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Minute)) })),
			ErrTokenExpired, signal.CodeTokenExpired},
		{"no expiry", sign(t, hs, secret, valid(func(c *Claims) { c.ExpiresAt = nil })), ErrTokenInvalid, signal.CodeInvalidToken},
		{"another room", sign(t, hs, secret, valid(func(c *Claims) { c.Room = "other" })), ErrWrongRoom, signal.CodeWrongRoom},
		{"an unknown role", sign(t, hs, secret, valid(func(c *Claims) { c.Role = "admin" })), ErrTokenInvalid, signal.CodeInvalidToken},
		{"perms beyond the role", sign(t, hs, secret, valid(func(c *Claims) { c.Role, c.Perms = Viewer, Permissions{Publish: true} })),
			ErrTokenInvalid, signal.CodeInvalidToken},
		{"neither role nor perms", sign(t, hs, secret, valid(func(c *Claims) { c.Role = "" })), ErrTokenInvalid, signal.CodeInvalidToken},
		{"a bidi override in the name", sign(t, hs, secret, valid(func(c *Claims) { c.Name = "Ann\u202E" })), ErrTokenInvalid, signal.CodeInvalidToken},
		{"a line break in the identity", sign(t, hs, secret, valid(func(c *Claims) { c.Subject = "a\nb" })), ErrTokenInvalid, signal.CodeInvalidToken},
	}
	for _, c := range cases {
		_, err := Verify(secret, c.token, "hall", now)
		if !errors.Is(err, c.want) || Code(err) != c.code {
			t.Errorf("%s: %v (code %s), want %v (code %s)", c.what, err, Code(err), c.want, c.code)
		}
	}
	// Perms alone, or within the role, are what the token grants.
	c, err := Verify(secret, sign(t, hs, secret, valid(func(c *Claims) { c.Role, c.Perms = "", Permissions{Subscribe: true} })), "hall", now)
	if err != nil || c.Perms != (Permissions{Subscribe: true}) {
		t.Errorf("perms without a role: %+v %v", c, err)
	}
}

func TestRoles(t *testing.T) {
	for _, c := range []struct {
		perms Permissions
		want  Role
	}{
		{Permissions{}, ""},
		{Permissions{Subscribe: true, Chat: true}, Viewer},
		{Open, Speaker},
		{Permissions{Publish: true, Subscribe: true, Chat: true, Moderate: true}, Moderator},
		{Permissions{Publish: true, Subscribe: true, Moderate: true}, ""}, // no chat: no role is within it
	} {
		if got := Highest(c.perms); got != c.want {
			t.Errorf("Highest(%+v) = %q, want %q", c.perms, got, c.want)
		}
	}
	mod, _ := Moderator.Permissions()
	for _, c := range []struct {
		perms    Permissions
		asked    Role
		want     Role
		moderate bool
	}{
		{mod, Viewer, Viewer, false},
		{mod, Moderator, Moderator, true},
		{Open, Moderator, Speaker, false}, // an open server has no moderators
		{Open, Viewer, Viewer, false},
	} {
		perms, role, ok := Ask(c.perms, c.asked)
		if !ok || role != c.want || perms.Moderate != c.moderate || !Within(perms, c.perms) {
			t.Errorf("Ask(%+v, %s) = %+v %s %v, want role %s", c.perms, c.asked, perms, role, ok, c.want)
		}
	}
	if perms, _, ok := Ask(Open, "admin"); ok || perms != Open {
		t.Error("an unknown role changed the permissions")
	}
}
