package client

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors callers branch on. Refusals by the server come back as
// the *signal.Error it sent (for the WebSocket) or an *HTTPStatusError (for
// WHIP and WHEP), wrapped with what was being done.
var (
	// ErrClosed means the peer has left (or is leaving).
	ErrClosed = errors.New("client: peer closed")
	// ErrNoTrack means Publish was called without a track.
	ErrNoTrack = errors.New("client: no track to publish")
	// ErrNoSimulcastExtensions means the mid and rid header extensions a
	// simulcast sender needs were not negotiated.
	ErrNoSimulcastExtensions = errors.New("client: simulcast header extensions were not negotiated")
	// ErrGaveUp means a Peer with Reconnect stopped trying to rejoin
	// (Reconnect.MaxAttempts or MaxOutage).
	ErrGaveUp = errors.New("client: gave up reconnecting")
	// ErrNoLocation means a WHIP or WHEP server created a session without
	// saying where it is (no Location header), so it could not be ended.
	ErrNoLocation = errors.New("client: 201 Created without a Location")
)

// HTTPStatusError is a WHIP or WHEP request the server refused.
type HTTPStatusError struct {
	Status int
	Body   string
}

func (e *HTTPStatusError) Error() string {
	return fmt.Sprintf("HTTP %d: %s", e.Status, strings.TrimSpace(e.Body))
}
