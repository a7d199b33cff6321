package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/confab-sfu/confab/room/access"
)

// runToken is "confab token": it mints an access token for one room and
// identity, and with -url prints the invitation link that carries it.
func runToken(args []string, stdout io.Writer, getenv func(string) string, now time.Time) error {
	fs := flag.NewFlagSet("confab token", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var (
		roomName = fs.String("room", "", "room the token admits to (required)")
		identity = fs.String("identity", "", "who the token is for: a stable user id (required)")
		name     = fs.String("name", "", "display name to show (default: what the user types)")
		role     = fs.String("role", string(access.Speaker), "viewer (receive only), speaker, or moderator (may mute and remove others)")
		ttl      = fs.Duration("ttl", time.Hour, "how long the token is valid")
		secret   = fs.String("secret", "", "signing secret; default CONFAB_AUTH_SECRET, the server's -auth-secret")
		record   = fs.Bool("record", false, "the room records from its start when this token's join creates it (the server needs -record-dir)")
		base     = fs.String("url", "", "server base URL; when given, print the invitation link instead of the bare token")
	)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fmt.Fprintln(stdout, "Usage: confab token -room R -identity I [-role viewer|speaker|moderator] [-ttl 1h] [-name N] [-record] [-url https://host]")
			fs.PrintDefaults()
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *secret == "" {
		*secret = getenv("CONFAB_AUTH_SECRET")
	}
	if *secret == "" {
		return fmt.Errorf("no secret: pass -secret or set CONFAB_AUTH_SECRET to the server's -auth-secret")
	}
	tok, err := access.Mint([]byte(*secret), access.TokenParams{Room: *roomName, Identity: *identity, Name: *name, Role: access.Role(*role), TTL: *ttl, Record: *record}, now)
	if err != nil {
		return err // it says what was wrong: "mint token: ..."
	}
	if *base == "" {
		fmt.Fprintln(stdout, tok)
		return nil
	}
	u, err := url.Parse(strings.TrimRight(*base, "/") + "/r/" + url.PathEscape(*roomName))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("-url %q: want http(s)://host[:port]", *base)
	}
	u.RawQuery = url.Values{"token": {tok}}.Encode()
	fmt.Fprintln(stdout, u.String())
	return nil
}
