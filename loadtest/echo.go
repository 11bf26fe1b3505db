package loadtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// EchoConfig describes the echo scenario: Conns connections, each with
// InFlight messages of Size bytes in flight (written back to back, then
// read back), for Duration.
type EchoConfig struct {
	URL      string
	PID      int
	Conns    int
	Size     int
	Duration time.Duration
	Sources  int
	InFlight int           // messages in flight per connection; default 1
	Text     bool          // send text (ASCII) instead of binary
	Progress *atomic.Int64 // if set, counts echoes
}

// EchoResult is what the echo scenario measured.
type EchoResult struct {
	Conns           int            `json:"conns"`
	Size            int            `json:"size"`
	InFlight        int            `json:"in_flight"`
	Messages        int64          `json:"messages"`
	Duration        time.Duration  `json:"duration_ns"`
	PerSecond       float64        `json:"messages_per_second"`
	ServerCPU       time.Duration  `json:"server_cpu_ns"`
	ServerCPUPerMsg float64        `json:"server_cpu_us_per_message"`
	ClientCPU       time.Duration  `json:"client_cpu_ns"`
	Latency         Latency        `json:"round_trip_latency"`
	Errors          map[string]int `json:"errors,omitempty"`
}

// Echo runs the echo scenario and reads the server's CPU time over it.
func Echo(ctx context.Context, cfg EchoConfig) (EchoResult, error) {
	if err := checkBounds("echo", cfg.Conns, cfg.Duration); err != nil {
		return EchoResult{}, err
	}
	cfg.InFlight = max(cfg.InFlight, 1)
	if cfg.InFlight > 1024 {
		return EchoResult{}, fmt.Errorf("loadtest: echo: %d messages in flight per connection; at most 1024", cfg.InFlight)
	}
	d, err := newDialer(cfg.URL, max(cfg.Sources, 4))
	if err != nil {
		return EchoResult{}, err
	}
	conns, err := d.dialAll(ctx, cfg.Conns)
	defer closeAll(conns)
	if err != nil {
		return EchoResult{}, fmt.Errorf("loadtest: echo: %w", err)
	}
	op := ws.OpBinary
	payload := bytes.Repeat([]byte{'x'}, cfg.Size)
	if cfg.Text {
		op = ws.OpText
	}

	before, err := ReadProc(cfg.PID)
	if err != nil {
		return EchoResult{}, err
	}
	self0, _ := ReadProc(selfPID())
	var (
		total atomic.Int64
		wg    sync.WaitGroup
		mu    sync.Mutex
		hist  = newHist()
		errs  = map[string]int{}
	)
	start := time.Now()
	stop := start.Add(cfg.Duration)
	for _, c := range conns {
		wg.Go(func() {
			h := newHist()
			var n int64
			var ferr error
			sent := make([]time.Time, cfg.InFlight) // send times of the messages in flight
			for time.Now().Before(stop) && ctx.Err() == nil && ferr == nil {
				c.SetDeadline(time.Now().Add(10 * time.Second))
				for i := range sent {
					sent[i] = time.Now()
					if err := wsutil.WriteClientMessage(c, op, payload); err != nil {
						ferr = err
						break
					}
				}
				for i := 0; i < len(sent) && ferr == nil; i++ {
					p, _, err := wsutil.ReadServerData(c)
					switch {
					case err != nil:
						ferr = err
					case len(p) != len(payload):
						ferr = errors.New("echo of a different length")
					default:
						h.RecordValue(int64(time.Since(sent[i]) / time.Microsecond))
						n++
						if cfg.Progress != nil {
							cfg.Progress.Add(1)
						}
					}
				}
			}
			total.Add(n)
			mu.Lock()
			hist.Merge(h)
			if ferr != nil {
				errs[errKind(ferr)]++
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	after, err := ReadProc(cfg.PID)
	if err != nil {
		return EchoResult{}, err
	}
	self1, _ := ReadProc(selfPID())
	r := EchoResult{
		Conns: cfg.Conns, Size: cfg.Size, InFlight: cfg.InFlight, Messages: total.Load(), Duration: elapsed,
		ServerCPU: after.CPU - before.CPU, ClientCPU: self1.CPU - self0.CPU, Errors: errs,
		Latency: latencyOf(hist),
	}
	if r.Messages > 0 {
		r.PerSecond = float64(r.Messages) / elapsed.Seconds()
		r.ServerCPUPerMsg = float64(r.ServerCPU/time.Microsecond) / float64(r.Messages)
	}
	return r, nil
}
