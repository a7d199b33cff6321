package cluster

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// A room event reaches the nodes that joined that room, and no others:
// rooms whose names share a prefix or hold '.' stay apart, the sender does
// not get its own event, and after leave nothing more arrives.
func TestRoomMessagesReachOnlyJoinedNodes(t *testing.T) {
	t.Parallel()
	nodes, _ := threeNodes(t)
	a, b, c := nodes[0], nodes[1], nodes[2]
	ra, rb, rc := newRecorder(), newRecorder(), newRecorder()
	join := func(n *Node, room string, r *recorder) func() {
		leave, err := n.JoinRoom(room, r.message)
		if err != nil {
			t.Fatalf("%s joins %q: %v", n.ID(), room, err)
		}
		return leave
	}
	join(a, "lecture.1", ra)
	leaveB := join(b, "lecture.1", rb)
	join(b, "marker", rb)
	join(c, "lecture", rc)
	join(c, "lecture.2", rc)
	join(c, "marker", rc)

	// Each publisher repeats until the interest has crossed the routes,
	// then the marker (published after) tells the receivers that
	// everything before it has been delivered.
	stop := repeat(t, 50*time.Millisecond, func() error { return a.Publish("lecture.1", "chat", map[string]string{"text": "hi"}) })
	rb.waitFor(t, 5*time.Second, "b gets lecture.1", func(_ []string, msgs []Message) bool { return len(msgs) > 0 })
	stop()
	stop = repeat(t, 50*time.Millisecond, func() error { return b.Publish("lecture.1", "chat", "from b") })
	ra.waitFor(t, 5*time.Second, "a gets b's lecture.1", func(_ []string, msgs []Message) bool { return len(msgs) > 0 })
	stop()
	stop = repeat(t, 50*time.Millisecond, func() error { return a.Publish("marker", "mark", 1) })
	rc.waitFor(t, 5*time.Second, "c gets the marker", func(_ []string, msgs []Message) bool { return len(msgs) > 0 })
	rb.waitFor(t, 5*time.Second, "b gets the marker", func(_ []string, msgs []Message) bool {
		return len(msgs) > 0 && msgs[len(msgs)-1].Room == "marker"
	})
	stop()

	for _, m := range rc.messages() {
		if m.Room != "marker" {
			t.Errorf("c, not in lecture.1, got %+v", m)
		}
	}
	for _, m := range ra.messages() {
		if m.Node != "b" || m.Room != "lecture.1" || string(m.Data) != `"from b"` {
			t.Errorf("a got %+v, want only b's lecture.1 events", m)
		}
	}
	for _, m := range rb.messages() {
		ok := m.Node == "a" && (m.Room == "lecture.1" && m.Kind == "chat" && string(m.Data) == `{"text":"hi"}` ||
			m.Room == "marker" && m.Kind == "mark")
		if !ok {
			t.Errorf("b got %+v", m)
		}
	}
	if s := a.Stats(); s.Out["chat"] == 0 || s.In["chat"] == 0 {
		t.Errorf("a counted chat out %d, in %d", s.Out["chat"], s.In["chat"])
	}

	// After leave, b's handler is not called for lecture.1 any more.
	leaveB()
	before := len(rb.messages())
	if err := a.Publish("lecture.1", "chat", "after leave"); err != nil {
		t.Fatal(err)
	}
	stop = repeat(t, 50*time.Millisecond, func() error { return a.Publish("marker", "mark", 2) })
	rb.waitFor(t, 5*time.Second, "b gets the second marker", func(_ []string, msgs []Message) bool {
		return len(msgs) > before && string(msgs[len(msgs)-1].Data) == "2"
	})
	stop()
	for _, m := range rb.messages()[before:] {
		if m.Room != "marker" {
			t.Errorf("b got %+v after leaving lecture.1", m)
		}
	}
	if n := b.Stats().Dropped[DropEcho]; n != 0 {
		t.Errorf("b dropped %d echoes; NoEcho should keep them away", n)
	}
}

func TestRoomArgumentsAreChecked(t *testing.T) {
	t.Parallel()
	n := startTestNode(t, nil, withID("solo"))
	if _, err := n.JoinRoom("", func(Message) {}); !errors.Is(err, ErrBadArgument) {
		t.Errorf("JoinRoom(\"\") = %v, want ErrBadArgument", err)
	}
	if _, err := n.JoinRoom("r", nil); !errors.Is(err, ErrBadArgument) {
		t.Errorf("JoinRoom with nil handler = %v, want ErrBadArgument", err)
	}
	if err := n.Publish("r", "bad kind", 1); !errors.Is(err, ErrBadArgument) {
		t.Errorf("Publish with a space in kind = %v, want ErrBadArgument", err)
	}
	if err := n.Publish("r", "k", func() {}); !errors.Is(err, ErrBadArgument) {
		t.Errorf("Publish of a func = %v, want ErrBadArgument", err)
	}
	if err := n.Publish("r", "k", strings.Repeat("x", 2<<20)); !errors.Is(err, ErrBadArgument) {
		t.Errorf("Publish of 2 MiB = %v, want ErrBadArgument (max payload)", err)
	}
	if err := n.Publish(strings.Repeat("r", maxRoom+1), "k", 1); !errors.Is(err, ErrBadArgument) {
		t.Errorf("Publish to a too long room = %v, want ErrBadArgument", err)
	}
	_ = n.Close()
	if err := n.Publish("r", "k", 1); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after Close = %v, want ErrClosed", err)
	}
	if _, err := n.JoinRoom("r", func(Message) {}); !errors.Is(err, ErrClosed) {
		t.Errorf("JoinRoom after Close = %v, want ErrClosed", err)
	}
}

func TestRoomEncoding(t *testing.T) {
	for _, room := range []string{"a", "a.b", "lecture.1", "x y", "*", ">", "ünï.cödé", strings.Repeat("z", 300)} {
		tok := EncodeRoom(room)
		if strings.ContainsAny(tok, ". *>\t") {
			t.Errorf("EncodeRoom(%q) = %q: not one subject token", room, tok)
		}
		back, err := DecodeRoom(tok)
		if err != nil || back != room {
			t.Errorf("DecodeRoom(EncodeRoom(%q)) = %q, %v", room, back, err)
		}
	}
	if _, err := DecodeRoom("a.b"); !errors.Is(err, ErrBadArgument) {
		t.Errorf("DecodeRoom(a.b) = %v, want ErrBadArgument", err)
	}
	s := subjects{prefix: "confab"}
	if got := s.room("a.b"); got != "confab.room.YS5i" {
		t.Errorf("room subject of a.b = %q", got)
	}
}
