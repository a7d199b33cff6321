package pionlog

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/pion/logging"
)

// record is one line a capture handler received.
type record struct {
	level slog.Level
	msg   string
	scope string
}

// capture is a slog.Handler that keeps what it is given from min up.
type capture struct {
	min   slog.Level
	scope string
	mu    *sync.Mutex
	lines *[]record
}

func newCapture(min slog.Level) *capture {
	return &capture{min: min, mu: &sync.Mutex{}, lines: &[]record{}}
}

func (c *capture) Enabled(_ context.Context, l slog.Level) bool { return l >= c.min }
func (c *capture) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	*c.lines = append(*c.lines, record{r.Level, r.Message, c.scope})
	return nil
}
func (c *capture) WithAttrs(as []slog.Attr) slog.Handler {
	out := *c
	for _, a := range as {
		if a.Key == "pion" {
			out.scope = a.Value.String()
		}
	}
	return &out
}
func (c *capture) WithGroup(string) slog.Handler { return c }
func (c *capture) got() []record {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]record(nil), *c.lines...)
}

// counting is a format argument that counts how often it was formatted.
type counting struct{ n int }

func (c *counting) String() string { c.n++; return "candidate" }

func TestNothingIsFormattedBelowTheLevel(t *testing.T) {
	h := newCapture(slog.LevelInfo)
	l := Factory(slog.New(h)).NewLogger("ice")
	arg := &counting{}
	l.Tracef("gathered %v", arg)
	l.Debugf("gathered %v", arg)
	l.Infof("gathered %v", arg) // pion's info is debug
	if arg.n != 0 || len(h.got()) != 0 {
		t.Fatalf("formatted %d times, logged %v with the level at info", arg.n, h.got())
	}
	l.Warnf("odd %v", arg)
	if arg.n != 1 {
		t.Fatalf("an enabled warning was formatted %d times", arg.n)
	}
	want := []record{{slog.LevelWarn, "odd candidate", "ice"}}
	if got := h.got(); len(got) != 1 || got[0] != want[0] {
		t.Fatalf("logged %v, want %v", got, want)
	}
}

func TestDisabledLevelsDoNotAllocate(t *testing.T) {
	l := Factory(slog.New(newCapture(slog.LevelInfo))).NewLogger("ice")
	arg := &counting{}
	args := []any{arg}
	if n := testing.AllocsPerRun(100, func() {
		l.Debug("pinging")
		l.Trace("pinging")
		l.Debugf("pinging %v", args...)
		l.Tracef("pinging %v", args...)
	}); n != 0 {
		t.Errorf("%.0f allocations per disabled call, want 0", n)
	}
	if arg.n != 0 {
		t.Errorf("formatted %d times", arg.n)
	}
}

func TestLevels(t *testing.T) {
	h := newCapture(LevelTrace)
	l := Factory(slog.New(h)).NewLogger("dtls")
	l.Trace("t")
	l.Debugf("d%d", 1)
	l.Info("i")
	l.Warn("w")
	l.Errorf("e%s", "!")
	want := []record{{LevelTrace, "t", "dtls"}, {slog.LevelDebug, "d1", "dtls"}, {slog.LevelDebug, "i", "dtls"},
		{slog.LevelWarn, "w", "dtls"}, {slog.LevelError, "e!", "dtls"}}
	got := h.got()
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d: %v, want %v", i, got[i], want[i])
		}
	}
}

