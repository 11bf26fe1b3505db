//go:build !race

package conn

// raceEnabled: the tests run under the race detector.
const raceEnabled = false
