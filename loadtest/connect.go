package loadtest

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// ConnectConfig describes the connect scenario: Workers clients open a
// connection, complete the handshake and close it, again and again, for
// Duration or until Count handshakes were tried.
type ConnectConfig struct {
	URL      string
	PID      int
	Workers  int           // default 50
	Duration time.Duration // bound in time; at most 10 min
	Count    int           // bound in handshakes; default 100,000
	Sources  int           // loopback source addresses; default 1000 (a port closed by the server waits in TIME_WAIT for 60 s)
	Progress *atomic.Int64 // if set, counts handshakes tried
}

// ConnectResult is what the connect scenario measured.
type ConnectResult struct {
	Tried         int64          `json:"tried"`
	Succeeded     int64          `json:"succeeded"`
	PerSecond     float64        `json:"handshakes_per_second"`
	SuccessRatio  float64        `json:"success_ratio"`
	Duration      time.Duration  `json:"duration_ns"`
	ServerCPUPerH float64        `json:"server_cpu_us_per_handshake"`
	ClientCPU     time.Duration  `json:"client_cpu_ns"`
	Latency       Latency        `json:"handshake_latency"`
	Errors        map[string]int `json:"errors,omitempty"`
}

// Connect runs the connect scenario.
func Connect(ctx context.Context, cfg ConnectConfig) (ConnectResult, error) {
	if cfg.Workers <= 0 {
		cfg.Workers = 50
	}
	if err := checkBounds("connect", cfg.Workers, cfg.Duration); err != nil {
		return ConnectResult{}, err
	}
	if cfg.Count <= 0 {
		cfg.Count = 100000
	}
	if cfg.Sources <= 0 {
		cfg.Sources = 1000
	}
	d, err := newDialer(cfg.URL, cfg.Sources)
	if err != nil {
		return ConnectResult{}, err
	}
	before, err := ReadProc(cfg.PID)
	if err != nil {
		return ConnectResult{}, err
	}
	self0, _ := ReadProc(selfPID())
	var (
		tried, ok atomic.Int64
		mu        sync.Mutex
		hist      = newHist()
		errs      = map[string]int{}
		wg        sync.WaitGroup
	)
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	deadline, _ := ctx.Deadline()
	start := time.Now()
	for range cfg.Workers {
		wg.Go(func() {
			h := newHist()
			local := map[string]int{}
			for ctx.Err() == nil {
				i := tried.Add(1)
				if i > int64(cfg.Count) {
					tried.Add(-1)
					break
				}
				if cfg.Progress != nil {
					cfg.Progress.Add(1)
				}
				t0 := time.Now()
				c, err := d.dial(ctx, int(i))
				if err != nil {
					if time.Until(deadline) > 50*time.Millisecond {
						local[errKind(err)]++
					} else {
						tried.Add(-1) // cut by the end of the run, not a failure
					}
					continue
				}
				h.RecordValue(int64(time.Since(t0) / time.Microsecond))
				ok.Add(1)
				closeHandshake(c)
			}
			mu.Lock()
			hist.Merge(h)
			for k, v := range local {
				errs[k] += v
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	after, err := ReadProc(cfg.PID)
	if err != nil {
		return ConnectResult{}, err
	}
	self1, _ := ReadProc(selfPID())
	r := ConnectResult{Tried: tried.Load(), Succeeded: ok.Load(), Duration: elapsed, Errors: errs,
		ClientCPU: self1.CPU - self0.CPU, Latency: latencyOf(hist)}
	if r.Tried > 0 {
		r.SuccessRatio = float64(r.Succeeded) / float64(r.Tried)
	}
	if r.Succeeded > 0 {
		r.PerSecond = float64(r.Succeeded) / elapsed.Seconds()
		r.ServerCPUPerH = float64((after.CPU-before.CPU)/time.Microsecond) / float64(r.Succeeded)
	}
	return r, nil
}

// closeHandshake closes c as a client should: a close frame, then wait
// for the server to close TCP first, so that the TIME_WAIT state stays on
// the server's side and thousands of handshakes do not use up the client's
// ports.
func closeHandshake(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if wsutil.WriteClientMessage(c, ws.OpClose, ws.NewCloseFrameBody(ws.StatusNormalClosure, "")) != nil {
		return
	}
	io.Copy(io.Discard, c)
}

// Latency is a latency distribution, in microseconds.
type Latency struct {
	P50  int64 `json:"p50_us"`
	P90  int64 `json:"p90_us"`
	P99  int64 `json:"p99_us"`
	P999 int64 `json:"p999_us"`
	Max  int64 `json:"max_us"`
}

func newHist() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, int64(60*time.Second/time.Microsecond), 3)
}

func latencyOf(h *hdrhistogram.Histogram) Latency {
	return Latency{P50: h.ValueAtQuantile(50), P90: h.ValueAtQuantile(90), P99: h.ValueAtQuantile(99),
		P999: h.ValueAtQuantile(99.9), Max: h.Max()}
}