func TestTeardownWarningsAreDebug(t *testing.T) {
	closed := errors.New("stream is already closed")
	for _, c := range []struct {
		name, scope string
		log         func(logging.LeveledLogger)
		want        slog.Level
	}{
		{"rtp stream closed", "pc", func(l logging.LeveledLogger) {
			l.Warnf("Failed to accept RTP %v", closed)
		}, slog.LevelDebug},
		{"rtcp stream closed", "pc", func(l logging.LeveledLogger) {
			l.Warnf("Failed to accept RTCP %v", closed)
		}, slog.LevelDebug},
		{"ping before candidates", "ice", func(l logging.LeveledLogger) {
			l.Warn("Failed to ping without candidate pairs. Connection is not possible yet.")
		}, slog.LevelDebug},
		{"rtcp stream of a closed session", "pc", func(l logging.LeveledLogger) {
			l.Warnf("Failed to open RTCP stream for %d: %v", uint32(7), errors.New("failed to cast child"))
		}, slog.LevelDebug},
		{"unhandled rtcp", "pc", func(l logging.LeveledLogger) {
			l.Warnf("Incoming unhandled RTCP ssrc(%d), OnTrack will not be fired", uint32(1234567))
		}, slog.LevelDebug},
		{"track ended before its first packet", "pc", func(l logging.LeveledLogger) {
			l.Warnf("Could not determine PayloadType for SSRC %d (%s)", uint32(42), io.EOF)
		}, slog.LevelDebug},
		{"packet queued for its endpoint", "mux", func(l logging.LeveledLogger) {
			l.Warnf("Warning: mux: no endpoint for packet starting with %d, adding to queue size(%d)", 176, 3)
		}, slog.LevelDebug},
		// Packets dropped are a real warning.
		{"packet dropped", "mux", func(l logging.LeveledLogger) {
			l.Warnf("Warning: mux: no endpoint for packet starting with %d, not adding to queue size(%d)", 176, 100)
		}, slog.LevelWarn},
		// Another cause of the same failure is a real warning.
		{"payload type unreadable", "pc", func(l logging.LeveledLogger) {
			l.Warnf("Could not determine PayloadType for SSRC %d (%s)", uint32(42), errors.New("srtp: auth failed"))
		}, slog.LevelWarn},
		// Another cause of the same failure is a real warning.
		{"rtp other error", "pc", func(l logging.LeveledLogger) {
			l.Warnf("Failed to accept RTP %v", errors.New("srtp: bad key"))
		}, slog.LevelWarn},
		// The same text in another scope is not demoted.
		{"other scope", "dtls", func(l logging.LeveledLogger) {
			l.Warnf("Failed to accept RTP %v", closed)
		}, slog.LevelWarn},
		// Errors are never demoted.
		{"error", "pc", func(l logging.LeveledLogger) {
			l.Errorf("Failed to accept RTP %v", closed)
		}, slog.LevelError},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newCapture(slog.LevelDebug)
			c.log(Factory(slog.New(h)).NewLogger(c.scope))
			got := h.got()
			if len(got) != 1 || got[0].level != c.want || got[0].scope != c.scope {
				t.Fatalf("logged %v, want one line at %v in scope %s", got, c.want, c.scope)
			}
			// With debug off, a demoted warning is not logged at all.
			quiet := newCapture(slog.LevelInfo)
			c.log(Factory(slog.New(quiet)).NewLogger(c.scope))
			if n := len(quiet.got()); (n == 0) != (c.want < slog.LevelInfo) {
				t.Fatalf("at level info %d lines were logged; want them only for real warnings", n)
			}
		})
	}
}

// A benign warning is not even formatted when debug is off.
func TestDemotedWarningsAreNotFormattedBelowDebug(t *testing.T) {
	l := Factory(slog.New(newCapture(slog.LevelInfo))).NewLogger("mux")
	arg := &counting{}
	l.Warnf("Warning: mux: no endpoint for packet starting with %d, adding to queue size(%d)", arg, arg)
	if arg.n != 0 {
		t.Errorf("formatted %d times", arg.n)
	}
}

func TestFormatWithoutArguments(t *testing.T) {
	h := newCapture(slog.LevelDebug)
	l := Factory(slog.New(h)).NewLogger("pc")
	l.Warnf("100%% sure")
	l.Warn("100%% literal")
	got := h.got()
	if len(got) != 2 || got[0].msg != "100% sure" || got[1].msg != "100%% literal" {
		t.Errorf("got %v", got)
	}
}

// fakeTrack stands for pion's TrackRemote: its getters lock, formatting
// it whole would not.
type fakeTrack struct{ formatted int }

func (f *fakeTrack) ID() string     { return "cam" }
func (f *fakeTrack) RID() string    { return "h" }
func (f *fakeTrack) String() string { f.formatted++; return "whole" }

// pion's "got new track: %+v" is never formatted whole (a data race with
// its renegotiation): it is logged with the track's id and RID.
func TestRacyArgumentsAreNotFormatted(t *testing.T) {
	h := newCapture(slog.LevelDebug)
	l := Factory(slog.New(h)).NewLogger("pc")
	tr := &fakeTrack{}
	l.Debugf("got new track: %+v", tr)
	if got := h.got(); len(got) != 1 || got[0].msg != "got new track" || tr.formatted != 0 {
		t.Fatalf("got %v, the track formatted %d times", got, tr.formatted)
	}
	if attrs := identify([]any{tr}); len(attrs) != 4 || attrs[1] != "cam" || attrs[3] != "h" {
		t.Fatalf("attributes %v", attrs)
	}
}
