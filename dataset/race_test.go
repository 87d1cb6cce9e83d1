//go:build race

package dataset

// raceEnabled is true under the race detector, which slows code 5–20×.
const raceEnabled = true
