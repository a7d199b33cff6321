package load

import (
	"testing"
	"time"
)

func TestRatioTakesTheMostUsedLimit(t *testing.T) {
	l := Limits{CPU: 0.8, Streams: 100, Bitrate: 1e6}
	cases := []struct {
		r    Reading
		want float64
	}{
		{Reading{}, 0},
		{Reading{CPU: 0.4, Streams: 10, BitrateOut: 1e5}, 0.5},
		{Reading{CPU: 0.1, Streams: 90, BitrateOut: 1e5}, 0.9},
		{Reading{CPU: 0.1, Streams: 10, BitrateOut: 2e6}, 2},
	}
	for _, c := range cases {
		if got := l.Ratio(c.r); got < c.want-1e-9 || got > c.want+1e-9 {
			t.Errorf("Ratio(%+v) = %v, want %v", c.r, got, c.want)
		}
	}
	if got := (Limits{}).Ratio(Reading{CPU: 1, Streams: 1e6, BitrateOut: 1e12}); got != 0 {
		t.Errorf("no limits: ratio %v, want 0", got)
	}
}

// The level rises at once at 75, 90 and 100 % and falls a tenth below,
// and only once it has held for Hold.
func TestJudgeOverloadHysteresis(t *testing.T) {
	t0 := time.Unix(1000, 0)
	steps := []struct {
		after time.Duration // since t0
		ratio float64
		want  Level
	}{
		{0, 0.5, Normal},
		{1 * time.Second, 0.74, Normal},
		{2 * time.Second, 0.75, Pressure},
		{3 * time.Second, 0.7, Pressure},   // below entry, above exit (0.65)
		{10 * time.Second, 0.66, Pressure}, // held long enough, still above exit
		{11 * time.Second, 1.2, Over},      // straight to over
		{12 * time.Second, 0.5, Over},      // Hold (5 s) not over yet
		{16 * time.Second, 0.95, Over},     // above the exit 0.9: stays
		{17 * time.Second, 0.89, High},     // below 0.9, above 0.8: high
		{18 * time.Second, 1.0, Over},      // at 100 % of a limit: over
		{23 * time.Second, 0.7, Pressure},  // falls through high's exit, stops at pressure
		{28 * time.Second, 0.64, Normal},   // below pressure's exit
		{29 * time.Second, 0.9, High},      // rises at once
		{30 * time.Second, 0.0, High},      // held 1 s only
		{34 * time.Second, 0.0, Normal},    // held 5 s: all the way down
		{35 * time.Second, 0.8999999, Pressure},
	}
	j := Judge{Hold: 5 * time.Second}
	for i, s := range steps {
		prev := j.Level()
		got, changed := j.Update(s.ratio, t0.Add(s.after))
		if got != s.want || changed != (got != prev) {
			t.Fatalf("step %d (ratio %v at %v): level %v changed %v, want %v (from %v)", i, s.ratio, s.after, got, changed, s.want, prev)
		}
	}
}

// A flapping reading around the over threshold changes the level once.
func TestJudgeOverloadDoesNotFlap(t *testing.T) {
	j := Judge{Hold: time.Second}
	t0 := time.Unix(0, 0)
	changes := 0
	for i := range 100 {
		ratio := 0.97
		if i%2 == 0 {
			ratio = 1.02
		}
		if _, changed := j.Update(ratio, t0.Add(time.Duration(i)*500*time.Millisecond)); changed {
			changes++
		}
	}
	if changes != 1 || j.Level() != Over {
		t.Fatalf("%d changes, level %v: want 1 change, over", changes, j.Level())
	}
}

func TestAdmitsOverloadPredicts(t *testing.T) {
	l := Limits{CPU: 0.8, Streams: 100, Bitrate: 10e6}
	cases := []struct {
		name  string
		r     Reading
		level Level
		extra int
		want  bool
	}{
		{"idle", Reading{}, Normal, 10, true},
		{"over refuses even nothing", Reading{}, Over, 0, false},
		{"nothing added", Reading{Streams: 100}, High, 0, true},
		{"fits the stream limit exactly", Reading{Streams: 90}, Normal, 10, true},
		{"passes the stream limit", Reading{Streams: 91}, Normal, 10, false},
		{"cpu would pass", Reading{Streams: 40, CPU: 0.6}, Pressure, 20, false}, // 0.6*60/40 = 0.9
		{"cpu fits", Reading{Streams: 40, CPU: 0.4}, Normal, 20, true},          // 0.6
		{"bitrate would pass", Reading{Streams: 50, BitrateOut: 8e6}, Normal, 20, false},
		{"too few streams to judge cpu", Reading{Streams: 5, CPU: 0.79}, Normal, 10, true},
	}
	for _, c := range cases {
		if got := l.Admits(c.r, c.level, c.extra); got != c.want {
			t.Errorf("%s: Admits(%+v, %v, %d) = %v, want %v", c.name, c.r, c.level, c.extra, got, c.want)
		}
	}
	if !(Limits{}).Admits(Reading{CPU: 1, Streams: 1e6}, High, 1e6) {
		t.Error("no limits refused")
	}
}

func TestDefaultsScaleWithCores(t *testing.T) {
	if d := Defaults(4); d.CPU != 0.85 || d.Streams != 1600 || d.Bitrate != 0 {
		t.Errorf("Defaults(4) = %+v", d)
	}
	if d := Defaults(0); d.Streams != 400 {
		t.Errorf("Defaults(0) = %+v", d)
	}
}
