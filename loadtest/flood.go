package loadtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
)

// FloodConfig describes the flood scenario: one client sends messages of
// Size bytes as fast as the server takes them and never reads a reply,
// the way a misbehaving or stuck client does, while the server's memory
// is read. A bounded server stops taking bytes (TCP pushes back) or
// closes the connection; an unbounded one buffers what it is sent.
type FloodConfig struct {
	URL      string
	PID      int           // the server's process, for /proc
	Size     int           // bytes per message; default 8 MiB
	Total    int64         // stop after this many bytes; default 512 MiB
	Duration time.Duration // stop after this long; default 20 s
	Stall    time.Duration // stop once no byte was taken for this long; default 2 s
	Progress *atomic.Int64 // if set, counts bytes written
}

// FloodResult is what the flood scenario measured.
type FloodResult struct {
	Size      int           `json:"size"`
	Written   int64         `json:"written_bytes"` // what the server's socket took
	RSSBefore int64         `json:"rss_before_bytes"`
	RSSPeak   int64         `json:"rss_peak_bytes"`
	Growth    int64         `json:"rss_growth_bytes"` // RSSPeak - RSSBefore
	Ended     string        `json:"ended"`            // stalled, closed, total or duration
	Elapsed   time.Duration `json:"elapsed_ns"`
}

// Flood runs the flood scenario.
func Flood(ctx context.Context, cfg FloodConfig) (FloodResult, error) {
	if cfg.Size <= 0 {
		cfg.Size = 8 << 20
	}
	if cfg.Total <= 0 {
		cfg.Total = 512 << 20
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 20 * time.Second
	}
	if cfg.Stall <= 0 {
		cfg.Stall = 2 * time.Second
	}
	if err := checkBounds("flood", 1, cfg.Duration); err != nil {
		return FloodResult{}, err
	}
	if cfg.Size > 1<<30 || cfg.Total > 8<<30 {
		return FloodResult{}, fmt.Errorf("loadtest: flood: %d-byte messages, %d bytes in all: too much", cfg.Size, cfg.Total)
	}
	d, err := newDialer(cfg.URL, 1)
	if err != nil {
		return FloodResult{}, err
	}
	before, err := ReadProc(cfg.PID)
	if err != nil {
		return FloodResult{}, err
	}
	c, err := d.dial(ctx, 0)
	if err != nil {
		return FloodResult{}, fmt.Errorf("dial: %w", err)
	}
	defer c.Close()
	// One masked binary frame, written again and again.
	payload := make([]byte, cfg.Size)
	frame := ws.NewFrame(ws.OpBinary, true, payload)
	frame = ws.MaskFrameInPlace(frame)
	msg, err := ws.CompileFrame(frame)
	if err != nil {
		return FloodResult{}, err
	}

	res := FloodResult{Size: cfg.Size, RSSBefore: before.RSS, RSSPeak: before.RSS}
	start := time.Now()
	lastProgress := start
	off := 0
	for {
		if p, err := ReadProc(cfg.PID); err == nil {
			res.RSSPeak = max(res.RSSPeak, p.RSS)
		}
		switch {
		case res.Written >= cfg.Total:
			res.Ended = "total"
		case time.Since(start) > cfg.Duration:
			res.Ended = "duration"
		case time.Since(lastProgress) > cfg.Stall:
			res.Ended = "stalled"
		case ctx.Err() != nil:
			return res, ctx.Err()
		}
		if res.Ended != "" {
			break
		}
		c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
		n, err := c.Write(msg[off:min(off+1<<20, len(msg))])
		res.Written += int64(n)
		off = (off + n) % len(msg)
		if n > 0 {
			lastProgress = time.Now()
			if cfg.Progress != nil {
				cfg.Progress.Add(int64(n))
			}
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			res.Ended = "closed"
			break
		}
	}
	res.Elapsed = time.Since(start)
	res.Growth = res.RSSPeak - res.RSSBefore
	return res, nil
}
