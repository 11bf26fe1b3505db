package loadtest

import (
	"context"
	"fmt"
	"net"
	"sync"
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
	Conns []net.Conn `json:"-"`
	// Held counts the connections open when the ramp ended; FirstFailure
	// is how many were open when the first dial failed (-1: none failed).
	Held         int            `json:"held"`
	FirstFailure int            `json:"first_failure"`
	Ramp         time.Duration  `json:"ramp_ns"`
	Errors       map[string]int `json:"errors,omitempty"`
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
	var (
		mu      sync.Mutex
		o       = &Opened{FirstFailure: -1, Errors: map[string]int{}}
		inARow  int
		stopped = make(chan struct{})
		stop    sync.Once
		work    = make(chan int)
		wg      sync.WaitGroup
	)
	start := time.Now()
	for range cfg.Dialers {
		wg.Go(func() {
			for i := range work {
				c, err := d.dial(ctx, cfg.Offset+i)
				mu.Lock()
				if err != nil {
					o.Errors[errKind(err)]++
					if o.FirstFailure < 0 {
						o.FirstFailure = len(o.Conns)
					}
					if inARow++; inARow >= cfg.StopAfter {
						stop.Do(func() { close(stopped) })
					}
				} else {
					inARow = 0
					o.Conns = append(o.Conns, c)
					if cfg.Progress != nil {
						cfg.Progress.Add(1)
					}
				}
				mu.Unlock()
			}
		})
	}
feed:
	for i := 0; i < cfg.Conns; i++ {
		select {
		case work <- i:
		case <-stopped:
			break feed
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	o.Ramp = time.Since(start)
	o.Held = len(o.Conns)
	return o, nil
}

// Echo sends one message of size bytes on every held connection and reads
// it back, 64 at a time, each within timeout; it returns how many came
// back and the failures by kind.
func (o *Opened) Echo(size int, timeout time.Duration) (int, map[string]int) {
	msg, _, err := echoFrame(size, true, true, false)
	errs := map[string]int{}
	if err != nil {
		errs[err.Error()]++
		return 0, errs
	}
	var (
		mu     sync.Mutex
		wg     sync.WaitGroup
		echoed atomic.Int64
		next   = make(chan net.Conn)
	)
	for range 64 {
		wg.Go(func() {
			var wire atomic.Int64
			for c := range next {
				c.SetDeadline(time.Now().Add(timeout))
				_, err := c.Write(msg)
				if err == nil {
					_, err = readServerFrame(c, &wire)
				}
				c.SetDeadline(time.Time{})
				if err != nil {
					mu.Lock()
					errs["echo: "+errKind(err)]++
					mu.Unlock()
					continue
				}
				echoed.Add(1)
			}
		})
	}
	for _, c := range o.Conns {
		next <- c
	}
	close(next)
	wg.Wait()
	return int(echoed.Load()), errs
}

// Close closes every held connection.
func (o *Opened) Close() { closeAll(o.Conns) }
