package wait

import (
	"sync/atomic"
	"testing"
	"time"
)

// recorder is a testing.TB that records a failure instead of stopping the
// test that uses it.
type recorder struct {
	testing.TB
	failed atomic.Bool
	msg    string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed.Store(true)
	r.msg = format
	panic(r) // stands in for runtime.Goexit: stop the helper here
}

func run(f func(tb testing.TB)) (r *recorder) {
	r = &recorder{}
	defer func() {
		if p := recover(); p != nil && p != r {
			panic(p)
		}
	}()
	f(r)
	return r
}

func TestForReturnsOnceTheConditionHolds(t *testing.T) {
	var n atomic.Int32
	go func() {
		for range 3 {
			time.Sleep(5 * time.Millisecond)
			n.Add(1)
		}
	}()
	took := For(t, 5*time.Second, "three", func() bool { return n.Load() == 3 })
	if took > time.Second {
		t.Fatalf("took %v", took)
	}
}

func TestTimeoutsFail(t *testing.T) {
	if r := run(func(tb testing.TB) { For(tb, 30*time.Millisecond, "never", func() bool { return false }) }); !r.failed.Load() {
		t.Error("For did not fail")
	}
	if r := run(func(tb testing.TB) { Recv(tb, make(chan int), 30*time.Millisecond, "nothing") }); !r.failed.Load() {
		t.Error("Recv did not fail")
	}
	if r := run(func(tb testing.TB) {
		Until(tb, 30*time.Millisecond, "never", func() (bool, string) { return false, "because" })
	}); !r.failed.Load() {
		t.Error("Until did not fail")
	}
	ch := make(chan int, 1)
	ch <- 7
	if v := Recv(t, ch, time.Second, "seven"); v != 7 {
		t.Errorf("Recv = %d", v)
	}
}
