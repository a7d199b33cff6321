package cluster

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// Malformed and foreign messages published raw on the cluster's subjects
// are dropped and counted by reason; none reaches a room handler, none
// changes the node table, and the node keeps working.
func TestMalformedAndForeignMessagesAreDroppedAndCounted(t *testing.T) {
	t.Parallel()
	rec := newRecorder()
	a := startTestNode(t, nil, withID("a"))
	b := startTestNode(t, rec, withID("b"), withRoutes(a.RouteURL()))
	waitSees(t, b, "a")
	waitSees(t, a, "b")
	leave, err := b.JoinRoom("r.1", rec.message)
	if err != nil {
		t.Fatal(err)
	}
	defer leave()

	raw, err := nats.Connect(b.ClientURL())
	if err != nil {
		t.Fatalf("raw connection: %v", err)
	}
	defer raw.Close()
	room := b.subj.room("r.1")
	hb := b.subj.heartbeat()
	env := func(v int, node, room, kind string, data any) []byte {
		d, _ := json.Marshal(data)
		body, _ := json.Marshal(Envelope{V: v, Node: node, Room: room, Kind: kind, Seq: 1, Data: d})
		return body
	}
	goodHB := heartbeat{ID: "x", Started: time.Now()}
	sends := []struct {
		subject string
		body    []byte
		reason  string
	}{
		{room, []byte("not json"), DropParse},
		{room, []byte{0xff, 0x00, 0x7b}, DropParse},
		{room, []byte(`[1,2,3]`), DropParse},
		{room, []byte(`{"v":1,"node":"a","room":"r.1","kind":"chat","seq":-1}`), DropParse},
		{room, env(1, "bad.id", "r.1", "chat", 1), DropParse},
		{room, env(1, "a", "r.1", "", 1), DropParse},
		{room, env(2, "a", "r.1", "chat", 1), DropVersion},
		{room, []byte(`{"node":"a","room":"r.1","kind":"chat"}`), DropVersion},
		{room, env(1, "b", "r.1", "chat", 1), DropEcho},
		{room, env(1, "stranger", "r.1", "chat", 1), DropUnknownNode},
		{room, env(1, "a", "r.2", "chat", 1), DropRoomMismatch},
		{room, env(1, "a", "", "chat", 1), DropRoomMismatch},
		{hb, []byte("{"), DropParse},
		{hb, env(1, "x", "", "hb", heartbeat{ID: "y", Started: time.Now()}), DropParse},
		{hb, env(1, "x", "", "hb", heartbeat{ID: "x"}), DropParse},
		{hb, env(1, "x", "", "dance", goodHB), DropParse},
		{hb, env(1, "x", "", "bye", goodHB), DropUnknownNode},
		{hb, env(3, "x", "", "hb", goodHB), DropVersion},
	}
	want := map[string]uint64{}
	for _, s := range sends {
		if err := raw.Publish(s.subject, s.body); err != nil {
			t.Fatal(err)
		}
		want[s.reason]++
	}
	// Requests from strangers or in garbage are refused with an error
	// reply at once, and counted.
	ask := func(body []byte, code string) {
		t.Helper()
		msg, err := raw.Request(b.subj.request("b"), body, 2*time.Second)
		if err != nil {
			t.Fatalf("raw request: %v", err)
		}
		e := b.decodeReply("b", msg.Data, nil)
		if re, ok := e.(*RemoteError); !ok || re.Code != code {
			t.Errorf("raw request %q answered %v, want code %s", body, e, code)
		}
	}
	ask([]byte("garbage"), CodeBadRequest)
	want[DropParse]++
	ask(env(1, "stranger", "", "echo", 1), CodeUnknownNode)
	want[DropUnknownNode]++

	deadline := time.Now().Add(5 * time.Second)
	for got := b.Stats().Dropped; !sameCounts(got, want); got = b.Stats().Dropped {
		if time.Now().After(deadline) {
			t.Fatalf("dropped %v, want %v", got, want)
		}
		time.Sleep(10 * time.Millisecond) // polling a counter, not asserting after a sleep
	}
	// The table holds only a, no room message got through, and a real
	// message still does.
	if nodes := b.Nodes(); len(nodes) != 1 || nodes[0].ID != "a" {
		t.Errorf("b's table after the garbage: %+v", nodes)
	}
	stop := repeat(t, 50*time.Millisecond, func() error { return a.Publish("r.1", "chat", "real") })
	rec.waitFor(t, 5*time.Second, "a's real message", func(_ []string, msgs []Message) bool { return len(msgs) > 0 })
	stop()
	for _, m := range rec.messages() {
		if m.Node != "a" || string(m.Data) != `"real"` {
			t.Errorf("b's room handler got %+v", m)
		}
	}
	var out string
	b.Handle("echo", func(_ context.Context, _ string, d json.RawMessage) (any, error) { return string(d), nil })
	if err := a.Request(context.Background(), "b", "echo", 7, &out); err != nil || out != "7" {
		t.Errorf("request after the garbage: %q, %v", out, err)
	}
	t.Logf("b dropped %v", b.Stats().Dropped)
}

// sameCounts: every reason in want has exactly its count in got.
func sameCounts(got, want map[string]uint64) bool {
	for reason, n := range want {
		if got[reason] != n {
			return false
		}
	}
	return true
}
