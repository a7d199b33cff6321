package queuing

import (
	"math/rand"
	"testing"
	"time"
)

// one-way delays in µs with an arbitrary offset (clocks differ).
const offset = -68_187_900_000

func TestNoisyArrivalsAreNoQueue(t *testing.T) {
	var m Monitor
	rng := rand.New(rand.NewSource(1))
	start := time.Unix(1000, 0)
	// Firefox-like arrival times: each packet stamped 0-20 ms late, a few
	// promptly, 100 packets a second for 10 s.
	for i := range 1000 {
		at := start.Add(time.Duration(i) * 10 * time.Millisecond)
		m.Add(offset+rng.Int63n(20_000), at)
		d, ok := m.Queuing(at)
		if i > 60 && (!ok || d > 5*time.Millisecond) {
			t.Fatalf("packet %d: queuing %v %v from noise alone", i, d, ok)
		}
	}
}

func TestStandingQueueIsSeen(t *testing.T) {
	var m Monitor
	start := time.Unix(1000, 0)
	at := start
	for i := range 300 { // 3 s clean
		at = start.Add(time.Duration(i) * 10 * time.Millisecond)
		m.Add(offset+int64(i%7)*100, at)
	}
	if d, ok := m.Queuing(at); !ok || d > time.Millisecond {
		t.Fatalf("clean path: queuing %v %v", d, ok)
	}
	// A bottleneck's queue grows to 80 ms and stays.
	for i := range 200 {
		at = at.Add(10 * time.Millisecond)
		m.Add(offset+int64(min(i, 80))*1000, at)
	}
	if d, ok := m.Queuing(at); !ok || d < 75*time.Millisecond || d > 81*time.Millisecond {
		t.Fatalf("standing queue: queuing %v %v, want about 80 ms", d, ok)
	}
	// It drains.
	for range 60 {
		at = at.Add(10 * time.Millisecond)
		m.Add(offset, at)
	}
	if d, ok := m.Queuing(at); !ok || d != 0 {
		t.Fatalf("drained: queuing %v %v", d, ok)
	}
}

func TestQueuingNeedsRecentSamples(t *testing.T) {
	var m Monitor
	at := time.Unix(1000, 0)
	if _, ok := m.Queuing(at); ok {
		t.Fatal("queuing known without samples")
	}
	m.Add(offset, at)
	if _, ok := m.Queuing(at.Add(200 * time.Millisecond)); !ok {
		t.Fatal("a sample 200 ms old is recent")
	}
	if _, ok := m.Queuing(at.Add(time.Second)); ok {
		t.Fatal("a sample a second old counts as recent")
	}
	// The base forgets after 60 s: a path whose delay rose for good (a new
	// route) shows no queue once the old base is gone.
	m.Add(offset+50_000, at.Add(70*time.Second))
	if d, ok := m.Queuing(at.Add(70 * time.Second)); !ok || d != 0 {
		t.Fatalf("after 70 s: queuing %v %v, want 0", d, ok)
	}
}
