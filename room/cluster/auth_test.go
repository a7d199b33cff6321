package cluster

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/wait"
	"github.com/nats-io/nats.go"
)

// A node with the wrong NATS credentials is refused by NATS itself: at
// once, with the server's authorization error, and it never joins.
func TestWrongCredentialsAreRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name              string
		server, good, bad nodeOpt
	}{
		{"password", withAuth("confab", "s3cret", ""), withAuth("confab", "s3cret", ""), withAuth("confab", "guess", "")},
		{"token", withAuth("", "", "t0ken"), withAuth("", "", "t0ken"), withAuth("", "", "wrong")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := startTestNode(t, nil, withID("a"), tc.server)
			external := func(id string, auth nodeOpt) Config {
				cfg := Config{URLs: []string{a.ClientURL()}, NodeID: id, Logger: testLogger(),
					Heartbeat: fastHeartbeat, DeadAfter: fastDeadAfter}
				auth(&cfg)
				return cfg
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			start := time.Now()
			n, err := Start(ctx, external("intruder", tc.bad))
			if err == nil {
				_ = n.Close()
				t.Fatal("a node with the wrong credentials started")
			}
			if !errors.Is(err, nats.ErrAuthorization) {
				t.Errorf("error %v, want nats.ErrAuthorization", err)
			}
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("refusal took %v: retried instead of failing", took)
			}
			if _, ok := a.Node("intruder"); ok {
				t.Error("a lists the refused node")
			}
			// The right credentials get in.
			good := startNode(t, nil, external("member", tc.good))
			waitSees(t, a, "member")
			waitSees(t, good, "a")
		})
	}
}

// The routes between embedded servers require the same credentials: a
// node routed with a wrong password is refused by the other server and
// stays alone.
func TestRouteWithWrongCredentialsIsRefused(t *testing.T) {
	t.Parallel()
	logs := &captureHandler{}
	a := startTestNode(t, nil, withID("a"), withAuth("confab", "s3cret", ""))
	d := startTestNode(t, nil, withID("d"), withAuth("confab", "guess", ""), withRoutes(a.RouteURL()),
		withLogger(slog.New(logs)))
	wait.For(t, 10*time.Second, "a's server to refuse d's route", func() bool {
		return logs.contains("authorization violation")
	})
	// Both nodes heartbeat twice more after the refusal: still alone.
	for _, n := range []*Node{a, d} {
		sent := n.Stats().Out["hb"]
		wait.For(t, 5*time.Second, "two more heartbeats", func() bool { return n.Stats().Out["hb"] >= sent+2 })
	}
	if len(a.Nodes()) != 0 || len(d.Nodes()) != 0 {
		t.Errorf("after the route was refused a sees %v, d sees %v", a.Nodes(), d.Nodes())
	}
	if n := a.emb.srv.NumRoutes(); n != 0 {
		t.Errorf("a's server has %d routes", n)
	}
}

// captureHandler keeps log messages for tests to look for.
type captureHandler struct {
	mu   sync.Mutex
	msgs []string
}

func (h *captureHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *captureHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *captureHandler) WithGroup(string) slog.Handler            { return h }
func (h *captureHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.msgs = append(h.msgs, r.Message)
	h.mu.Unlock()
	return nil
}

func (h *captureHandler) contains(s string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.msgs {
		if strings.Contains(strings.ToLower(m), s) {
			return true
		}
	}
	return false
}
