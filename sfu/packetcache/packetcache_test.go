package packetcache

import (
	"bytes"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestNewRoundsUpToAPowerOfTwo(t *testing.T) {
	for _, tc := range []struct{ ask, want int }{
		{-5, 1}, {0, 1}, {1, 1}, {3, 4}, {1024, 1024}, {1025, 2048}, {1 << 20, 1 << 16},
	} {
		if got := New(tc.ask).Size(); got != tc.want {
			t.Errorf("New(%d).Size() = %d, want %d", tc.ask, got, tc.want)
		}
	}
}

// packet is a recognisable payload for seq.
func packet(seq uint16, n int) []byte {
	p := make([]byte, n)
	p[0], p[n-1] = byte(seq>>8), byte(seq)
	return p
}

func TestStoreAndGet(t *testing.T) {
	tests := []struct {
		name   string
		size   int
		stored []uint16 // in arrival order
		get    uint16
		found  bool
	}{
		{"hit", 8, []uint16{1, 2, 3}, 2, true},
		{"never stored", 8, []uint16{1, 2, 3}, 4, false},
		{"evicted by a newer packet in its slot", 8, []uint16{1, 9}, 1, false},
		{"newest of its slot", 8, []uint16{1, 9}, 9, true},
		{"across 65535 to 0", 8, []uint16{65533, 65534, 65535, 0, 1}, 65535, true},
		{"after the wrap", 8, []uint16{65533, 65534, 65535, 0, 1}, 0, true},
		{"too old after the wrap", 8, []uint16{65530, 65531, 65532, 65533, 65534, 65535, 0, 1, 2, 3}, 65531, false},
		{"oldest still held after the wrap", 8, []uint16{65530, 65531, 65532, 65533, 65534, 65535, 0, 1, 2, 3}, 65532, true},
		{"full sequence space", 1 << 16, []uint16{0, 32768, 65535}, 32768, true},
		{"reordered arrival", 8, []uint16{5, 3, 4}, 3, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := New(tc.size)
			for i, seq := range tc.stored {
				if !c.Store(seq, packet(seq, 20+i), int64(1000+i)) {
					t.Fatalf("store %d refused", seq)
				}
			}
			dst := make([]byte, MaxPacketSize)
			n, at := c.Get(tc.get, dst)
			if (n > 0) != tc.found {
				t.Fatalf("get %d: found %v, want %v", tc.get, n > 0, tc.found)
			}
			if !tc.found {
				return
			}
			i := 0
			for tc.stored[i] != tc.get {
				i++
			}
			if !bytes.Equal(dst[:n], packet(tc.get, 20+i)) || at != int64(1000+i) {
				t.Fatalf("get %d: %d bytes at %d, want packet %d of %d bytes at %d", tc.get, n, at, i, 20+i, 1000+i)
			}
		})
	}
}

func TestRefusesWhatItCannotHoldWhole(t *testing.T) {
	c := New(4)
	if !c.Store(7, packet(7, MaxPacketSize), 1) {
		t.Fatal("packet of MaxPacketSize refused")
	}
	if c.Store(7, packet(7, MaxPacketSize+1), 2) {
		t.Fatal("oversized packet accepted")
	}
	dst := make([]byte, MaxPacketSize)
	if n, at := c.Get(7, dst); n != MaxPacketSize || at != 1 {
		t.Fatalf("oversized packet replaced the stored one: %d bytes at %d", n, at)
	}
	if n, _ := c.Get(7, dst[:100]); n != 0 {
		t.Fatalf("copied %d bytes into a short buffer", n)
	}
}

func TestReadersAndWriterAtOnce(t *testing.T) {
	c := New(64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 20000; i++ {
			c.Store(uint16(i), packet(uint16(i), 100), int64(i))
		}
	}()
	dst := make([]byte, MaxPacketSize)
	for i := 0; i < 20000; i++ {
		seq := uint16(i)
		if n, at := c.Get(seq, dst); n > 0 && (!bytes.Equal(dst[:n], packet(seq, 100)) || at != int64(i)) {
			t.Fatalf("packet %d torn: %d bytes at %d", seq, n, at)
		}
	}
	<-done
}

func BenchmarkStore(b *testing.B) {
	c := New(1024)
	pkt := make([]byte, 1200)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		c.Store(uint16(i), pkt, int64(i))
	}
}

func BenchmarkGet(b *testing.B) {
	c := New(1024)
	pkt := make([]byte, 1200)
	for i := 0; i < 1024; i++ {
		c.Store(uint16(i), pkt, int64(i))
	}
	dst := make([]byte, MaxPacketSize)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if n, _ := c.Get(uint16(i&1023), dst); n == 0 {
			b.Fatal("miss")
		}
	}
}
