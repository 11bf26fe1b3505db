package loadtest

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// BroadcastConfig describes the broadcast scenario: Subscribers
// connections listen on a route that relays every message to every
// connection (wsmatrix's /broadcast), and one publisher sends Rate
// messages per second for Duration.
type BroadcastConfig struct {
	URL         string
	PID         int
	Subscribers int
	Rate        int // messages per second; default 10
	Size        int // bytes per message, at least 8 (a timestamp); default 64
	Duration    time.Duration
	Sources     int
	Progress    *atomic.Int64 // if set, counts deliveries
	// Stuck subscribers never read: their socket buffers fill and the
	// server's policy for slow members applies. They count for nothing
	// in the results; the others' latency shows whether they were held
	// back.
	Stuck int
}

// BroadcastResult is what the broadcast scenario measured.
type BroadcastResult struct {
	Subscribers     int            `json:"subscribers"`
	Stuck           int            `json:"stuck,omitempty"`
	Sent            int64          `json:"sent"`
	Delivered       int64          `json:"delivered"`
	DeliveryRatio   float64        `json:"delivery_ratio"` // delivered / (sent × subscribers)
	PerSecond       float64        `json:"deliveries_per_second"`
	ServerCPUPerDel float64        `json:"server_cpu_us_per_delivery"`
	ClientCPU       time.Duration  `json:"client_cpu_ns"`
	Latency         Latency        `json:"delivery_latency"` // publish to receipt
	Errors          map[string]int `json:"errors,omitempty"`
}

// Broadcast runs the broadcast scenario.
func Broadcast(ctx context.Context, cfg BroadcastConfig) (BroadcastResult, error) {
	if err := checkBounds("broadcast", cfg.Subscribers+1, cfg.Duration); err != nil {
		return BroadcastResult{}, err
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 10
	}
	if cfg.Size == 0 {
		cfg.Size = 64
	}
	cfg.Size = max(cfg.Size, 8)
	d, err := newDialer(cfg.URL, max(cfg.Sources, 4))
	if err != nil {
		return BroadcastResult{}, err
	}
	conns, err := d.dialAll(ctx, cfg.Subscribers+1) // the last one publishes
	defer closeAll(conns)
	if err != nil {
		return BroadcastResult{}, fmt.Errorf("loadtest: broadcast: %w", err)
	}
	time.Sleep(200 * time.Millisecond) // let every handler register its connection

	before, err := ReadProc(cfg.PID)
	if err != nil {
		return BroadcastResult{}, err
	}
	self0, _ := ReadProc(selfPID())
	var (
		delivered atomic.Int64
		sent      int64
		mu        sync.Mutex
		hist      = newHist()
		errs      = map[string]int{}
		wg        sync.WaitGroup
	)
	end := time.Now().Add(cfg.Duration)
	grace := 2 * time.Second
	for i, c := range conns {
		publisher := i == len(conns)-1
		if i < cfg.Stuck && !publisher {
			continue
		}
		wg.Go(func() {
			h := newHist()
			var ferr error
			c.SetReadDeadline(end.Add(grace))
			for {
				p, _, err := wsutil.ReadServerData(c)
				if err != nil {
					if time.Now().Before(end) {
						ferr = err
					}
					break
				}
				if publisher || len(p) < 8 {
					continue
				}
				ts := int64(binary.BigEndian.Uint64(p))
				h.RecordValue(max(time.Now().UnixNano()-ts, 0) / int64(time.Microsecond))
				delivered.Add(1)
				if cfg.Progress != nil {
					cfg.Progress.Add(1)
				}
			}
			mu.Lock()
			hist.Merge(h)
			if ferr != nil {
				errs[errKind(ferr)]++
			}
			mu.Unlock()
		})
	}
	pub := conns[len(conns)-1]
	msg := make([]byte, cfg.Size)
	tick := time.NewTicker(time.Second / time.Duration(cfg.Rate))
	start := time.Now()
	for now := range tick.C {
		if now.After(end) || ctx.Err() != nil {
			break
		}
		binary.BigEndian.PutUint64(msg, uint64(time.Now().UnixNano()))
		pub.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if err := wsutil.WriteClientMessage(pub, ws.OpBinary, msg); err != nil {
			errs["publish: "+errKind(err)]++
			break
		}
		sent++
	}
	tick.Stop()
	elapsed := time.Since(start)
	wg.Wait() // readers stop at end + grace
	after, err := ReadProc(cfg.PID)
	if err != nil {
		return BroadcastResult{}, err
	}
	self1, _ := ReadProc(selfPID())
	r := BroadcastResult{Subscribers: cfg.Subscribers, Stuck: cfg.Stuck, Sent: sent, Delivered: delivered.Load(), Errors: errs,
		ClientCPU: self1.CPU - self0.CPU, Latency: latencyOf(hist)}
	if sent > 0 {
		r.DeliveryRatio = float64(r.Delivered) / float64(sent*int64(cfg.Subscribers-min(cfg.Stuck, cfg.Subscribers)))
		r.PerSecond = float64(r.Delivered) / elapsed.Seconds()
	}
	if r.Delivered > 0 {
		r.ServerCPUPerDel = float64((after.CPU-before.CPU)/time.Microsecond) / float64(r.Delivered)
	}
	return r, nil
}
