//go:build !race

package loadtest_test

// raceEnabled: see race_on_test.go.
const raceEnabled = false
