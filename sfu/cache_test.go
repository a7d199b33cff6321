package sfu

import (
	"bytes"
	"testing"
)

func TestPacketCache(t *testing.T) {
	c := newPacketCache(8)
	buf := make([]byte, maxPacketSize)
	for seq := uint16(65530); seq != 4; seq++ {
		c.store(seq, []byte{byte(seq), 1, 2}, int64(seq))
	}
	if n, at := c.get(65532, buf); n == 0 || at != 65532 || !bytes.Equal(buf[:n], []byte{byte(65532 & 0xff), 1, 2}) {
		t.Fatalf("recent packet across wraparound: %x at %d", buf[:n], at)
	}
	if n, _ := c.get(65530, buf); n != 0 {
		t.Fatal("packet older than the cache returned")
	}
	if n, _ := c.get(100, buf); n != 0 {
		t.Fatal("never stored packet returned")
	}
	c.store(1, make([]byte, maxPacketSize+1), 0)
	if n, _ := c.get(1, buf); n != 3 {
		t.Fatal("oversized packet replaced a stored one")
	}
}

func BenchmarkPacketCacheStore(b *testing.B) {
	c := newPacketCache(1024)
	pkt := make([]byte, 1200)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		c.store(uint16(i), pkt, int64(i))
	}
}
