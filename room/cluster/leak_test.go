package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Close stops everything the nodes started (loops, handlers, NATS
// connections, embedded servers), even with a request handler running
// and rooms joined. Not parallel: it compares goroutines with the
// baseline.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	nodes, _ := threeNodes(t)
	a, b := nodes[0], nodes[1]
	for _, n := range nodes {
		if _, err := n.JoinRoom("r", func(Message) {}); err != nil {
			t.Fatal(err)
		}
	}
	started := make(chan struct{})
	a.Handle("slow", func(ctx context.Context, _ string, _ json.RawMessage) (any, error) {
		close(started)
		<-ctx.Done()
		return nil, ctx.Err()
	})
	result := make(chan error, 1)
	go func() { result <- b.Request(context.Background(), "a", "slow", nil, nil) }()
	<-started
	closed := time.Now()
	if err := a.Close(); err != nil {
		t.Errorf("close a: %v", err)
	}
	if took := time.Since(closed); took > 2*time.Second {
		t.Errorf("Close with a running handler took %v", took)
	}
	var re *RemoteError
	if err := <-result; !errors.As(err, &re) {
		t.Errorf("request to a closing node: %v, want its handler's error", err)
	}
	for _, n := range nodes[1:] {
		if err := n.Close(); err != nil {
			t.Errorf("close %s: %v", n.ID(), err)
		}
	}
	if err := a.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	goleak.VerifyNone(t, ignore)
}
