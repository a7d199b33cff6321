package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

type codedError struct{ code, msg string }

func (e codedError) Error() string     { return e.msg }
func (e codedError) ErrorCode() string { return e.code }

type echoReply struct {
	From string `json:"from"`
	By   string `json:"by"`
	Text string `json:"text"`
}

// Requests go to the named node and come back with its reply; handler
// errors, missing handlers, unknown nodes and timeouts come back as
// errors naming the node and the kind, and the metrics count them.
func TestRequestReplyToNamedNode(t *testing.T) {
	t.Parallel()
	nodes, _ := threeNodes(t)
	a, b, c := nodes[0], nodes[1], nodes[2]
	for _, n := range nodes {
		n.Handle("echo", func(_ context.Context, from string, data json.RawMessage) (any, error) {
			var text string
			if err := json.Unmarshal(data, &text); err != nil {
				return nil, err
			}
			return echoReply{From: from, By: n.ID(), Text: text}, nil
		})
	}
	a.Handle("mute", func(context.Context, string, json.RawMessage) (any, error) {
		return nil, codedError{"not_found", "no participant p1 in room r"}
	})
	a.Handle("slow", func(ctx context.Context, _ string, _ json.RawMessage) (any, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	ctx := context.Background()

	var got echoReply
	if err := b.Request(ctx, "a", "echo", "hello", &got); err != nil {
		t.Fatalf("b asks a: %v", err)
	}
	if got != (echoReply{From: "b", By: "a", Text: "hello"}) {
		t.Errorf("b asks a: got %+v", got)
	}
	if err := c.Request(ctx, "b", "echo", "x", &got); err != nil || got.By != "b" || got.From != "c" {
		t.Errorf("c asks b: %+v, %v", got, err)
	}
	if err := a.Request(ctx, "a", "echo", "self", &got); err != nil || got.By != "a" || got.From != "a" {
		t.Errorf("a asks itself: %+v, %v", got, err)
	}

	err := b.Request(ctx, "a", "mute", map[string]string{"participant": "p1"}, nil)
	var re *RemoteError
	var rq *RequestError
	if !errors.As(err, &re) || re.Code != "not_found" || !errors.As(err, &rq) || rq.Node != "a" || rq.Kind != "mute" {
		t.Fatalf("handler error: %v", err)
	}
	if msg := err.Error(); !strings.Contains(msg, `node "a"`) || !strings.Contains(msg, "no participant p1") {
		t.Errorf("handler error message %q does not say which node and what failed", msg)
	}
	if err := b.Request(ctx, "a", "nope", nil, nil); !errors.Is(err, ErrNoHandler) {
		t.Errorf("unknown kind: %v, want ErrNoHandler", err)
	}
	if err := b.Request(ctx, "ghost", "echo", "x", nil); !errors.Is(err, ErrUnknownNode) || !strings.Contains(err.Error(), "ghost") {
		t.Errorf("unknown node: %v, want ErrUnknownNode naming it", err)
	}
	tctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	err = b.Request(tctx, "a", "slow", nil, nil)
	cancel()
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("slow handler: %v, want ErrTimeout", err)
	}
	var wrongType int
	if err := b.Request(ctx, "a", "echo", "x", &wrongType); !errors.Is(err, ErrBadReply) {
		t.Errorf("reply into the wrong type: %v, want ErrBadReply", err)
	}

	s := b.Stats()
	if s.Requests["echo"] != 3 || s.Failures["remote"] != 2 || s.Failures["timeout"] != 1 ||
		s.Failures["unknown_node"] != 1 || s.Failures["bad_reply"] != 1 {
		t.Errorf("b's request stats: requests %v failures %v", s.Requests, s.Failures)
	}
	if in := a.Stats().In["echo"]; in != 2 {
		t.Errorf("a counted %d echo requests in, want 2 (both from b; a's own ran locally)", in)
	}
}

// RequestAll gathers every other node's reply; a node that fails (here:
// no handler) is in the result with its error, a slow one with a timeout
// no later than GatherTimeout.
func TestRequestAllGathersReplies(t *testing.T) {
	t.Parallel()
	nodes, _ := threeNodes(t)
	nodes[1].Handle("snapshot", func(context.Context, string, json.RawMessage) (any, error) {
		return map[string]int{"members": 2}, nil
	})
	nodes[2].Handle("snapshot", func(ctx context.Context, _ string, _ json.RawMessage) (any, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	start := time.Now()
	replies := nodes[0].RequestAll(context.Background(), "snapshot", map[string]string{"room": "r"})
	took := time.Since(start)
	if len(replies) != 2 || replies[0].Node != "b" || replies[1].Node != "c" {
		t.Fatalf("replies %+v, want b and c", replies)
	}
	if replies[0].Err != nil || string(replies[0].Data) != `{"members":2}` {
		t.Errorf("b's reply: %s, %v", replies[0].Data, replies[0].Err)
	}
	if !errors.Is(replies[1].Err, ErrTimeout) {
		t.Errorf("c's reply: %v, want ErrTimeout", replies[1].Err)
	}
	// Bounded by GatherTimeout (1 s), not by RequestTimeout (5 s); the
	// margin is for a loaded machine.
	if took > 3*time.Second {
		t.Errorf("RequestAll took %v, GatherTimeout is %v", took, nodes[0].cfg.GatherTimeout)
	}
	t.Logf("RequestAll with one silent node took %v", took.Round(time.Millisecond))
}
