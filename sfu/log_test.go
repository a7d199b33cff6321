package sfu

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"

	"github.com/confab-sfu/confab/internal/wait"
)

// logRecorder is a slog handler that keeps every record's attributes,
// including the ones its logger was built With.
type logRecorder struct {
	mu    *sync.Mutex
	lines *[]logLine
	attrs []slog.Attr
}

type logLine struct {
	msg   string
	attrs map[string][]string // key -> values, in order
}

func newLogRecorder() *logRecorder {
	return &logRecorder{mu: &sync.Mutex{}, lines: &[]logLine{}}
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	l := logLine{msg: rec.Message, attrs: map[string][]string{}}
	for _, a := range r.attrs {
		l.attrs[a.Key] = append(l.attrs[a.Key], a.Value.String())
	}
	rec.Attrs(func(a slog.Attr) bool {
		l.attrs[a.Key] = append(l.attrs[a.Key], a.Value.String())
		return true
	})
	r.mu.Lock()
	*r.lines = append(*r.lines, l)
	r.mu.Unlock()
	return nil
}

func (r *logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	n := *r
	n.attrs = append(slices.Clip(r.attrs), as...)
	return &n
}

func (r *logRecorder) WithGroup(string) slog.Handler { return r }

func (r *logRecorder) find(msg string) []logLine {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []logLine
	for _, l := range *r.lines {
		if l.msg == msg {
			out = append(out, l)
		}
	}
	return out
}

func (r *logRecorder) all() []logLine {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(*r.lines)
}

// The peer logs with the logger it was given, which already names the room
// and participant: each line carries each key once, and sfu adds only what
// it knows (the track). Layer switches are logged, but off the packet path.
func TestPeerLogsCarryEachKeyOnce(t *testing.T) {
	checkLeaks(t)
	e := newTestEngine(t)
	_, recvs := publishN(t, e, 1)
	rec := newLogRecorder()
	given := slog.New(rec).With("room", "R1", "participant", "P-sub")
	sub := newClient(t, e, clientOpts{params: PeerParams{ID: "P-sub", Logger: given}})
	_, _, w := subscribeAndWatch(t, sub, recvs[0], false)
	wait.For(t, patience, "media", func() bool { return w.count() >= 5 })
	wait.For(t, patience, "the layer switch to be logged", func() bool { return len(rec.find("forwarding layer")) > 0 })

	lines := rec.all()
	if len(lines) == 0 {
		t.Fatal("nothing logged")
	}
	for _, l := range lines {
		for k, vs := range l.attrs {
			if len(vs) > 1 {
				t.Errorf("%q carries %q %d times: %v", l.msg, k, len(vs), vs)
			}
		}
		if got := l.attrs["participant"]; len(got) != 1 || got[0] != "P-sub" {
			t.Errorf("%q: participant %v, want P-sub once", l.msg, got)
		}
	}
	for _, msg := range []string{"track bound", "forwarding layer"} {
		for _, l := range rec.find(msg) {
			if got := l.attrs["track"]; len(got) != 1 || got[0] != string(recvs[0].ID()) {
				t.Errorf("%q: track %v, want %s", msg, got, recvs[0].ID())
			}
		}
	}
	if l := rec.find("forwarding layer")[0]; len(l.attrs["layer"]) != 1 || l.attrs["layer"][0] != "0" {
		t.Errorf("forwarding layer logged as %v", l.attrs)
	}
}

// Without a logger of its own, a peer logs through the engine's logger
// with its id as the participant.
func TestPeerWithoutLoggerNamesItself(t *testing.T) {
	checkLeaks(t)
	rec := newLogRecorder()
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
	l := rec.find("hello")
	if len(l) != 1 || len(l[0].attrs["participant"]) != 1 || l[0].attrs["participant"][0] != "P-own" {
		t.Fatalf("peer without a logger logged %+v", l)
	}
}
