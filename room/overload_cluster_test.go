package room_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/wait"
	"github.com/confab-sfu/confab/room"
	"github.com/confab-sfu/confab/room/load"
	"github.com/confab-sfu/confab/signal"
	"github.com/confab-sfu/confab/signal/client"
)

// TestClusterBusyNodeHandsJoinsToANodeWithRoom: a join on a node over its
// CPU limit is handed to the other node (a redirect the client follows
// once), where it enters the same room and receives the media published
// on the busy node; when every node is busy, the join gets server_busy.
func TestClusterBusyNodeHandsJoinsToANodeWithRoom(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var cpu [2]atomic.Uint64 // per mille, per node
	nodes := startNodes(t, 2, func(i int, cfg *room.Config) {
		cfg.Load = quickLoad(load.Limits{CPU: 0.5}, func() float64 { return float64(cpu[i].Load()) / 1000 })
	})
	busy, spare := nodes[0], nodes[1]
	ada := join(t, ctx, busy.URL, "hall", "ada")
	fromAda := map[string][]*source{ada.ID(): publish(t, ctx, ada, "ada", "audio", "video")}

	cpu[0].Store(700)
	wait.For(t, 5*time.Second, "the first node is busy", busy.Manager.Busy)
	grace := join(t, ctx, busy.URL, "hall", "grace")
	if grace.URL() != spare.URL {
		t.Fatalf("grace joined through %s, want the spare node %s", grace.URL(), spare.URL)
	}
	if r := spare.Manager.Room("hall"); r == nil || len(r.Participants()) != 2 {
		t.Fatalf("the spare node's room: %v", r)
	}
	wait.Until(t, 30*time.Second, "the handed-off join receives ada's media", func() (bool, string) {
		return checkTracks(grace, 25, fromAda)
	})
	if !metricsHave(t, busy.URL, `confab_admission_refused_total{kind="join",outcome="handoff"}`) {
		t.Error("hand-offs are not counted")
	}

	cpu[1].Store(700)
	wait.Until(t, 5*time.Second, "the first node hears that the second is busy", func() (bool, string) {
		for _, n := range busy.cluster().Nodes() {
			if n.ID == spare.id {
				return n.Load.Busy, fmt.Sprintf("%s: %+v", n.ID, n.Load)
			}
		}
		return false, "the spare node is not known"
	})
	// The busy node's own answer (not a redirect to a node as busy).
	sig, err := signal.Dial(ctx, busy.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer sig.Close()
	_, err = sig.Join(ctx, "hall", "linus", "")
	if code, _ := busyCode(err); code != signal.CodeServerBusy {
		t.Fatalf("a join with every node busy: %v, want server_busy", err)
	}
	// The client reports it the same way.
	_, err = client.Join(ctx, client.Params{URL: busy.URL, Room: "hall", Name: "linus"})
	if code, _ := busyCode(err); code != signal.CodeServerBusy {
		t.Fatalf("a client join with every node busy: %v, want server_busy", err)
	}
}
