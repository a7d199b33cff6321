package signal

import "sync"

// outQueue holds a connection's outgoing messages, up to a limit. It grows
// with what is waiting instead of reserving the limit up front: a channel
// of 512 messages was 12 KiB per connection, held by every participant of
// every room whether anything waited or not.
type outQueue struct {
	mu    sync.Mutex
	items [][]byte // waiting from head on
	head  int
	limit int
	ready chan struct{} // holds a token while something may be waiting
}

func newOutQueue(limit int) *outQueue {
	return &outQueue{limit: limit, ready: make(chan struct{}, 1)}
}

// push queues b; false when the queue is full.
func (q *outQueue) push(b []byte) bool {
	q.mu.Lock()
	if len(q.items)-q.head >= q.limit {
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, b)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return true
}

// pop takes the oldest message; false when none waits.
func (q *outQueue) pop() ([]byte, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head == len(q.items) {
		// Empty: start over at the front, and let a burst's backing
		// array go.
		if cap(q.items) > 64 {
			q.items = nil
		}
		q.items, q.head = q.items[:0], 0
		return nil, false
	}
	b := q.items[q.head]
	q.items[q.head] = nil
	q.head++
	return b, true
}

// len is how many messages wait.
func (q *outQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items) - q.head
}
