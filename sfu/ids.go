package sfu

import (
	"crypto/rand"
	"encoding/base32"
	"strings"
)

// TrackID names a published track, the same for the publisher and every
// subscriber: the server assigns it, so no client can pick another's.
type TrackID string

// PeerID names a Peer: in a room, the participant (or WHEP viewer) it
// carries media for.
type PeerID string

// Source is what a published track carries. The names are the protocol's
// (signal.Source*): sfu sees them only as the publisher announced them and
// treats SourceScreen first when bandwidth is short.
type Source string

// The sources a client announces.
const (
	SourceCamera      Source = "camera"
	SourceMicrophone  Source = "microphone"
	SourceScreen      Source = "screen"
	SourceScreenAudio Source = "screen_audio"
)

// NewID returns a random id with a one-letter prefix: 80 random bits, so
// ids never collide and cannot be guessed.
func NewID(prefix string) string {
	var b [10]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on supported platforms
	return prefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}
