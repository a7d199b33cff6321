// Package twcc is the send side of transport-wide congestion control: it
// numbers each outgoing packet, remembers when it left, and turns the
// receiver's feedback (RTCP transport-layer CC) into per-packet results
// for the bandwidth estimator (package sfu/bwe).
//
// The send history is a fixed power-of-two ring indexed by the unwrapped
// sequence number: no map, no list, no allocation per packet. A History
// has two sides: writers (the packet path: every publisher's reader that
// forwards to this subscriber) call Stamp, and one feedback reader at a
// time calls Feedback. They share the ring under a mutex held for a few
// nanoseconds (one slot written or read), which also serializes writers:
// measured, that costs a writer half of what a lock-free slot does (two
// atomic read-modify-writes instead of four atomic stores, ~12 ns against
// ~28 ns). Everything else belongs to one side.
package twcc

import (
	"errors"
	"fmt"
	"sync"
)

// DefaultSize is the ring size for one subscriber: feedback comes every
// ~100 ms, so 1024 packets cover a second even at 1000 packets a second
// (a 10 Mbit/s downlink; four seconds of a 720p lecture), in 20 KiB. A
// report about packets older than that comes too late to steer anything.
const DefaultSize = 1024

// Bounds on the ring size. Feedback numbers are unwrapped as at most half
// the 16-bit space behind the newest packet sent, so a larger ring would
// hold packets no feedback can name.
const (
	MinSize = 16
	MaxSize = 1 << 15
)

// ErrSize refuses a ring size that is not a power of two in [MinSize, MaxSize].
var ErrSize = errors.New("twcc: history size must be a power of two between 16 and 32768")

// ErrMalformed marks feedback whose status list and timestamps disagree.
var ErrMalformed = errors.New("twcc: malformed feedback")

// History numbers outgoing packets and remembers their departures.
type History struct {
	mask int64

	// Shared: the writer changes them, the reader reads them.
	mu    sync.Mutex
	next  int64  // the next sequence number to assign, unwrapped
	slots []slot // the departures, indexed by sequence number & mask

	// Owned by the reader only.
	// per slot: the low 30 bits of seq+1, shifted left 2, | what feedback
	// said about it (a stale entry matches only 2^30 packets later).
	seen    []uint32
	ref     int64 // the newest feedback reference time, unwrapped (64 ms units)
	haveRef bool
}

// slot holds one departure.
type slot struct {
	tag  uint64 // (seq+1)<<17 | padding<<16 | size; 0 when empty
	sent int64  // departure, ns
}

// What feedback has said about a packet, kept in History.seen.
const (
	seenLost     = 1
	seenReceived = 2
)

// NewHistory makes a history of size packets (a power of two, see ErrSize).
func NewHistory(size int) (*History, error) {
	if size < MinSize || size > MaxSize || size&(size-1) != 0 {
		return nil, fmt.Errorf("new history of %d packets: %w", size, ErrSize)
	}
	return &History{slots: make([]slot, size), seen: make([]uint32, size), mask: int64(size - 1)}, nil
}

// Stamp assigns the next transport-wide sequence number to a packet of size
// bytes leaving at now (nanoseconds, any monotonic clock), records it, and
// returns the number to write into the header extension. padding marks a
// packet that carries only padding. Sizes are clamped to [0, 65535]. Safe
// for several writers at once.
func (h *History) Stamp(size int, padding bool, now int64) uint16 {
	size = min(max(size, 0), 0xffff)
	var pad uint64
	if padding {
		pad = 1 << 16
	}
	h.mu.Lock()
	seq := h.next
	h.next++
	h.slots[seq&h.mask] = slot{tag: uint64(seq+1)<<17 | pad | uint64(size), sent: now}
	h.mu.Unlock()
	return uint16(seq)
}

// Sent returns how many packets have been stamped. Safe from any goroutine.
func (h *History) Sent() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.next
}

// lookup returns the departure, size and padding flag of seq, if the ring
// still holds it.
func (h *History) lookup(seq int64) (sent int64, size int, padding, ok bool) {
	h.mu.Lock()
	s := h.slots[seq&h.mask]
	h.mu.Unlock()
	if s.tag>>17 != uint64(seq+1) {
		return 0, 0, false, false
	}
	return s.sent, int(s.tag & 0xffff), s.tag&(1<<16) != 0, true
}

// unwrap returns the unwrapped number of the 16-bit seq, taken as at most
// 32767 packets behind the newest one sent. ok is false when seq is ahead
// of what was sent: the receiver cannot have seen it.
func (h *History) unwrap(seq uint16, sent int64) (int64, bool) {
	if sent == 0 {
		return 0, false
	}
	newest := sent - 1
	behind := int64(uint16(newest) - seq)
	if behind >= 1<<15 {
		return 0, false
	}
	return newest - behind, true
}
