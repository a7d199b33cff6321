package sfu

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// PionLoggerFactory hands pion's loggers to slog, so pion's messages carry
// the same format and attributes as ours, and hundreds of peers leaving do
// not print pion's shutdown chatter ("closed pipe") to stderr unless the
// logger wants debug. Pion's info (state changes of every connection) is
// debug here.
func PionLoggerFactory(l *slog.Logger) logging.LoggerFactory { return slogFactory{l} }

type slogFactory struct{ log *slog.Logger }

func (f slogFactory) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{f.log.With("pion", scope)}
}

type pionLogger struct{ log *slog.Logger }

func (l pionLogger) at(level slog.Level, msg string) {
	l.log.Log(context.Background(), level, msg)
}

func (l pionLogger) Trace(msg string) { l.at(slog.LevelDebug-4, msg) }
func (l pionLogger) Tracef(format string, a ...any) {
	l.at(slog.LevelDebug-4, fmt.Sprintf(format, a...))
}
func (l pionLogger) Debug(msg string)               { l.at(slog.LevelDebug, msg) }
func (l pionLogger) Debugf(format string, a ...any) { l.at(slog.LevelDebug, fmt.Sprintf(format, a...)) }
func (l pionLogger) Info(msg string)                { l.at(slog.LevelDebug, msg) }
func (l pionLogger) Infof(format string, a ...any)  { l.at(slog.LevelDebug, fmt.Sprintf(format, a...)) }
func (l pionLogger) Warn(msg string)                { l.at(slog.LevelWarn, msg) }
func (l pionLogger) Warnf(format string, a ...any)  { l.at(slog.LevelWarn, fmt.Sprintf(format, a...)) }
func (l pionLogger) Error(msg string)               { l.at(slog.LevelError, msg) }
func (l pionLogger) Errorf(format string, a ...any) { l.at(slog.LevelError, fmt.Sprintf(format, a...)) }
