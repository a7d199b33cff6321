package sfu

import (
	"log/slog"
	"testing"

	"github.com/confab-sfu/confab/internal/logrec"
	"github.com/confab-sfu/confab/internal/wait"
)

// The peer logs with the logger it was given, which already names the room
// and participant: each line carries each key once, and sfu adds only what
// it knows (the track). Layer switches are logged, but off the packet path.
func TestPeerLogsCarryEachKeyOnce(t *testing.T) {
	checkLeaks(t)
	e := newTestEngine(t)
	_, recvs := publishN(t, e, 1)
	rec := logrec.New()
	given := slog.New(rec).With("room", "R1", "participant", "P-sub")
	sub := newClient(t, e, clientOpts{params: PeerParams{ID: "P-sub", Logger: given}})
	_, _, w := subscribeAndWatch(t, sub, recvs[0], false)
	wait.For(t, patience, "media", func() bool { return w.count() >= 5 })
	wait.For(t, patience, "the layer switch to be logged", func() bool { return len(rec.Find("forwarding layer")) > 0 })

	lines := rec.All()
	if len(lines) == 0 {
		t.Fatal("nothing logged")
	}
	for _, l := range lines {
		if r := l.Repeated(); len(r) > 0 {
			t.Errorf("%q carries %v more than once: %v", l.Msg, r, l.Attrs)
		}
		if got := l.Attrs["participant"]; len(got) != 1 || got[0] != "P-sub" {
			t.Errorf("%q: participant %v, want P-sub once", l.Msg, got)
		}
	}
	for _, msg := range []string{"track bound", "forwarding layer"} {
		for _, l := range rec.Find(msg) {
			if got := l.Attrs["track"]; len(got) != 1 || got[0] != string(recvs[0].ID()) {
				t.Errorf("%q: track %v, want %s", msg, got, recvs[0].ID())
			}
		}
	}
	if l := rec.Find("forwarding layer")[0]; len(l.Attrs["layer"]) != 1 || l.Attrs["layer"][0] != "0" {
		t.Errorf("forwarding layer logged as %v", l.Attrs)
	}
}

// Without a logger of its own, a peer logs through the engine's logger
// with its id as the participant.
func TestPeerWithoutLoggerNamesItself(t *testing.T) {
	checkLeaks(t)
	rec := logrec.New()
	e, err := NewEngine(Config{Loopback: true, Logger: slog.New(rec)})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	p, err := e.NewPeer(PeerParams{ID: "P-own"})
	if err != nil {
		t.Fatal(err)
	}
	p.log.Info("hello")
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	l := rec.Find("hello")
	if len(l) != 1 || len(l[0].Attrs["participant"]) != 1 || l[0].Attrs["participant"][0] != "P-own" {
		t.Fatalf("peer without a logger logged %+v", l)
	}
}
