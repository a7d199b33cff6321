package cluster

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Version is the envelope version this package speaks. Envelopes of any
// other version are dropped (reason "version").
const Version = 1

// Limits on envelope fields. A NATS message is at most the server's
// max_payload (1 MiB by default), so data needs no limit of its own.
const (
	maxKind = 64
	maxRoom = 1024
)

// Envelope is what every cluster message carries, JSON-encoded:
//
//	{"v":1,"node":"<sender>","room":"<room>","kind":"...","seq":N,"data":{...}}
//
// Room is set on room subjects only. Seq counts the sender's messages.
type Envelope struct {
	V    int             `json:"v"`
	Node string          `json:"node"`
	Room string          `json:"room,omitempty"`
	Kind string          `json:"kind"`
	Seq  uint64          `json:"seq"`
	Data json.RawMessage `json:"data,omitempty"`
}

// Drop reasons: the label values of confab_cluster_dropped_total.
const (
	DropParse        = "parse"         // not a JSON envelope, or a field is malformed
	DropVersion      = "version"       // v is not Version
	DropEcho         = "echo"          // sent with this node's own ID
	DropUnknownNode  = "unknown_node"  // sender not in the live-node table
	DropRoomMismatch = "room_mismatch" // room differs from the subject's, or not joined
	DropSlowConsumer = "slow_consumer" // NATS dropped messages a handler did not take in time
)

// decodeError carries the drop reason of an envelope that was refused.
type decodeError struct {
	reason string
	err    error
}

func (e *decodeError) Error() string { return e.reason + ": " + e.err.Error() }
func (e *decodeError) Unwrap() error { return e.err }

// dropReason returns the drop reason of a decode error ("parse" if the
// error is of another sort).
func dropReason(err error) string {
	var de *decodeError
	if errors.As(err, &de) {
		return de.reason
	}
	return DropParse
}

// decodeEnvelope parses and checks one message. It never panics, whatever
// the bytes; the error's reason is DropParse or DropVersion.
func decodeEnvelope(b []byte) (Envelope, error) {
	var env Envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return Envelope{}, &decodeError{DropParse, err}
	}
	if env.V != Version {
		return Envelope{}, &decodeError{DropVersion, fmt.Errorf("envelope version %d, want %d", env.V, Version)}
	}
	if !validNodeID(env.Node) {
		return Envelope{}, &decodeError{DropParse, fmt.Errorf("bad node id %q", env.Node)}
	}
	if !validKind(env.Kind) {
		return Envelope{}, &decodeError{DropParse, fmt.Errorf("bad kind %q", env.Kind)}
	}
	if len(env.Room) > maxRoom || !utf8.ValidString(env.Room) {
		return Envelope{}, &decodeError{DropParse, errors.New("bad room name")}
	}
	return env, nil
}

// encodeEnvelope marshals data into an envelope.
func encodeEnvelope(node, room, kind string, seq uint64, data any) ([]byte, error) {
	env := Envelope{V: Version, Node: node, Room: room, Kind: kind, Seq: seq}
	if data != nil {
		raw, err := json.Marshal(data)
		if err != nil {
			return nil, fmt.Errorf("%w: data of %q: %w", ErrBadArgument, kind, err)
		}
		env.Data = raw
	}
	return json.Marshal(env)
}

// validKind accepts short printable ASCII names without spaces: they
// become metric label values, so they must stay tame.
func validKind(k string) bool {
	if len(k) == 0 || len(k) > maxKind {
		return false
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}

func validRoom(room string) bool {
	return room != "" && len(room) <= maxRoom && utf8.ValidString(room)
}

// Subjects. Every subject starts with the configured prefix p:
//
//	p.node.hb            heartbeats and byes of every node
//	p.node.<id>.hello    answers to this node's hello (heartbeats)
//	p.node.<id>.req      requests to node <id>
//	p.room.<enc>         events of one room, enc = base64url(room), no padding
type subjects struct{ prefix string }

func (s subjects) heartbeat() string        { return s.prefix + ".node.hb" }
func (s subjects) hello(node string) string { return s.prefix + ".node." + node + ".hello" }
func (s subjects) request(node string) string {
	return s.prefix + ".node." + node + ".req"
}
func (s subjects) room(room string) string { return s.prefix + ".room." + EncodeRoom(room) }

// EncodeRoom is the subject token of a room name: room names may hold
// '.', the NATS token separator, and other characters subjects refuse.
func EncodeRoom(room string) string { return base64.RawURLEncoding.EncodeToString([]byte(room)) }

// DecodeRoom reverses EncodeRoom.
func DecodeRoom(token string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return "", fmt.Errorf("%w: room token %q: %w", ErrBadArgument, token, err)
	}
	return string(b), nil
}
