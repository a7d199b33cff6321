// Package pionlog hands pion's loggers to log/slog, so pion's messages
// carry the same format and attributes as Confab's own (plus "pion": the
// pion scope, such as "pc" or "ice").
//
// Two things keep pion quiet where it should be:
//   - Nothing is formatted unless the slog logger wants the level: pion
//     formats ICE candidates and packets at debug and trace level on busy
//     paths, and a profile showed 2.5% of the server's CPU going to strings
//     that were then thrown away.
//   - Warnings that every connection's ordinary life produces, chiefly at
//     its end, are debug (see benign), so that warnings stay worth reading.
//
// Pion's info messages (state changes of every connection) are debug here.
package pionlog

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// LevelTrace is the slog level of pion's trace messages, below debug.
const LevelTrace = slog.LevelDebug - 4

// Factory returns a pion LoggerFactory that writes to l.
func Factory(l *slog.Logger) logging.LoggerFactory { return factory{l} }

type factory struct{ log *slog.Logger }

func (f factory) NewLogger(scope string) logging.LeveledLogger {
	return &logger{log: f.log.With("pion", scope), scope: scope}
}

// logger is the LeveledLogger of one pion scope.
type logger struct {
	log   *slog.Logger
	scope string
}

// benign lists warnings that pion logs in the ordinary life of a
// connection, chiefly its end, by pion scope and format string (the whole
// message for the methods without f). They are logged at debug level.
// ~600 join/leave cycles of the load tool produced ~1000 such lines at warn;
// in a 15-cycle churn run the ssrc lines alone were ~75.
var benign = map[string][]benignWarning{
	"pc": {
		// The SRTP session was closed under pion's loops that accept streams
		// of media sections not yet signalled: the connection ended.
		{format: "Failed to accept RTP %v", cause: "stream is already closed"},
		{format: "Failed to accept RTCP %v", cause: "stream is already closed"},
		// srtp's words for "the session is closed" when a stream is opened.
		{format: "Failed to open RTCP stream for %d: %v", cause: "failed to cast child"},
		// A new track's first packet never came: the connection ended first.
		{format: "Could not determine PayloadType for SSRC %d (%s)", cause: "EOF"},
		// Reports about a track that renegotiation has just removed (or not
		// yet added); pion drops them, and RTCP alone never starts a track.
		{format: "Incoming unhandled RTCP ssrc(%d), OnTrack will not be fired"},
	},
	"ice": {
		// The agent's checks started before the remote candidates arrived,
		// or after the connection was closed: trickle ICE in its usual order.
		{format: "Failed to ping without candidate pairs. Connection is not possible yet."},
	},
	"mux": {
		// DTLS or SRTP packets that came before their endpoint was ready (or
		// a DTLS alert after it closed) are queued, not lost. Dropping them
		// ("not adding to queue") stays a warning.
		{format: "Warning: mux: no endpoint for packet starting with %d, adding to queue size(%d)"},
	},
}

// benignWarning is a warning pion logs in a connection's ordinary life.
type benignWarning struct {
	format string
	// cause, if set, must be the last argument as printed (the error):
	// the same message with another cause is a real warning.
	cause string
}

// demoted reports whether a warning with format and args is benign. Only
// the last argument is printed, and only for entries that need it.
func (l *logger) demoted(format string, args []any) bool {
	for _, b := range benign[l.scope] {
		if b.format != format {
			continue
		}
		if b.cause == "" {
			return true
		}
		return len(args) > 0 && fmt.Sprint(args[len(args)-1]) == b.cause
	}
	return false
}

func (l *logger) print(level slog.Level, msg string) { l.emit(level, msg, nil, false) }

func (l *logger) printf(level slog.Level, format string, args []any) {
	l.emit(level, format, args, true)
}

// emit logs at level, demoted if the warning is benign, and formats only
// when that level is enabled.
func (l *logger) emit(level slog.Level, format string, args []any, formatted bool) {
	if level == slog.LevelWarn && l.demoted(format, args) {
		level = slog.LevelDebug
	}
	ctx := context.Background()
	if !l.log.Enabled(ctx, level) {
		return
	}
	if m, ok := racyFormats[l.scope][format]; ok {
		l.log.Log(ctx, level, m, identify(args)...)
		return
	}
	msg := format
	if formatted {
		msg = fmt.Sprintf(format, args...)
	}
	l.log.Log(ctx, level, msg)
}

// racyFormats are messages whose argument pion prints whole (%+v) while
// its other goroutines still write it: formatting reads a new track's
// fields without its lock (a data race the race detector reports, when
// debug logging is on and a renegotiation adds the track's simulcast
// streams meanwhile). They are logged as the message given here, with
// what the argument tells through its locked getters.
var racyFormats = map[string]map[string]string{
	"pc": {"got new track: %+v": "got new track"},
}

// identify returns the id and RID of arguments that have them (pion's
// TrackRemote reads both under its lock).
func identify(args []any) []any {
	var attrs []any
	for _, a := range args {
		if t, ok := a.(interface {
			ID() string
			RID() string
		}); ok {
			attrs = append(attrs, "track", t.ID(), "rid", t.RID())
		}
	}
	return attrs
}

func (l *logger) Trace(msg string)                  { l.print(LevelTrace, msg) }
func (l *logger) Tracef(format string, args ...any) { l.printf(LevelTrace, format, args) }
func (l *logger) Debug(msg string)                  { l.print(slog.LevelDebug, msg) }
func (l *logger) Debugf(format string, args ...any) { l.printf(slog.LevelDebug, format, args) }
func (l *logger) Info(msg string)                   { l.print(slog.LevelDebug, msg) }
func (l *logger) Infof(format string, args ...any)  { l.printf(slog.LevelDebug, format, args) }
func (l *logger) Warn(msg string)                   { l.print(slog.LevelWarn, msg) }
func (l *logger) Warnf(format string, args ...any)  { l.printf(slog.LevelWarn, format, args) }
func (l *logger) Error(msg string)                  { l.print(slog.LevelError, msg) }
func (l *logger) Errorf(format string, args ...any) { l.printf(slog.LevelError, format, args) }
