//go:build race

package cost_test

// raceEnabled is true under the race detector, whose CPU time is not the
// code's.
const raceEnabled = true
