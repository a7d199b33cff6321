// Package pionlog hands pion's loggers to log/slog, so pion's messages
// carry the same format and attributes as Confab's own (plus "pion": the
// pion scope, such as "pc" or "ice").
//
// Two things keep pion quiet where it should be:
//   - Nothing is formatted unless the slog logger wants the level: pion
//     formats ICE candidates and packets at debug and trace level on busy
//     paths, and a profile showed 2.5% of the server's CPU going to strings
//     that were then thrown away.
//   - Messages every connection's ordinary teardown produces (see benign)
//     are debug, not warnings, so that warnings stay worth reading.
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

// benign lists warnings that a connection's ordinary end produces, by pion
// scope and exact message. They are logged at debug level: ~600 join/leave
// cycles of the load tool produced ~1000 of them at warn.
var benign = map[string]map[string]bool{
	"pc": {
		// The SRTP session is closed under pion's loop that accepts streams
		// of media sections not yet signalled.
		"Failed to accept RTP stream is already closed":  true,
		"Failed to accept RTCP stream is already closed": true,
	},
	"ice": {
		// The agent's checks run before the remote candidates arrived (or
		// after the connection was closed): trickle ICE in its normal order.
		"Failed to ping without candidate pairs. Connection is not possible yet.": true,
	},
}

// level demotes a benign warning to debug; everything else keeps level.
func (l *logger) level(level slog.Level, msg string) slog.Level {
	if level == slog.LevelWarn && benign[l.scope][msg] {
		return slog.LevelDebug
	}
	return level
}

func (l *logger) print(level slog.Level, msg string) {
	ctx := context.Background()
	level = l.level(level, msg)
	if l.log.Enabled(ctx, level) {
		l.log.Log(ctx, level, msg)
	}
}

// printf formats only when level is enabled. Demotion only lowers a level,
// so a message whose level is off can never be logged and is dropped first.
func (l *logger) printf(level slog.Level, format string, args []any) {
	if !l.log.Enabled(context.Background(), level) {
		return
	}
	l.print(level, fmt.Sprintf(format, args...))
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
