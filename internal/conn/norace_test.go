//go:build !race

package conn

// raceEnabled: the tests run under the race detector (not here).
const raceEnabled = false
