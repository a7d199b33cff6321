package cluster

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go"
)

// onRequest handles a message on this node's request subject. Refused
// requests are counted as dropped and, when they carry a reply subject,
// answered with an error so the requester fails fast instead of timing
// out.
func (n *Node) onRequest(msg *nats.Msg) {
	env, err := decodeEnvelope(msg.Data)
	switch {
	case err != nil:
		n.drop(dropReason(err), msg.Subject, err)
		n.replyError(msg, CodeBadRequest, err.Error())
		return
	case env.Node == n.cfg.NodeID:
		n.drop(DropEcho, msg.Subject, env.Kind)
		n.replyError(msg, CodeBadRequest, "sender uses this node's own ID")
		return
	case !n.table.known(env.Node):
		n.drop(DropUnknownNode, msg.Subject, env.Node)
		n.replyError(msg, CodeUnknownNode, fmt.Sprintf("node %q is not in %q's table", env.Node, n.cfg.NodeID))
		return
	}
	n.metrics.in.WithLabelValues(env.Kind).Inc()
	fn, code := n.startServing(env.Kind)
	if fn == nil {
		n.replyError(msg, code, fmt.Sprintf("node %q cannot serve %q now", n.cfg.NodeID, env.Kind))
		return
	}
	// Handlers may take a while (a relay negotiation); each runs on its
	// own goroutine so one slow request does not hold up the others.
	go func() {
		defer n.doneServing()
		n.serve(msg, env, fn)
	}()
}

// startServing finds the handler and reserves a slot for it; on refusal
// it returns nil and the error code.
func (n *Node) startServing(kind string) (HandlerFunc, string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch fn := n.handlers[kind]; {
	case n.closed:
		return nil, CodeClosing
	case fn == nil:
		return nil, CodeNoHandler
	case n.inflight >= maxInflight:
		return nil, CodeBusy
	default:
		n.inflight++
		n.served.Add(1)
		return fn, ""
	}
}

func (n *Node) doneServing() {
	n.mu.Lock()
	n.inflight--
	n.mu.Unlock()
	n.served.Done()
}

func (n *Node) serve(msg *nats.Msg, env Envelope, fn HandlerFunc) {
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.RequestTimeout)
	defer cancel()
	data := env.Data
	if data == nil {
		data = json.RawMessage("null")
	}
	res, err := fn(ctx, env.Node, data)
	if err != nil {
		re := remoteErrorOf(err)
		n.log.Debug("cluster: request failed", "peer", env.Node, "kind", env.Kind, "err", err)
		n.replyError(msg, re.Code, re.Message)
		return
	}
	body, err := encodeEnvelope(n.cfg.NodeID, "", kindReply, n.seq.Add(1), res)
	if err != nil {
		n.replyError(msg, CodeHandler, fmt.Sprintf("reply does not marshal: %v", err))
		return
	}
	n.respond(msg, kindReply, body)
}

func (n *Node) replyError(msg *nats.Msg, code, message string) {
	if msg.Reply == "" {
		return
	}
	body, err := encodeEnvelope(n.cfg.NodeID, "", kindError, n.seq.Add(1), RemoteError{Code: code, Message: message})
	if err != nil {
		return // RemoteError always marshals
	}
	n.respond(msg, kindError, body)
}

func (n *Node) respond(msg *nats.Msg, kind string, body []byte) {
	if msg.Reply == "" {
		return
	}
	if err := msg.Respond(body); err != nil {
		n.log.Debug("cluster: reply", "kind", kind, "err", natsError(err))
		return
	}
	n.metrics.out.WithLabelValues(kind).Inc()
}
