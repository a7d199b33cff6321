//go:build race

package loadtest_test

// raceEnabled: the race detector slows media ~10x, so media figures
// (loss, freezes) say nothing about the server under it.
const raceEnabled = true
