package room_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/wait"
	"github.com/confab-sfu/confab/room/cluster"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

// counter reads a counter of the default registry by name and label.
func counter(t *testing.T, name, label, value string) float64 {
	t.Helper()
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestClusterBadRoomInputDropped: what anyone on NATS publishes on a
// room's subject that does not parse, comes from an unknown node, names
// another room, or carries data a room cannot use, is dropped and counted;
// the meeting goes on as before.
func TestClusterBadRoomInputDropped(t *testing.T) {
	nodes := startNodes(t, 2, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := join(t, ctx, nodes[0].URL, "standup", "a")
	b := join(t, ctx, nodes[1].URL, "standup", "b")
	srcs := publish(t, ctx, a, "a", "audio", "video")
	wait.Until(t, 20*time.Second, "b receives a", func() (bool, string) {
		return checkIntact(b, 20, map[string][]*source{a.ID(): srcs})
	})

	nc, err := nats.Connect(nodes[0].cluster().ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	subject := "confab.room." + cluster.EncodeRoom("standup")
	envelope := func(node, roomName, kind string, data any) []byte {
		raw, _ := json.Marshal(data)
		b, _ := json.Marshal(cluster.Envelope{V: cluster.Version, Node: node, Room: roomName, Kind: kind, Seq: 1, Data: raw})
		return b
	}
	before := nodes[0].cluster().Stats().Dropped
	roomBefore := map[string]float64{}
	for _, r := range []string{"bad_data", "unknown_kind"} {
		roomBefore[r] = counter(t, "confab_cluster_room_dropped_total", "reason", r)
	}
	bad := [][]byte{
		[]byte("not json at all"),
		[]byte(`{"v":1,"node":"n2","kind":"state","data":`),
		envelope("ghost", "standup", "state", map[string]any{"hosted": true, "epoch": 1, "version": 1 << 40}),
		envelope("n2", "another room", "state", map[string]any{"hosted": false, "epoch": 1 << 62, "version": 1 << 40}),
		envelope("n2", "standup", "state", "a state is an object"),
		envelope("n2", "standup", "chat", map[string]any{"from": "", "text": ""}),
		envelope("n2", "standup", "shout", map[string]any{"text": "hello"}),
	}
	for _, m := range bad {
		if err := nc.Publish(subject, m); err != nil {
			t.Fatal(err)
		}
	}
	// And a request whose data a node cannot use is refused, not served.
	reply, err := nc.Request("confab.node.n1.req", envelope("n2", "", "room.snapshot", []int{1, 2}), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var env cluster.Envelope
	if err := json.Unmarshal(reply.Data, &env); err != nil || env.Kind != "error" {
		t.Errorf("a malformed snapshot request was answered %q", reply.Data)
	}
	wait.Until(t, 5*time.Second, "every bad message counted", func() (bool, string) {
		after := nodes[0].cluster().Stats().Dropped
		for reason, want := range map[string]uint64{cluster.DropParse: 2, cluster.DropUnknownNode: 1, cluster.DropRoomMismatch: 1} {
			if got := after[reason] - before[reason]; got < want {
				return false, fmt.Sprintf("%s: %d dropped, want %d", reason, got, want)
			}
		}
		for reason, want := range map[string]float64{"bad_data": 3, "unknown_kind": 1} {
			if got := counter(t, "confab_cluster_room_dropped_total", "reason", reason) - roomBefore[reason]; got < want {
				return false, fmt.Sprintf("room %s: %v dropped, want %v", reason, got, want)
			}
		}
		return true, ""
	})
	// The room is as it was: both members on both nodes, media flowing.
	for _, n := range nodes {
		if got := len(n.Manager.Room("standup").Participants()); got != 2 {
			t.Errorf("%s lists %d members after the bad input", n.id, got)
		}
	}
	if ok, why := sameMembers(b, a.ID()); !ok {
		t.Error(why)
	}
	was := b.rec.packets()
	wait.For(t, 10*time.Second, "b keeps receiving", func() bool { return b.rec.packets() > was+50 })
	if b.saw("chat", nil) {
		t.Error("an empty chat from nobody was delivered")
	}
}
