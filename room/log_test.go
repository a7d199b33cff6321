package room_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/logrec"
	"github.com/confab-sfu/confab/internal/wait"
	"github.com/confab-sfu/confab/room"
	"github.com/confab-sfu/confab/room/access"
	"github.com/confab-sfu/confab/signal"
)

// TestLogsCarryEachKeyOnce: through a meeting (joins, media both ways,
// layer limits, a moderator's mute, a WHIP publisher, a WHEP viewer,
// leaving), every line the server logs carries each key once, and what a
// participant's (or viewer's) media does is logged with its room and
// participant (or session).
func TestLogsCarryEachKeyOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rec := logrec.New()
	_, base := startServer(t, room.Config{AuthSecret: testSecret, Logger: slog.New(rec)})
	now := time.Now()
	ann := joinWithToken(t, ctx, base, "logs", "ann", mint(t, testSecret, "logs", "ann", access.Speaker, time.Hour, now))
	mod := joinWithToken(t, ctx, base, "logs", "mod", mint(t, testSecret, "logs", "mod", access.Moderator, time.Hour, now))
	mediaBothWays(t, ctx, ann, mod, "in the logged meeting")
	var audio string
	for _, tr := range mod.Tracks() {
		if tr.Participant == ann.ID() && tr.Kind == "audio" {
			audio = tr.ID
		}
	}
	muted := true
	if _, err := mod.Client().Request(ctx, &signal.Message{Type: signal.TypeMute, TrackID: audio, Muted: &muted}); err != nil {
		t.Fatal(err)
	}
	if _, err := mod.Client().Request(ctx, &signal.Message{Type: signal.TypeSubscribe,
		Subscriptions: []signal.Subscription{{TrackID: audio, Paused: true}}}); err != nil {
		t.Fatal(err)
	}
	b := startBroadcast(t, ctx, base, "logs", mint(t, testSecret, "logs", "obs", access.Speaker, time.Hour, now))
	pubID := whipParticipant(t, ann, "obs")
	waitBroadcast(t, ann, pubID, b)
	v := startWHEPWithToken(t, ctx, base, "logs", mint(t, testSecret, "logs", "fan", access.Viewer, time.Hour, now))
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	_ = ann.Leave()
	wait.For(t, 10*time.Second, "ann's leaving logged", func() bool { return len(rec.Find("left")) > 0 })

	lines := rec.All()
	for _, l := range lines {
		if r := l.Repeated(); len(r) > 0 {
			t.Errorf("%q carries %v more than once: %v", l.Msg, r, l.Attrs)
		}
	}
	for _, msg := range []string{"joined", "track published", "track bound", "subscriber limits", "muted by moderator", "left"} {
		found := rec.Find(msg)
		if len(found) == 0 {
			t.Errorf("nothing logged %q", msg)
		}
		for _, l := range found {
			// A WHEP viewer is a session, not a participant.
			if who := len(l.Attrs["participant"]) + len(l.Attrs["session"]); len(l.Attrs["room"]) != 1 || who != 1 {
				t.Errorf("%q without its room and participant: %v", msg, l.Attrs)
			}
		}
	}
	for _, l := range rec.Find("whep session ended") {
		if len(l.Attrs["room"]) != 1 || len(l.Attrs["session"]) != 1 || l.Attrs["kind"][0] != "whep" {
			t.Errorf("a WHEP session's end logged as %v", l.Attrs)
		}
	}
	t.Logf("%d lines checked", len(lines))
}
