package room_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/confab-sfu/confab/room"
	"github.com/confab-sfu/confab/signal"
)

// joinCodecs joins with the video codecs a client can send and decode.
func joinCodecs(t *testing.T, ctx context.Context, url, roomName, name string, codecs ...string) (*signal.Client, *signal.Message) {
	t.Helper()
	c, err := signal.Dial(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	w, err := c.Request(ctx, &signal.Message{Type: signal.TypeJoin, Room: roomName, Name: name, Version: signal.Version, VideoCodecs: codecs})
	if err != nil {
		t.Fatal(err)
	}
	return c, w
}

// nextCodec waits for the next room_codec message.
func nextCodec(t *testing.T, ctx context.Context, c *signal.Client) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		select {
		case m, ok := <-c.Messages():
			if !ok {
				t.Fatal("connection closed before room_codec")
			}
			if m.Type == signal.TypeRoomCodec {
				return m.VideoCodec
			}
		case <-ctx.Done():
			t.Fatal("no room_codec message")
		}
	}
}

// The room's video codec is what every member can send and decode: VP8
// while all can, H.264 once an H.264-only member is in, VP8 again when it
// leaves. Members are told in welcome and room_codec.
func TestRoomCodecFollowsItsMembers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, url := startServer(t, room.Config{})
	ada, w := joinCodecs(t, ctx, url, "codecs", "ada")
	if w.VideoCodec != signal.CodecVP8 {
		t.Fatalf("first member's welcome: codec %q, want VP8", w.VideoCodec)
	}
	_, w = joinCodecs(t, ctx, url, "codecs", "bob", signal.CodecVP8, signal.CodecH264)
	if w.VideoCodec != signal.CodecVP8 {
		t.Fatalf("a member decoding both: codec %q, want VP8", w.VideoCodec)
	}
	safari, w := joinCodecs(t, ctx, url, "codecs", "safari", signal.CodecH264)
	if w.VideoCodec != signal.CodecH264 {
		t.Fatalf("the H.264-only member's welcome: codec %q, want H.264", w.VideoCodec)
	}
	if got := nextCodec(t, ctx, ada); got != signal.CodecH264 {
		t.Fatalf("ada was told %q, want H.264", got)
	}
	_ = safari.Close()
	if got := nextCodec(t, ctx, ada); got != signal.CodecVP8 {
		t.Fatalf("after the H.264-only member left, ada was told %q, want VP8", got)
	}
	// With nothing in common the room stays on VP8 (the H.264-only member
	// sees which videos it cannot show).
	_, w = joinCodecs(t, ctx, url, "codecs", "vp8-only", signal.CodecVP8)
	if w.VideoCodec != signal.CodecVP8 {
		t.Fatalf("codec %q, want VP8", w.VideoCodec)
	}
	_, w = joinCodecs(t, ctx, url, "codecs", "h264-only", signal.CodecH264)
	if w.VideoCodec != signal.CodecVP8 {
		t.Fatalf("nothing in common: codec %q, want VP8", w.VideoCodec)
	}
	// A codec the server does not know is refused.
	c, err := signal.Dial(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Request(ctx, &signal.Message{Type: signal.TypeJoin, Room: "codecs", Name: "odd", Version: signal.Version, VideoCodecs: []string{"video/theora"}})
	var serr *signal.Error
	if !errors.As(err, &serr) || serr.Code != signal.CodeInvalidField {
		t.Fatalf("join with an unknown codec: %v, want invalid_field", err)
	}
}
