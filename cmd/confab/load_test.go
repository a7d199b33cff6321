package main

import (
	"runtime"
	"strings"
	"testing"
)

// The load flags set the rooms' limits; defaults follow the cores; bad
// values are refused with the flag's name.
func TestOverloadFlags(t *testing.T) {
	c, err := parseConfig([]string{"-max-cpu", "70", "-max-streams", "12", "-max-bitrate", "2.5", "-busy-retry-after", "3s"}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	lc := c.load.config(nil)
	if lc.Limits.CPU != 0.7 || lc.Limits.Streams != 12 || lc.Limits.Bitrate != 2.5e6 || lc.RetryAfter.Seconds() != 3 {
		t.Fatalf("limits %+v, retry %v", lc.Limits, lc.RetryAfter)
	}
	c, err = parseConfig(nil, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if d := c.load.config(nil).Limits; d.CPU != 0.85 || d.Streams != 400*runtime.GOMAXPROCS(0) || d.Bitrate != 0 {
		t.Fatalf("default limits %+v", d)
	}
	for _, bad := range [][]string{{"-max-cpu", "101"}, {"-max-streams", "-2"}, {"-max-bitrate", "-1"}, {"-busy-retry-after", "10ms"}} {
		if _, err := parseConfig(bad, func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), bad[0]) {
			t.Errorf("%v: %v", bad, err)
		}
	}
}
