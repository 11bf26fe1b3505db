package runtimetest

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/wsmatrix/wsmatrix/api"
)

// countingObserver counts what a runtime reports.
type countingObserver struct {
	queueFull atomic.Int64
	panics    atomic.Int64
	mu        sync.Mutex
	closes    map[api.StatusCode]int
	refused   map[string]int
}

// observer returns the api.Observer that reports to o.
func (o *countingObserver) observer() *api.Observer {
	return &api.Observer{
		Closed: func(code api.StatusCode) {
			o.mu.Lock()
			defer o.mu.Unlock()
			if o.closes == nil {
				o.closes = map[api.StatusCode]int{}
			}
			o.closes[code]++
		},
		QueueFull: func() { o.queueFull.Add(1) },
		Panicked:  func() { o.panics.Add(1) },
		Refused: func(reason string) {
			o.mu.Lock()
			defer o.mu.Unlock()
			if o.refused == nil {
				o.refused = map[string]int{}
			}
			o.refused[reason]++
		},
	}
}

// refusals returns how many refusals were reported for reason.
func (o *countingObserver) refusals(reason string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.refused[reason]
}

// logCapture keeps every log record a runtime writes, at every level.
type logCapture struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logCapture) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logCapture) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (l *logCapture) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// has reports whether one logged line holds every one of words.
func (l *logCapture) has(words ...string) bool {
	for _, line := range strings.Split(l.String(), "\n") {
		all := true
		for _, w := range words {
			if !strings.Contains(line, w) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}
