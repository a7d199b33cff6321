package queuing

import "testing"

func TestDeliveryRate(t *testing.T) {
	var d Delivery
	if _, ok := d.Rate(); ok {
		t.Fatal("a rate without packets")
	}
	// 1000-byte packets every 4 ms (2 Mbit/s), arrival times from an
	// arbitrary reference on the receiver's clock.
	const ref = 7_340_032_000
	arrival := int64(ref)
	add := func(n int, gap int64) {
		for range n {
			arrival += gap
			d.Add(arrival, 1000)
		}
	}
	add(25, 4000) // 100 ms: too short to judge
	if _, ok := d.Rate(); ok {
		t.Fatal("a rate from 100 ms of arrivals")
	}
	add(75, 4000)
	if bps, ok := d.Rate(); !ok || bps < 1_900_000 || bps > 2_100_000 {
		t.Fatalf("after 400 ms: %d %v, want about 2 Mbit/s", bps, ok)
	}
	// A bottleneck halves it: after a second only the new rate counts.
	add(250, 8000)
	if bps, ok := d.Rate(); !ok || bps < 950_000 || bps > 1_050_000 {
		t.Fatalf("through a bottleneck: %d %v, want about 1 Mbit/s", bps, ok)
	}
	// Reordered arrivals count where they belong.
	d.Add(arrival-50_000, 1000)
	if bps, _ := d.Rate(); bps < 1_000_000 || bps > 1_070_000 {
		t.Fatalf("with a late report: %d", bps)
	}
	// The receiver's reference time wrapped: the record starts again.
	arrival = 1000
	add(10, 4000)
	if _, ok := d.Rate(); ok {
		t.Fatal("a rate across a clock jump")
	}
}

func BenchmarkDeliveryAdd(b *testing.B) {
	var d Delivery
	b.ReportAllocs()
	for i := range b.N {
		d.Add(int64(i)*100, 1200)
	}
}
