//go:build race

package room_test

// raceEnabled: the race detector slows everything ~10x; scale tests shrink.
const raceEnabled = true
