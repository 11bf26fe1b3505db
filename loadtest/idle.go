package loadtest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"
)

// IdleConfig describes the idle scenario: ramp to Conns connections, hold
// them without traffic, and read the server's memory.
type IdleConfig struct {
	URL      string
	PID      int           // the server's process, for /proc
	Conns    int           // connections to open
	Sources  int           // loopback source addresses (127.0.0.1..); default 4
	Compress bool          // offer permessage-deflate
	Header   http.Header   // more handshake headers (BrowserHeaders: what a browser sends)
	Dialers  int           // handshakes in flight at once; default 64
	Settle   time.Duration // wait after the ramp before reading memory; default 2 s
	Timeout  time.Duration // bound on the whole ramp; default 2 min
	Progress *atomic.Int64 // if set, counts connections opened
	// EchoSize is the JSON-like text message each connection then sends
	// once and reads back (default 1 KiB; negative: no echo), after which
	// memory is read again, and once more after Rest (default 5 s).
	EchoSize int
	// EchoBurst is how many such messages each connection writes at once,
	// in one write, before it reads the answers (default 1): a burst of
	// pipelined messages, as a client sends when it catches up.
	EchoBurst int
	Rest      time.Duration
}

// IdleResult is what the idle scenario measured.
type IdleResult struct {
	Conns        int            `json:"conns"` // connections open at the reading
	RSSBefore    int64          `json:"rss_before_bytes"`
	RSSAfter     int64          `json:"rss_after_bytes"`
	BytesPerConn float64        `json:"bytes_per_conn"`
	Ramp         time.Duration  `json:"ramp_ns"`
	Errors       map[string]int `json:"errors,omitempty"`

	// After every connection sent EchoBurst messages and read their
	// echoes, and after Rest more without traffic.
	EchoBurst          int     `json:"echo_burst,omitempty"`
	Echoed             int     `json:"echoed,omitempty"`
	RSSAfterEcho       int64   `json:"rss_after_echo_bytes,omitempty"`
	BytesPerConnEcho   float64 `json:"bytes_per_conn_after_echo,omitempty"`
	RSSAfterRest       int64   `json:"rss_after_rest_bytes,omitempty"`
	BytesPerConnRested float64 `json:"bytes_per_conn_after_rest,omitempty"`
}

// maxInFlight bounds the messages a connection sends before it reads the
// answers (Echo's InFlight, Idle's EchoBurst): the client writes them all
// first, and a server that pushes back would stall it.
const maxInFlight = 1024

// maxFiles is about what one process may open here.
const maxFiles = 19900

// MaxConnsPerProcess is the most connections one load client process
// opens: its files, less a few for itself.
const MaxConnsPerProcess = maxFiles - 100

// Idle runs the idle scenario. The connections are held by the client
// without any goroutine of its own, and closed before it returns.
func Idle(ctx context.Context, cfg IdleConfig) (IdleResult, error) {
	if cfg.Conns <= 0 || cfg.Conns > maxFiles-100 {
		return IdleResult{}, fmt.Errorf("loadtest: idle: %d connections; one process may open about %d files", cfg.Conns, maxFiles)
	}
	cfg.Sources = max(cfg.Sources, 4)
	if cfg.Dialers <= 0 {
		cfg.Dialers = 64
	}
	if cfg.Settle <= 0 {
		cfg.Settle = 2 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Minute
	}
	if cfg.EchoSize == 0 {
		cfg.EchoSize = 1024
	}
	cfg.EchoBurst = max(cfg.EchoBurst, 1)
	if cfg.EchoBurst > maxInFlight {
		return IdleResult{}, fmt.Errorf("loadtest: idle: %d messages at once per connection; at most %d", cfg.EchoBurst, maxInFlight)
	}
	if cfg.Rest <= 0 {
		cfg.Rest = 5 * time.Second
	}
	d, err := newDialer(cfg.URL, cfg.Sources)
	if err != nil {
		return IdleResult{}, err
	}
	d.compress = cfg.Compress
	d.withHeader(cfg.Header)
	before, err := ReadProc(cfg.PID)
	if err != nil {
		return IdleResult{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()

	start := time.Now()
	conns, errs := dialMany(ctx, cfg.Conns, cfg.Dialers, 0, 0, d.dial, cfg.Progress)
	ramp := time.Since(start)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	select {
	case <-time.After(cfg.Settle):
	case <-ctx.Done():
	}
	after, err := ReadProc(cfg.PID)
	if err != nil {
		return IdleResult{}, err
	}
	r := IdleResult{Conns: len(conns), RSSBefore: before.RSS, RSSAfter: after.RSS, Ramp: ramp, Errors: errs}
	if len(conns) == 0 {
		return r, nil
	}
	r.BytesPerConn = float64(after.RSS-before.RSS) / float64(len(conns))
	if cfg.EchoSize < 0 || ctx.Err() != nil {
		return r, nil
	}
	msg, _, err := echoFrame(cfg.EchoSize, true, true, cfg.Compress)
	if err != nil {
		return r, err
	}
	var echoErrs map[string]int
	r.EchoBurst = cfg.EchoBurst
	r.Echoed, echoErrs = echoEach(conns, bytes.Repeat(msg, cfg.EchoBurst), cfg.EchoBurst, cfg.Dialers, 10*time.Second)
	for k, n := range echoErrs {
		r.Errors[k] += n
	}
	if p, err := ReadProc(cfg.PID); err == nil {
		r.RSSAfterEcho = p.RSS
		r.BytesPerConnEcho = float64(p.RSS-before.RSS) / float64(len(conns))
	}
	select {
	case <-time.After(cfg.Rest):
	case <-ctx.Done():
		return r, nil
	}
	if p, err := ReadProc(cfg.PID); err == nil {
		r.RSSAfterRest = p.RSS
		r.BytesPerConnRested = float64(p.RSS-before.RSS) / float64(len(conns))
	}
	return r, nil
}
