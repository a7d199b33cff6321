package room_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/wait"
	"github.com/confab-sfu/confab/room"
	"github.com/confab-sfu/confab/signal"
	"nhooyr.io/websocket"
)

// rawConn is a bare WebSocket client that can send anything.
type rawConn struct {
	t *testing.T
	c *websocket.Conn
}

func dialRaw(t *testing.T, ctx context.Context, url string) *rawConn {
	t.Helper()
	c, _, err := websocket.Dial(ctx, strings.Replace(url, "http", "ws", 1)+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadLimit(1 << 20)
	t.Cleanup(func() { _ = c.CloseNow() })
	return &rawConn{t: t, c: c}
}

func (r *rawConn) send(ctx context.Context, typ websocket.MessageType, b []byte) {
	r.t.Helper()
	if err := r.c.Write(ctx, typ, b); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

func (r *rawConn) sendJSON(ctx context.Context, m any) {
	r.t.Helper()
	b, _ := json.Marshal(m)
	r.send(ctx, websocket.MessageText, b)
}

// next reads the next message, skipping server-initiated ones that the test
// does not look at (candidates, offers).
func (r *rawConn) next(ctx context.Context) (*signal.Message, error) {
	for {
		_, b, err := r.c.Read(ctx)
		if err != nil {
			return nil, err
		}
		var m signal.Message
		if err := json.Unmarshal(b, &m); err != nil {
			r.t.Fatalf("server sent non-JSON %q", b)
		}
		switch m.Type {
		case signal.TypeCandidate, signal.TypeEndOfCandidates, signal.TypeOffer, signal.TypeParticipantJoined, signal.TypeLayers:
			continue
		}
		return &m, nil
	}
}

// expectError reads until an error message and checks its code and id.
func (r *rawConn) expectError(ctx context.Context, code, id string) {
	r.t.Helper()
	m, err := r.next(ctx)
	if err != nil {
		r.t.Fatalf("want error %s, connection ended: %v", code, err)
	}
	if m.Type != signal.TypeError || m.Code != code || m.ID != id {
		r.t.Fatalf("want error %s (id %q), got %+v", code, id, m)
	}
	if m.Message == "" {
		r.t.Fatalf("error %s carries no human message", code)
	}
}

// expectClose reads until the connection closes and checks the close code.
func (r *rawConn) expectClose(ctx context.Context, code websocket.StatusCode) {
	r.t.Helper()
	for {
		_, _, err := r.c.Read(ctx)
		if err == nil {
			continue
		}
		if got := websocket.CloseStatus(err); got != code {
			r.t.Fatalf("want close %d, got %d (%v)", code, got, err)
		}
		return
	}
}

func joinMsg(id, roomName, name string) map[string]any {
	return map[string]any{"type": "join", "id": id, "room": roomName, "name": name, "version": signal.Version}
}

func TestBadInputGetsErrorsAndDisturbsNoOne(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	_, url := startServer(t, room.Config{MaxParticipants: 3})

	// Two participants in a call, watched throughout.
	a := join(t, ctx, url, "busy", "ada")
	b := join(t, ctx, url, "busy", "bob")
	aSrc := publish(t, ctx, a, "ada", "audio", "video")
	bSrc := publish(t, ctx, b, "bob", "audio", "video")
	wait.Until(t, 20*time.Second, "call established", func() (bool, string) {
		if ok, msg := checkTracks(a, 10, map[string][]*source{b.ID(): bSrc}); !ok {
			return false, msg
		}
		return checkTracks(b, 10, map[string][]*source{a.ID(): aSrc})
	})
	packets := func() int {
		n := 0
		for _, p := range []*testPeer{a, b} {
			for _, rc := range p.rec.snapshot() {
				n += len(rc.payloads)
			}
		}
		return n
	}
	before := packets()

	t.Run("malformed JSON closes with 1007", func(t *testing.T) {
		c := dialRaw(t, ctx, url)
		c.send(ctx, websocket.MessageText, []byte(`{"type": "join", "room": `))
		c.expectError(ctx, signal.CodeBadMessage, "")
		c.expectClose(ctx, websocket.StatusInvalidFramePayloadData)
	})
	t.Run("wrong field type closes with 1007", func(t *testing.T) {
		c := dialRaw(t, ctx, url)
		c.send(ctx, websocket.MessageText, []byte(`{"type": "join", "id": "1", "version": "one"}`))
		c.expectError(ctx, signal.CodeBadMessage, "")
		c.expectClose(ctx, websocket.StatusInvalidFramePayloadData)
	})
	t.Run("binary frame closes with 1003", func(t *testing.T) {
		c := dialRaw(t, ctx, url)
		c.send(ctx, websocket.MessageBinary, []byte{1, 2, 3})
		c.expectClose(ctx, websocket.StatusUnsupportedData)
	})
	t.Run("oversized frame closes with 1009", func(t *testing.T) {
		c := dialRaw(t, ctx, url)
		big := `{"type":"chat","id":"1","text":"` + strings.Repeat("x", 80<<10) + `"}`
		_ = c.c.Write(ctx, websocket.MessageText, []byte(big))
		c.expectClose(ctx, websocket.StatusMessageTooBig)
	})
	t.Run("unknown type, wrong version, bad room keep the connection", func(t *testing.T) {
		c := dialRaw(t, ctx, url)
		c.sendJSON(ctx, map[string]any{"type": "teleport", "id": "1"})
		c.expectError(ctx, signal.CodeUnknownType, "1")
		c.sendJSON(ctx, map[string]any{"type": "join", "id": "2", "room": "busy", "name": "x", "version": 99})
		c.expectError(ctx, signal.CodeUnsupportedVersion, "2")
		c.sendJSON(ctx, joinMsg("3", "../etc", "x"))
		c.expectError(ctx, signal.CodeInvalidRoom, "3")
		c.sendJSON(ctx, joinMsg("4", "ok-room", "x"))
		if m, err := c.next(ctx); err != nil || m.Type != signal.TypeWelcome || m.ID != "4" {
			t.Fatalf("join after errors: %+v %v", m, err)
		}
	})
	t.Run("candidate and answer before join", func(t *testing.T) {
		c := dialRaw(t, ctx, url)
		c.sendJSON(ctx, map[string]any{"type": "candidate", "id": "1", "candidate": map[string]any{"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host"}})
		c.expectError(ctx, signal.CodeNotJoined, "1")
		c.sendJSON(ctx, map[string]any{"type": "answer", "id": "2", "sdp": "v=0"})
		c.expectError(ctx, signal.CodeNotJoined, "2")
	})
	t.Run("joined: answer without offer, bad SDP, bad candidate, second join", func(t *testing.T) {
		c := dialRaw(t, ctx, url)
		c.sendJSON(ctx, joinMsg("1", "busy", "mallory"))
		if m, err := c.next(ctx); err != nil || m.Type != signal.TypeWelcome {
			t.Fatalf("join: %+v %v", m, err)
		}
		c.sendJSON(ctx, map[string]any{"type": "candidate", "id": "3", "candidate": map[string]any{"candidate": "candidate:garbage"}})
		c.expectError(ctx, signal.CodeInvalidCandidate, "3")
		c.sendJSON(ctx, joinMsg("4", "busy", "mallory"))
		c.expectError(ctx, signal.CodeAlreadyJoined, "4")
		c.sendJSON(ctx, map[string]any{"type": "mute", "id": "5", "trackId": "nope", "muted": true})
		c.expectError(ctx, signal.CodeUnknownTrack, "5")
		c.sendJSON(ctx, map[string]any{"type": "subscribe", "id": "6", "subscriptions": []map[string]any{{"trackId": "nope"}}})
		c.expectError(ctx, signal.CodeUnknownTrack, "6")
	})
	t.Run("answer without offer", func(t *testing.T) {
		c := dialRaw(t, ctx, url)
		// An empty room: the server has nothing to offer, so no offer of
		// its own can be outstanding.
		c.sendJSON(ctx, joinMsg("1", "quiet-room", "eve"))
		if m, err := c.next(ctx); err != nil || m.Type != signal.TypeWelcome {
			t.Fatalf("join: %+v %v", m, err)
		}
		c.sendJSON(ctx, map[string]any{"type": "answer", "id": "2", "sdp": "v=0\r\n"})
		c.expectError(ctx, signal.CodeInvalidState, "2")
		c.sendJSON(ctx, map[string]any{"type": "offer", "id": "3", "sdp": "this is not sdp"})
		c.expectError(ctx, signal.CodeInvalidSDP, "3")
		// Still usable afterwards.
		c.sendJSON(ctx, map[string]any{"type": "chat", "id": "4", "text": "still here"})
		if m, err := c.next(ctx); err != nil || m.Type != signal.TypeOK || m.ID != "4" {
			t.Fatalf("chat after errors: %+v %v", m, err)
		}
	})
	t.Run("full room", func(t *testing.T) {
		for i := 0; i < 3; i++ {
			c := dialRaw(t, ctx, url)
			c.sendJSON(ctx, joinMsg("1", "small-room", "member"))
			if m, err := c.next(ctx); err != nil || m.Type != signal.TypeWelcome {
				t.Fatalf("member %d: %+v %v", i, m, err)
			}
		}
		c := dialRaw(t, ctx, url)
		c.sendJSON(ctx, joinMsg("1", "small-room", "fourth"))
		c.expectError(ctx, signal.CodeRoomFull, "1")
		// The refused socket may try another room.
		c.sendJSON(ctx, joinMsg("2", "other-room", "fourth"))
		if m, err := c.next(ctx); err != nil || m.Type != signal.TypeWelcome {
			t.Fatalf("join elsewhere after room_full: %+v %v", m, err)
		}
	})

	// The call went on through all of it.
	wait.Until(t, 10*time.Second, "media keeps flowing for the call", func() (bool, string) {
		now := packets()
		return now > before+100, "packets stalled"
	})
	if ok, msg := checkTracks(a, 10, map[string][]*source{b.ID(): bSrc}); !ok {
		t.Fatal(msg)
	}
	if ok, msg := checkTracks(b, 10, map[string][]*source{a.ID(): aSrc}); !ok {
		t.Fatal(msg)
	}
}
