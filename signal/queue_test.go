package signal

import (
	"fmt"
	"testing"
)

// The queue keeps order, refuses past its limit, and holds no memory for
// a burst once it has been written out.
func TestOutQueue(t *testing.T) {
	q := newOutQueue(300)
	for round := range 2 {
		for i := range 300 {
			if !q.push([]byte(fmt.Sprint(i))) {
				t.Fatalf("round %d: message %d refused below the limit", round, i)
			}
		}
		if q.push([]byte("over")) {
			t.Fatal("a message past the limit was queued")
		}
		if n := q.len(); n != 300 {
			t.Fatalf("%d waiting, want 300", n)
		}
		for i := range 300 {
			b, ok := q.pop()
			if !ok || string(b) != fmt.Sprint(i) {
				t.Fatalf("round %d: pop %d gave %q %v", round, i, b, ok)
			}
		}
		if _, ok := q.pop(); ok {
			t.Fatal("pop from an empty queue")
		}
		if cap(q.items) != 0 {
			t.Fatalf("an empty queue keeps room for %d messages", cap(q.items))
		}
	}
	select {
	case <-q.ready:
	default:
		t.Fatal("no wake-up token after pushes")
	}
}
