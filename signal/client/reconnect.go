package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/confab-sfu/confab/signal"
)

// Reconnect makes a Peer rejoin its room when its connection is lost: the
// signaling WebSocket ends without a final goodbye (the server went away
// or was killed) or the media connection fails. The peer joins again with
// the same room, name, token, lecture flag and role, through the next of
// its URLs (round robin, starting after the one that was lost), publishes
// the same tracks again (their sources keep writing into them; the server
// sees new tracks) and receives again. Events and OnTrack keep going to
// the same reader and callback, with TypeReconnecting and TypeReconnected
// events between the sessions. The tracks received after a rejoin are new
// ones (new ids, through OnTrack): subscriptions made for the old ones
// are to be made again.
//
// A refusal another server cannot fix (room_full, forbidden, a token
// problem, a bye with code removed...) stops reconnecting, as does giving
// up (MaxAttempts, MaxOutage): the peer then ends with a TypeEnded event
// and Err says why.
type Reconnect struct {
	// URLs are the servers to rejoin through (nodes of a cluster, or a
	// load balancer); Params.URL comes first when it is not among them.
	URLs []string
	// The first pass over the URLs waits for nothing; after it, attempts
	// wait MinBackoff, doubling up to MaxBackoff, each wait spread by up
	// to half at random so that the members of a dead node do not all
	// arrive at once (defaults 250 ms and 5 s).
	MinBackoff, MaxBackoff time.Duration
	// AttemptTimeout bounds one attempt: dialing and joining (default 10 s).
	AttemptTimeout time.Duration
	// MaxAttempts gives up after this many failed attempts in a row (0: no
	// limit but MaxOutage).
	MaxAttempts int
	// MaxOutage gives up when no attempt succeeded this long after the
	// loss (default 1 minute).
	MaxOutage time.Duration
}

// Reconnect defaults.
const (
	DefaultMinBackoff     = 250 * time.Millisecond
	DefaultMaxBackoff     = 5 * time.Second
	DefaultAttemptTimeout = 10 * time.Second
	DefaultMaxOutage      = time.Minute
)

func (r Reconnect) withDefaults() Reconnect {
	if r.MinBackoff <= 0 {
		r.MinBackoff = DefaultMinBackoff
	}
	if r.MaxBackoff < r.MinBackoff {
		r.MaxBackoff = max(DefaultMaxBackoff, r.MinBackoff)
	}
	if r.AttemptTimeout <= 0 {
		r.AttemptTimeout = DefaultAttemptTimeout
	}
	if r.MaxOutage <= 0 {
		r.MaxOutage = DefaultMaxOutage
	}
	return r
}

// Events a Peer with Reconnect delivers on Events besides the server's.
// No server sends these types.
const (
	// TypeReconnecting: the session ended and the peer is rejoining. Code
	// says why: the server's bye code (shutting_down), CauseConnectionLost
	// or CauseMediaFailed.
	TypeReconnecting = "reconnecting"
	// TypeReconnected: the peer joined again. The message is the new
	// welcome: Participant is the peer's new self, Members and Tracks the
	// room as it is now; events that follow are relative to it.
	TypeReconnected = "reconnected"
	// TypeEnded: the peer stopped by itself. Code is the final refusal's
	// code or CodeGaveUp; Message says more. Err returns the error.
	TypeEnded = "ended"
)

// Why a session ended, in the Code of a TypeReconnecting event.
const (
	CauseConnectionLost = "connection_lost" // the WebSocket ended without a goodbye
	CauseMediaFailed    = "media_failed"    // ICE or DTLS failed
)

// CodeGaveUp is the Code of a TypeEnded event after ErrGaveUp.
const CodeGaveUp = "gave_up"

// Reconnection is one rejoin of a Peer.
type Reconnection struct {
	Cause       string    // why the session before ended (see TypeReconnecting)
	From, URL   string    // the server lost, the server rejoined through
	Participant string    // the new participant id
	Attempts    int       // joins tried, the one that succeeded included
	Lost        time.Time // when the loss was noticed
	Rejoined    time.Time // when the server's welcome arrived
}

// Reconnections lists the peer's rejoins, oldest first.
func (p *Peer) Reconnections() []Reconnection {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Reconnection(nil), p.reconnections...)
}

// urls lists where the peer may join: Params.URL, then Reconnect.URLs,
// each once.
func (prm Params) urls() []string {
	var out []string
	seen := map[string]bool{}
	add := func(u string) {
		if u != "" && !seen[u] {
			seen[u] = true
			out = append(out, u)
		}
	}
	add(prm.URL)
	if prm.Reconnect != nil {
		for _, u := range prm.Reconnect.URLs {
			add(u)
		}
	}
	if len(out) == 0 {
		out = []string{""} // dialing it fails with a clear error
	}
	return out
}

// finalCodes are refusals that another attempt, on any server, cannot
// fix (the web client's list, plus removal and malformed joins).
var finalCodes = map[string]bool{
	signal.CodeRoomFull: true, signal.CodeInvalidRoom: true, signal.CodeUnsupportedVersion: true,
	signal.CodeForbidden: true, signal.CodeUnauthorized: true, signal.CodeInvalidToken: true,
	signal.CodeTokenExpired: true, signal.CodeWrongRoom: true, signal.CodeRemoved: true,
	signal.CodeInvalidField: true, signal.CodeBadMessage: true,
}

