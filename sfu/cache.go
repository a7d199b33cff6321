package sfu

import "sync"

// maxPacketSize bounds one cached RTP packet. 1500 is the Ethernet MTU; SRTP
// decrypted payloads are always smaller.
const maxPacketSize = 1500

// cacheEntry keeps a packet inline, so the cache is one allocation made up
// front and storing a packet never allocates.
type cacheEntry struct {
	seq   uint16
	n     uint16
	valid bool
	at    int64 // arrival, Unix nanoseconds
	buf   [maxPacketSize]byte
}

// packetCache holds the most recent packets of one published layer, indexed
// by sequence number. There is one per layer however many subscribers there
// are: NACKs from any of them are answered from here.
type packetCache struct {
	mu      sync.Mutex
	entries []cacheEntry
}

// newPacketCache returns a cache of size packets; size must be a power of two.
func newPacketCache(size int) *packetCache {
	if size&(size-1) != 0 {
		panic("packet cache size must be a power of two")
	}
	return &packetCache{entries: make([]cacheEntry, size)}
}

// store copies pkt (a whole RTP packet), which arrived at at (Unix
// nanoseconds), under its sequence number.
func (c *packetCache) store(seq uint16, pkt []byte, at int64) {
	if len(pkt) > maxPacketSize {
		return
	}
	c.mu.Lock()
	e := &c.entries[int(seq)&(len(c.entries)-1)]
	e.seq = seq
	e.n = uint16(copy(e.buf[:], pkt))
	e.valid = true
	e.at = at
	c.mu.Unlock()
}

// get copies the packet with sequence number seq into dst and returns its
// length and arrival time, or 0 when it is no longer (or never was) in the
// cache.
func (c *packetCache) get(seq uint16, dst []byte) (n int, at int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := &c.entries[int(seq)&(len(c.entries)-1)]
	if !e.valid || e.seq != seq {
		return 0, 0
	}
	return copy(dst, e.buf[:e.n]), e.at
}
