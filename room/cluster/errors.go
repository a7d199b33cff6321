package cluster

import (
	"errors"
	"fmt"
)

// Errors callers may branch on with errors.Is.
var (
	// ErrConfig: the Config is unusable; the message says why.
	ErrConfig = errors.New("cluster: bad config")
	// ErrClosed: the node has been closed.
	ErrClosed = errors.New("cluster: node closed")
	// ErrNotConnected: the node is (re)connecting to NATS right now;
	// nothing is buffered for later.
	ErrNotConnected = errors.New("cluster: not connected to NATS")
	// ErrUnknownNode: the target is not in the live-node table.
	ErrUnknownNode = errors.New("unknown node")
	// ErrNoResponders: NATS knows no subscriber for the node's request
	// subject (the node is gone or not yet subscribed).
	ErrNoResponders = errors.New("node not listening")
	// ErrTimeout: no reply before the deadline.
	ErrTimeout = errors.New("timed out")
	// ErrNoHandler: the target node has no handler for the kind.
	ErrNoHandler = errors.New("no handler for this kind")
	// ErrBadReply: the reply was not a valid envelope from the target.
	ErrBadReply = errors.New("bad reply")
	// ErrBadArgument: an empty or malformed room, kind or node name, or
	// data that does not marshal to JSON.
	ErrBadArgument = errors.New("cluster: bad argument")
)

// Codes of a RemoteError produced by the transport itself. A handler's
// own error carries the code its ErrorCode method returns, or CodeHandler.
const (
	CodeHandler     = "handler"      // the handler returned an error
	CodeNoHandler   = "no_handler"   // no handler for the kind
	CodeBadRequest  = "bad_request"  // the request did not decode
	CodeUnknownNode = "unknown_node" // the requester is not in the responder's table
	CodeBusy        = "busy"         // too many requests in flight on the responder
	CodeClosing     = "closing"      // the responder is shutting down
)

// RequestError says which request to which node failed; Err says how
// (one of the sentinel errors above, a *RemoteError, or a context error).
type RequestError struct {
	Node string
	Kind string
	Err  error
}

func (e *RequestError) Error() string {
	return fmt.Sprintf("cluster: request %q to node %q: %v", e.Kind, e.Node, e.Err)
}

func (e *RequestError) Unwrap() error { return e.Err }

// RemoteError is an error returned by the responding node.
type RemoteError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("remote error (%s): %s", e.Code, e.Message)
}

// Is lets errors.Is(err, ErrNoHandler) match a remote "no handler".
func (e *RemoteError) Is(target error) bool {
	return target == ErrNoHandler && e.Code == CodeNoHandler
}

// remoteErrorOf turns a handler's error into what travels back.
func remoteErrorOf(err error) *RemoteError {
	var re *RemoteError
	if errors.As(err, &re) {
		return re
	}
	code := CodeHandler
	var coder interface{ ErrorCode() string }
	if errors.As(err, &coder) && validKind(coder.ErrorCode()) {
		code = coder.ErrorCode()
	}
	return &RemoteError{Code: code, Message: err.Error()}
}
