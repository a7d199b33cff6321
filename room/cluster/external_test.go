package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/needtool"

	"github.com/confab-sfu/confab/internal/wait"
)

// natsServerBinary finds the nats-server program (CI installs Debian's).
func natsServerBinary(t *testing.T) string {
	return needtool.Path(t, "nats-server", "nats-server", "/usr/sbin/nats-server")
}

func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// runNATSServer starts a real nats-server process on loopback; stop kills
// it and waits for it.
func runNATSServer(t *testing.T, bin string, port int) (stop func()) {
	t.Helper()
	cmd := exec.Command(bin, "-a", "127.0.0.1", "-p", strconv.Itoa(port))
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nats-server: %v", err)
	}
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}
	t.Cleanup(stop)
	return stop
}

// Nodes on a real, external nats-server process find each other, talk,
// and ride out a restart of that server (reconnecting by themselves).
func TestExternalNATSServerProcess(t *testing.T) {
	t.Parallel()
	bin := natsServerBinary(t)
	port := freeLoopbackPort(t)
	stop := runNATSServer(t, bin, port)
	url := "nats://127.0.0.1:" + strconv.Itoa(port)
	external := func(id string) Config {
		return Config{URLs: []string{url}, NodeID: id, Logger: testLogger(),
			Heartbeat: fastHeartbeat, DeadAfter: 4 * fastDeadAfter}
	}
	// Start retries until the server listens.
	ra, rb := newRecorder(), newRecorder()
	a := startNode(t, ra, external("a"))
	b := startNode(t, rb, external("b"))
	waitSees(t, a, "b")
	waitSees(t, b, "a")
	b.Handle("whoami", func(_ context.Context, from string, _ json.RawMessage) (any, error) { return from, nil })
	var got string
	if err := a.Request(context.Background(), "b", "whoami", nil, &got); err != nil || got != "a" {
		t.Fatalf("request over the external server: %q, %v", got, err)
	}
	leave, err := b.JoinRoom("r", rb.message)
	if err != nil {
		t.Fatal(err)
	}
	defer leave()
	if err := a.Publish("r", "chat", "hi"); err != nil { // one server: interest is known at once
		t.Fatal(err)
	}
	rb.waitFor(t, 5*time.Second, "room message over the external server", func(_ []string, m []Message) bool { return len(m) == 1 })

	// The server restarts: the nodes notice, reconnect, and carry on
	// without having dropped each other (down for less than DeadAfter).
	stop()
	wait.For(t, 5*time.Second, "both nodes to notice the server is gone", func() bool {
		return !a.Connected() && !b.Connected()
	})
	if err := a.Publish("r", "chat", "lost"); !errors.Is(err, ErrNotConnected) {
		t.Errorf("Publish while disconnected: %v, want ErrNotConnected", err)
	}
	runNATSServer(t, bin, port)
	took := wait.For(t, 10*time.Second, "both nodes to reconnect", func() bool {
		return a.Stats().Reconnects == 1 && b.Stats().Reconnects == 1
	})
	t.Logf("reconnected %v after the server came back", took.Round(time.Millisecond))
	if err := a.Request(context.Background(), "b", "whoami", nil, &got); err != nil {
		t.Fatalf("request after the restart: %v", err)
	}
	if ea, eb := ra.eventList(), rb.eventList(); len(ea) != 1 || len(eb) != 1 {
		t.Errorf("a short server restart made nodes drop each other: %q %q", ea, eb)
	}
}
