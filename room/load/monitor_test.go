package load

import (
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A Monitor judges the readings its seams give, reserves streams for work
// under way, reports level changes in order, and stops its goroutine.
func TestMonitorOverloadReservesAndReportsLevels(t *testing.T) {
	var streams atomic.Int64
	var cpu atomic.Uint64 // percent
	levels := make(chan Level, 8)
	m := Start(Config{Limits: Limits{CPU: 0.8, Streams: 10}, Every: time.Hour, Hold: time.Nanosecond,
		Streams: func() int { return int(streams.Load()) },
		CPU:     func() float64 { return float64(cpu.Load()) / 100 },
		OnLevel: func(_, to Level, _ Reading) { levels <- to }})
	defer m.Stop()

	release, ok := m.Reserve(6)
	if !ok {
		t.Fatal("an idle node refused 6 of 10 streams")
	}
	if _, ok := m.Reserve(5); ok {
		t.Fatal("admitted 6+5 streams under a limit of 10")
	}
	release()
	release() // once only
	streams.Store(6)
	if _, ok := m.Reserve(5); ok {
		t.Fatal("admitted 6 forwarded + 5 under a limit of 10")
	}
	rel, ok := m.Reserve(4)
	if !ok {
		t.Fatal("refused 6 forwarded + 4 under a limit of 10")
	}
	rel()

	cpu.Store(85) // over 0.8
	m.Sample()
	if got := <-levels; got != Over || m.Level() != Over {
		t.Fatalf("cpu 0.85 of 0.8: level %v", got)
	}
	if _, ok := m.Reserve(0); ok {
		t.Fatal("an overloaded node admitted a join")
	}
	if r := m.Reading(); r.CPU != 0.85 || r.Streams != 6 {
		t.Fatalf("reading %+v", r)
	}
	cpu.Store(10)
	streams.Store(0)
	m.Sample()
	if got := <-levels; got != Normal {
		t.Fatalf("back to idle: level %v", got)
	}
	if _, ok := m.Reserve(1); !ok {
		t.Fatal("an idle node refused a stream")
	}
}

// Without the CPU seam the process's own CPU time is measured: a busy
// loop shows.
func TestMonitorMeasuresProcessCPU(t *testing.T) {
	m := Start(Config{Every: time.Hour, Window: time.Hour, Streams: func() int { return 0 }})
	defer m.Stop()
	deadline := time.Now().Add(300 * time.Millisecond)
	x := 0
	for time.Now().Before(deadline) {
		x++
	}
	m.Sample()
	if r := m.Reading(); r.CPU <= 0 || r.CPU > 1 {
		t.Fatalf("cpu %v after a busy loop (%d)", r.CPU, x)
	}
}
