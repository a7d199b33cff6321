package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Kinds of reply envelopes.
const (
	kindReply = "reply"
	kindError = "error"
)

// HandlerFunc answers a request of one kind from node from. Its result
// is marshalled to JSON as the reply's data; an error travels back as a
// *RemoteError (code from the error's ErrorCode() string method if it has
// one, else CodeHandler). ctx ends after Config.RequestTimeout or at Close.
type HandlerFunc func(ctx context.Context, from string, data json.RawMessage) (any, error)

// Handle installs fn for requests of kind, replacing any earlier one; a
// nil fn removes it. It panics on an invalid kind, like http.Handle on an
// invalid pattern: that is a programming error.
func (n *Node) Handle(kind string, fn HandlerFunc) {
	if !validKind(kind) {
		panic(fmt.Sprintf("cluster: Handle: invalid kind %q", kind))
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if fn == nil {
		delete(n.handlers, kind)
		return
	}
	n.handlers[kind] = fn
}

// Request sends data to node and decodes the reply's data into out (out
// may be nil to ignore it). Without a deadline in ctx, RequestTimeout
// applies. A request to this node's own ID runs its handler directly.
// Errors are *RequestError naming the node and kind, wrapping
// ErrUnknownNode, ErrNoResponders, ErrTimeout, ErrNotConnected, ErrClosed,
// ErrBadReply, ErrBadArgument, a *RemoteError, or ctx's error.
func (n *Node) Request(ctx context.Context, node, kind string, data, out any) error {
	start := time.Now()
	err := n.request(ctx, node, kind, data, out)
	n.metrics.observeRequest(kind, time.Since(start), err)
	if err != nil {
		return &RequestError{Node: node, Kind: kind, Err: err}
	}
	return nil
}

func (n *Node) request(ctx context.Context, node, kind string, data, out any) error {
	if !validNodeID(node) || !validKind(kind) {
		return ErrBadArgument
	}
	if n.isClosed() {
		return ErrClosed
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.cfg.RequestTimeout)
		defer cancel()
	}
	if node == n.cfg.NodeID {
		return n.requestSelf(ctx, kind, data, out)
	}
	if !n.table.known(node) {
		return ErrUnknownNode
	}
	body, err := encodeEnvelope(n.cfg.NodeID, "", kind, n.seq.Add(1), data)
	if err != nil {
		return err
	}
	if !n.nc.IsConnected() {
		return ErrNotConnected
	}
	start := time.Now()
	n.metrics.out.WithLabelValues(kind).Inc()
	msg, err := n.nc.RequestWithContext(ctx, n.subj.request(node), body)
	if err != nil {
		return requestError(err, time.Since(start))
	}
	return n.decodeReply(node, msg.Data, out)
}

func requestError(err error, waited time.Duration) error {
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return ErrNoResponders
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return fmt.Errorf("%w after %v: %w", ErrTimeout, waited.Round(time.Millisecond), err)
	case errors.Is(err, context.Canceled):
		return err
	}
	return natsError(err)
}

// decodeReply checks that the reply comes from node and unpacks it.
func (n *Node) decodeReply(node string, b []byte, out any) error {
	env, err := decodeEnvelope(b)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadReply, err)
	}
	if env.Node != node {
		return fmt.Errorf("%w: from node %q", ErrBadReply, env.Node)
	}
	n.metrics.in.WithLabelValues(env.Kind).Inc()
	switch env.Kind {
	case kindError:
		var re RemoteError
		if err := json.Unmarshal(env.Data, &re); err != nil || re.Code == "" {
			return fmt.Errorf("%w: undecodable error", ErrBadReply)
		}
		return &re
	case kindReply:
		return decodeData(env.Data, out)
	}
	return fmt.Errorf("%w: kind %q", ErrBadReply, env.Kind)
}

func decodeData(data json.RawMessage, out any) error {
	if out == nil || len(data) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%w: decode data: %w", ErrBadReply, err)
	}
	return nil
}

// requestSelf runs this node's own handler, with the same JSON round trip
// as a remote request so that callers see the same values.
func (n *Node) requestSelf(ctx context.Context, kind string, data, out any) error {
	raw, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("%w: data of %q: %w", ErrBadArgument, kind, err)
	}
	n.mu.Lock()
	fn := n.handlers[kind]
	n.mu.Unlock()
	if fn == nil {
		return &RemoteError{Code: CodeNoHandler, Message: fmt.Sprintf("no handler for %q", kind)}
	}
	res, err := fn(ctx, n.cfg.NodeID, raw)
	if err != nil {
		return remoteErrorOf(err)
	}
	b, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("%w: marshal reply: %w", ErrBadReply, err)
	}
	return decodeData(b, out)
}

// Reply is one node's answer to RequestAll.
type Reply struct {
	Node string
	Data json.RawMessage // the reply's data when Err is nil
	Err  error           // a *RequestError
}

// RequestAll asks every other live node at once and waits for all of
// them, each for at most GatherTimeout (or ctx's deadline if sooner).
// Replies are in node ID order; a node that failed has Err set. Used
// for room snapshots when a room is joined.
func (n *Node) RequestAll(ctx context.Context, kind string, data any) []Reply {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.GatherTimeout)
	defer cancel()
	nodes := n.table.list()
	replies := make([]Reply, len(nodes))
	var wg sync.WaitGroup
	for i, info := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var raw json.RawMessage
			err := n.Request(ctx, info.ID, kind, data, &raw)
			replies[i] = Reply{Node: info.ID, Data: raw, Err: err}
		}()
	}
	wg.Wait()
	return replies
}
