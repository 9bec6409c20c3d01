//go:build race

package resilience

// raceEnabled lets slow property tests run fewer rounds under the race
// detector, which slows them tenfold without finding more.
const raceEnabled = true
