package loadtest

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"time"
)

// OpenConfig describes one client process of the capacity scenario: it
// opens connections to URL until it holds Conns or the server stops
// accepting (StopAfter failures in a row), and keeps them.
type OpenConfig struct {
	URL       string
	Conns     int
	Offset    int           // index of this process's first connection: its source addresses and ports differ from the other processes'
	Sources   int           // loopback source addresses; default 8
	Dialers   int           // handshakes in flight at once; default 64
	StopAfter int           // failures in a row that end the ramp; default Dialers
	Handshake time.Duration // bound on one connection's TCP and WebSocket handshake; default 5 s
	Timeout   time.Duration // bound on the whole ramp; default 3 min
	Progress  *atomic.Int64
}

// Opened is what one client process holds.
type Opened struct {
	Conns  []net.Conn     `json:"-"`
	Held   int            `json:"held"` // connections open when the ramp ended
	Ramp   time.Duration  `json:"ramp_ns"`
	Errors map[string]int `json:"errors,omitempty"`
}

// Open runs the ramp of one client process of the capacity scenario.
func Open(ctx context.Context, cfg OpenConfig) (*Opened, error) {
	if cfg.Conns <= 0 || cfg.Conns > maxFiles-100 {
		return nil, fmt.Errorf("loadtest: open: %d connections; one process may open about %d files", cfg.Conns, maxFiles)
	}
	if cfg.Dialers <= 0 {
		cfg.Dialers = 64
	}
	if cfg.StopAfter <= 0 {
		cfg.StopAfter = cfg.Dialers
	}
	if cfg.Handshake <= 0 {
		cfg.Handshake = 5 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 3 * time.Minute
	}
	d, err := newDialer(cfg.URL, max(cfg.Sources, 8))
	if err != nil {
		return nil, err
	}
	d.timeout = cfg.Handshake
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	start := time.Now()
	conns, errs := dialMany(ctx, cfg.Conns, cfg.Dialers, cfg.Offset, cfg.StopAfter, d.dial, cfg.Progress)
	return &Opened{Conns: conns, Held: len(conns), Ramp: time.Since(start), Errors: errs}, nil
}

// Echo sends one message of size bytes on every held connection and reads
// it back, 64 at a time, each within timeout; it returns how many came
// back and the failures by kind.
func (o *Opened) Echo(size int, timeout time.Duration) (int, map[string]int) {
	msg, _, err := echoFrame(size, true, true, false)
	if err != nil {
		return 0, map[string]int{err.Error(): 1}
	}
	return echoEach(o.Conns, msg, 1, 64, timeout)
}

// Close closes every held connection.
func (o *Opened) Close() { closeAll(o.Conns) }
