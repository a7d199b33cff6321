// Package packetcache keeps the most recent RTP packets of one stream,
// indexed by sequence number, so that retransmission requests (NACKs) from
// any number of receivers are answered from a single copy of each packet.
//
// The cache is a ring of fixed-size slots with the packet bytes inline: it is
// allocated once, and storing or fetching a packet copies bytes but never
// allocates. A slot is found by the low bits of the sequence number, so a
// newer packet simply replaces the one 2^k sequence numbers before it.
package packetcache

import "sync"

// MaxPacketSize bounds one cached packet. 1500 is the Ethernet MTU: an RTP
// packet that came through a network path, with SRTP's tag removed, is
// never larger. Larger packets are refused rather than truncated.
const MaxPacketSize = 1500

// maxSize is the most slots that make sense: one per 16-bit sequence number.
const maxSize = 1 << 16

type entry struct {
	seq   uint16
	n     uint16
	valid bool
	at    int64 // arrival, Unix nanoseconds
	buf   [MaxPacketSize]byte
}

// Cache holds the newest packets of one stream. It is safe for one writer
// and any number of readers at once.
type Cache struct {
	mu      sync.Mutex
	entries []entry
	mask    int
}

// New returns a cache of at least size packets: size is rounded up to a
// power of two (so that slots wrap with the 16-bit sequence numbers) and
// clamped to [1, 65536].
func New(size int) *Cache {
	n := 1
	for n < size && n < maxSize {
		n <<= 1
	}
	return &Cache{entries: make([]entry, n), mask: n - 1}
}

// Size is the number of packets the cache holds.
func (c *Cache) Size() int { return len(c.entries) }

// Store copies pkt, a whole RTP packet that arrived at at (Unix nanoseconds),
// under its sequence number. It reports false, and keeps what was there,
// when pkt is larger than MaxPacketSize.
func (c *Cache) Store(seq uint16, pkt []byte, at int64) bool {
	if len(pkt) > MaxPacketSize {
		return false
	}
	c.mu.Lock()
	e := &c.entries[int(seq)&c.mask]
	e.seq = seq
	e.n = uint16(copy(e.buf[:], pkt))
	e.valid = true
	e.at = at
	c.mu.Unlock()
	return true
}

// Get copies the packet with sequence number seq into dst and returns its
// length and arrival time. It returns 0 when the packet is not (or no
// longer) cached, or when dst is too small to hold it: a truncated packet
// would be worse than none.
func (c *Cache) Get(seq uint16, dst []byte) (n int, at int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := &c.entries[int(seq)&c.mask]
	if !e.valid || e.seq != seq || len(dst) < int(e.n) {
		return 0, 0
	}
	return copy(dst, e.buf[:e.n]), e.at
}