// isFinal says whether err is a refusal no other attempt can fix.
func isFinal(err error) bool {
	var se *signal.Error
	return errors.As(err, &se) && finalCodes[se.Code]
}

// loop runs session after session: it serves one until it ends and, with
// Reconnect, rejoins and serves the next.
func (p *Peer) loop(s *session) {
	defer p.wg.Done()
	defer close(p.loopDone)
	for {
		cause, err := p.serve(s)
		if err != nil {
			p.end(s, err)
			return
		}
		if cause == "" {
			return
		}
		lost := time.Now()
		if cause == CauseMediaFailed {
			_ = s.sig.Send(&signal.Message{Type: signal.TypeLeave}) // the server still counts us in
		}
		_ = s.close()
		s.log.Info("session lost, rejoining", "cause", cause)
		p.pushEvent(&signal.Message{Type: TypeReconnecting, Code: cause, Message: "rejoining the room"})
		next, attempts, err := p.rejoin(s.url, s.index+1)
		if errors.Is(err, ErrClosed) {
			return
		}
		if err != nil {
			p.end(s, err)
			return
		}
		p.resume(s, next, cause, attempts, lost)
		s = next
	}
}

// lost says what the end of a session's signaling connection means: ""
// without Reconnect (the peer waits for Leave), a final error after a
// goodbye that sends the peer away, or the cause to rejoin for.
func (p *Peer) lost(s *session) (string, error) {
	if p.params.Reconnect == nil || p.ctx.Err() != nil {
		return "", nil
	}
	if b := s.bye; b != nil && b.Code != "" {
		if b.Code != signal.CodeShuttingDown {
			return "", &signal.Error{Code: b.Code, Message: b.Message}
		}
		return signal.CodeShuttingDown, nil
	}
	return CauseConnectionLost, nil
}

// rejoin joins again after losing the session through lost: one pass over
// the URLs starting after it, then with backoff. It returns the new
// session and the attempts it took, or why it stopped: ErrClosed when the
// peer is leaving, a final refusal, or ErrGaveUp.
func (p *Peer) rejoin(lost string, index int) (*session, int, error) {
	rc := p.params.Reconnect
	next := 0
	for i, u := range p.urls {
		if u == lost {
			next = i + 1
		}
	}
	start := time.Now()
	backoff := rc.MinBackoff
	for attempt := 1; ; attempt++ {
		if attempt > len(p.urls) {
			wait := backoff/2 + rand.N(backoff/2+1)
			backoff = min(2*backoff, rc.MaxBackoff)
			if time.Since(start)+wait > rc.MaxOutage {
				return nil, attempt - 1, fmt.Errorf("%w: %d attempts, %v without a server", ErrGaveUp, attempt-1, rc.MaxOutage)
			}
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-p.ctx.Done():
				t.Stop()
				return nil, attempt - 1, ErrClosed
			}
		}
		u := p.urls[next%len(p.urls)]
		next++
		ctx, cancel := context.WithTimeout(p.ctx, rc.AttemptTimeout)
		s, err := p.connect(ctx, u, index)
		cancel()
		switch {
		case err == nil:
			return s, attempt, nil
		case p.ctx.Err() != nil:
			return nil, attempt, ErrClosed
		case isFinal(err):
			return nil, attempt, err
		}
		p.params.Logger.Info("rejoin failed", "url", u, "attempt", attempt, "err", err)
		if (rc.MaxAttempts > 0 && attempt >= rc.MaxAttempts) || time.Since(start) >= rc.MaxOutage {
			return nil, attempt, fmt.Errorf("%w after %d attempts in %v: %w", ErrGaveUp, attempt, time.Since(start).Round(time.Millisecond), err)
		}
	}
}

// resume makes the rejoined session the peer's, tells the reader of
// Events, and publishes the peer's tracks again.
func (p *Peer) resume(old, s *session, cause string, attempts int, lost time.Time) {
	p.install(s)
	p.mu.Lock()
	p.reconnections = append(p.reconnections, Reconnection{Cause: cause, From: old.url, URL: s.url,
		Participant: s.welcome.Participant.ID, Attempts: attempts, Lost: lost, Rejoined: time.Now()})
	p.mu.Unlock()
	ev := *s.welcome
	ev.Type, ev.ID = TypeReconnected, ""
	p.pushEvent(&ev)
	s.log.Info("rejoined", "from", old.url, "cause", cause, "attempts", attempts, "after", time.Since(lost))
	p.republish(s)
}

// end stops a peer that cannot go on: its session closes, the reader of
// Events gets a TypeEnded event, and Err returns err.
func (p *Peer) end(s *session, err error) {
	_ = s.close()
	s.log.Info("peer ended", "err", err)
	p.mu.Lock()
	p.endErr = err
	p.mu.Unlock()
	code := CodeGaveUp
	var se *signal.Error
	if errors.As(err, &se) {
		code = se.Code
	}
	p.pushEvent(&signal.Message{Type: TypeEnded, Code: code, Message: err.Error()})
	p.cancel()
}
