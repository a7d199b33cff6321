package signal

import (
	"errors"
	"fmt"
)

// Sentinel errors callers branch on.
var (
	// ErrClosed means the connection is gone.
	ErrClosed = errors.New("signal: connection closed")
	// ErrSlowConsumer means the peer read too slowly and was disconnected.
	ErrSlowConsumer = errors.New("signal: write queue full")
)

// Error is a protocol error. It travels to the peer as
// {"type":"error","id":…,"code":…,"message":…}.
type Error struct {
	Code    string
	Message string
	// RetryAfter (server_busy) is how many seconds to wait before
	// trying again; URL (redirect) is the server to join instead.
	RetryAfter int
	URL        string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf builds an Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// AsError returns err as an *Error, or an internal Error carrying its text.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: CodeInternal, Message: err.Error()}
}
