//go:build !race

package msgbuf

const raceEnabled = false
