package main

import (
	"runtime/debug"
	"testing"
)

// The server collects at gcTarget unless the operator set GOGC.
func TestGCTarget(t *testing.T) {
	prev := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prev) })
	setGCTarget(func(string) string { return "" })
	if got := debug.SetGCPercent(100); got != gcTarget {
		t.Errorf("without GOGC the target is %d, want %d", got, gcTarget)
	}
	setGCTarget(func(k string) string {
		if k == "GOGC" {
			return "80"
		}
		return ""
	})
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("with GOGC set the target was changed to %d", got)
	}
}
