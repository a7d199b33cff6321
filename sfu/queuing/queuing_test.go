package queuing

import (
	"math/rand"
	"testing"
	"time"
)

func TestDepartures(t *testing.T) {
	var d Departures
	now := time.Unix(1_800_000_000, 123_456_000).UnixNano()
	d.Record(65535, now, 1200)
	d.Record(0, now+1000, 300)
	if at, size, ok := d.Lookup(65535); !ok || at != (now/1000)&(1<<48-1) || size != 1200 {
		t.Fatalf("lookup 65535: %d %d %v", at, size, ok)
	}
	if at, size, ok := d.Lookup(0); !ok || at != (now/1000+1)&(1<<48-1) || size != 300 {
		t.Fatalf("lookup 0 after the wrap: %d %d %v", at, size, ok)
	}
	if _, _, ok := d.Lookup(1); ok {
		t.Fatal("found a number never sent")
	}
	// A number departureSlots later takes the slot: the old one is gone.
	d.Record(departureSlots, now, 1200)
	if _, _, ok := d.Lookup(0); ok {
		t.Fatal("an overwritten departure was found")
	}
}

func TestDeparturesExpected(t *testing.T) {
	var d Departures
	if !d.Expected() {
		t.Fatal("before any stream, numbers are expected (Confab offers them)")
	}
	d.StreamBound(false)
	if d.Expected() {
		t.Fatal("expected from a subscriber that took no transport-wide numbers")
	}
	d.StreamBound(true)
	if !d.Expected() {
		t.Fatal("not expected although a stream is numbered")
	}
}

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

func BenchmarkRecord(b *testing.B) {
	var d Departures
	b.ReportAllocs()
	for i := range b.N {
		d.Record(uint16(i), int64(i), 1200)
	}
}
