package sfu

import "errors"

// Errors callers branch on.
var (
	// ErrGlare refuses a client offer while a server offer is outstanding:
	// the client is polite, takes the server's offer and offers again.
	ErrGlare = errors.New("an offer of the server is outstanding")
	// ErrNoOffer refuses an answer when no server offer is outstanding.
	ErrNoOffer = errors.New("no offer is outstanding")
	// ErrClosed is returned by a Peer that was closed.
	ErrClosed = errors.New("peer closed")
	// ErrInvalidSDP marks an offer or answer that cannot be applied.
	ErrInvalidSDP = errors.New("invalid sdp")
	// ErrCandidate marks a remote candidate that cannot be parsed or added.
	ErrCandidate = errors.New("invalid candidate")
	// ErrTooManyTracks refuses an offer that sends more tracks than allowed.
	ErrTooManyTracks = errors.New("too many published tracks")
	// ErrPublishDenied refuses media from a peer that may not publish.
	ErrPublishDenied = errors.New("publishing is not allowed")
	// ErrUnknownTrack names a track that is not live here, or not received
	// by the peer asked about it.
	ErrUnknownTrack = errors.New("no such track")
)

var (
	// errOfferTimedOut fails a peer whose client never answered an offer.
	errOfferTimedOut = errors.New("offer not answered in time")
	// errNoCodec is returned when a subscriber cannot receive a track's codec.
	errNoCodec = errors.New("subscriber does not support the codec")
)
