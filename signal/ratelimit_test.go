package signal

import (
	"testing"
	"time"
)

// admitPaced sends n messages at the given rate through a limiter and
// returns how many were admitted and when (message index) it first judged
// the client abusive (-1: never).
func admitPaced(rate float64, burst int, perSecond, n int) (admitted, abuseAt, warnings int) {
	start := time.Unix(0, 0)
	l := newReadLimiter(rate, burst, start)
	abuseAt = -1
	for i := 0; i < n; i++ {
		switch l.admit(start.Add(time.Duration(i) * time.Second / time.Duration(perSecond))) {
		case admitOK:
			admitted++
		case admitDropWarn:
			warnings++
		case admitAbuse:
			if abuseAt < 0 {
				abuseAt = i
			}
		}
	}
	return
}

func TestReadLimiterEndsPacedFloods(t *testing.T) {
	// 1,000 messages a second for 3 s against 50/s with bursts of 100: some
	// get through, but within about a second the client is abusive.
	admitted, abuseAt, warnings := admitPaced(50, 100, 1000, 3000)
	if abuseAt < 0 || abuseAt > 1500 {
		t.Fatalf("a paced flood of 1000/s was judged abusive at message %d", abuseAt)
	}
	if warnings == 0 {
		t.Error("no rate_limited warning before the close")
	}
	t.Logf("1000/s: %d admitted, abusive at message %d", admitted, abuseAt)
	// A client a little over the rate is told, never disconnected.
	if _, abuseAt, warnings := admitPaced(50, 100, 60, 600); abuseAt >= 0 || warnings == 0 {
		t.Errorf("60/s against 50/s: abusive at %d, %d warnings; want warnings only", abuseAt, warnings)
	}
	// A polite client is never limited.
	if admitted, abuseAt, warnings := admitPaced(50, 100, 40, 400); admitted != 400 || abuseAt >= 0 || warnings != 0 {
		t.Errorf("40/s against 50/s: %d of 400 admitted, abuse %d, %d warnings", admitted, abuseAt, warnings)
	}
}
