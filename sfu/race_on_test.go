//go:build race

package sfu

// raceEnabled: the race detector is on.
const raceEnabled = true
