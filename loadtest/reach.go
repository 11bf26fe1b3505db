package loadtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gobwas/ws/wsutil"
)

// HoldConfig describes one client process of the reach scenario: it opens
// Conns connections to URL (a room: every connection gets what is sent to
// it), calls Ready, then waits until each connection got one message or
// Timeout passes.
type HoldConfig struct {
	URL     string
	Conns   int
	Sources int           // loopback source addresses; default 8
	Offset  int           // index of this process's first connection, for source ports
	Timeout time.Duration // after Ready; default 30 s
	Ready   func(opened int, errs map[string]int)
}

// HoldResult is what one holding process saw.
type HoldResult struct {
	Opened   int            `json:"opened"`
	Received int            `json:"received"`
	Latency  Latency        `json:"latency"` // from the send time in the message's first 8 bytes
	Errors   map[string]int `json:"errors,omitempty"`
}

// Hold runs one client process of the reach scenario.
func Hold(ctx context.Context, cfg HoldConfig) (HoldResult, error) {
	if cfg.Conns <= 0 || cfg.Conns > maxFiles-100 {
		return HoldResult{}, fmt.Errorf("loadtest: hold: %d connections; one process may open about %d files", cfg.Conns, maxFiles)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	d, err := newDialer(cfg.URL, max(cfg.Sources, 8))
	if err != nil {
		return HoldResult{}, err
	}
	conns, errs := dialMany(ctx, cfg.Conns, 64, cfg.Offset, 0, d.dial, nil)
	var mu sync.Mutex
	defer closeAll(conns)
	if cfg.Ready != nil {
		cfg.Ready(len(conns), errs)
	}
	var received int
	hist := newHist()
	deadline := time.Now().Add(cfg.Timeout)
	eachConn(conns, 256, func(c net.Conn) {
		c.SetReadDeadline(deadline)
		p, err := wsutil.ReadServerText(c)
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			errs["read: "+errKind(err)]++
			return
		}
		received++
		// The message starts with its send time in Unix nanoseconds.
		stamp, _, _ := strings.Cut(string(p), " ")
		if ts, err := strconv.ParseInt(stamp, 10, 64); err == nil {
			hist.RecordValue(max(now.UnixNano()-ts, 0) / int64(time.Microsecond))
		}
	})
	return HoldResult{Opened: len(conns), Received: received, Latency: latencyOf(hist), Errors: errs}, nil
}

// TreeRSS is the resident memory of pid and of its children, for servers
// of several processes (wsmatrix serve --workers).
func TreeRSS(pid int) (int64, error) {
	p, err := ReadProc(pid)
	if err != nil {
		return 0, err
	}
	total := p.RSS
	// Each thread lists the children it forked.
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	var kids []string
	for _, t := range tasks {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, t.Name()))
		kids = append(kids, strings.Fields(string(b))...)
	}
	for _, f := range kids {
		if c, err := strconv.Atoi(f); err == nil {
			if cp, err := ReadProc(c); err == nil {
				total += cp.RSS
			}
		}
	}
	return total, nil
}
