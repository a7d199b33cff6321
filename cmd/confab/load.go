package main

import (
	"flag"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/confab-sfu/confab/room/load"
)

// loadFlags are the node's load limits (room/load): over them it refuses
// new joins, publications and WHIP/WHEP sessions and says not ready;
// nearing them it sheds video.
type loadFlags struct {
	maxCPU     float64 // percent of the CPUs the process may use
	maxStreams int     // -1: derived from the cores
	maxBitrate float64 // Mbit/s
	retryAfter time.Duration
}

func addLoadFlags(fs *flag.FlagSet, c *loadFlags) {
	fs.Float64Var(&c.maxCPU, "max-cpu", 85, "CPU use, in percent of the cores the process may use (GOMAXPROCS), over which new joins are refused and /readyz says not ready; sheds video from 75 % of it (0: no limit)")
	fs.IntVar(&c.maxStreams, "max-streams", -1, "forwarded streams (one per subscriber and track, relayed layers included) over which new joins are refused (-1: 400 per core; 0: no limit)")
	fs.Float64Var(&c.maxBitrate, "max-bitrate", 0, "egress in Mbit/s over which new joins are refused (0: no limit)")
	fs.DurationVar(&c.retryAfter, "busy-retry-after", 10*time.Second, "how long refused clients are told to wait (server_busy retryAfter, HTTP Retry-After)")
}

// check validates the load flags.
func (c *loadFlags) check() error {
	switch {
	case c.maxCPU < 0 || c.maxCPU > 100:
		return fmt.Errorf("-max-cpu %v: want a percentage, 0 to 100 (0: no limit)", c.maxCPU)
	case c.maxStreams < -1:
		return fmt.Errorf("-max-streams %d: want a count, 0 for no limit or -1 for the default", c.maxStreams)
	case c.maxBitrate < 0:
		return fmt.Errorf("-max-bitrate %v: want Mbit/s, 0 for no limit", c.maxBitrate)
	case c.retryAfter < time.Second:
		return fmt.Errorf("-busy-retry-after %s: want at least 1s", c.retryAfter)
	}
	return nil
}

// config is the rooms' load configuration.
func (c *loadFlags) config(logger *slog.Logger) load.Config {
	lim := load.Defaults(runtime.GOMAXPROCS(0))
	lim.CPU = c.maxCPU / 100
	if c.maxStreams >= 0 {
		lim.Streams = c.maxStreams
	}
	lim.Bitrate = c.maxBitrate * 1e6
	return load.Config{Limits: lim, RetryAfter: c.retryAfter, Logger: logger}
}
