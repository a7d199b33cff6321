// Package bwe estimates the bandwidth of one subscriber's downlink from
// transport-wide congestion control feedback (TWCC), as Google's congestion
// control (GCC) does: a delay-based detector (arrival-time groups of 5 ms
// bursts, their delay variation, a trendline over a window compared with an
// adaptive threshold) drives an AIMD rate controller, and a loss-based bound
// caps the result.
//
// It imports nothing but the standard library: callers turn feedback into
// Packet results (package sfu/twcc does) and pass the clock in, so an
// Estimator is pure state that tests drive with synthetic traces. It is not
// safe for concurrent use: one feedback reader owns it.
package bwe
