package loadtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// SocketIOConfig describes the Socket.IO scenarios: Conns clients connect
// over WebSocket (Engine.IO v4, Socket.IO v5, namespace "/") to URL, a
// server's Engine.IO endpoint (ws://HOST:PORT/socket.io/). With Duration
// zero they are held idle and the server's memory is read; otherwise each
// client emits "echo" with a Size-byte string and an acknowledgement
// request, waits for the acknowledgement, and again, for Duration.
type SocketIOConfig struct {
	URL      string
	PID      int
	Conns    int
	Size     int
	Duration time.Duration
	Settle   time.Duration // idle: wait after connecting before reading memory; default 2 s
	Progress *atomic.Int64
}

// SocketIOResult is what the Socket.IO scenarios measured.
type SocketIOResult struct {
	Conns        int            `json:"conns"`
	RSSBefore    int64          `json:"rss_before_bytes"`
	RSSAfter     int64          `json:"rss_after_bytes"`
	BytesPerConn float64        `json:"bytes_per_conn,omitempty"`
	Acked        int64          `json:"acked,omitempty"`
	PerSecond    float64        `json:"acked_per_second,omitempty"`
	ServerCPU    time.Duration  `json:"server_cpu_ns,omitempty"`
	PerCPUSecond float64        `json:"acked_per_server_cpu_second,omitempty"`
	Latency      Latency        `json:"ack_latency"`
	Errors       map[string]int `json:"errors,omitempty"`
}

// sioConnect opens one Socket.IO client over WebSocket: the open packet,
// then a CONNECT to "/" and its answer.
func sioConnect(ctx context.Context, d *dialer, i int) (net.Conn, error) {
	c, err := d.dial(ctx, i)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fail := func(err error) (net.Conn, error) { c.Close(); return nil, err }
	p, err := wsutil.ReadServerText(c)
	if err != nil {
		return fail(err)
	}
	if len(p) == 0 || p[0] != '0' {
		return fail(fmt.Errorf("socket.io: open packet expected, got %.40q", p))
	}
	if err := wsutil.WriteClientText(c, []byte("40")); err != nil {
		return fail(err)
	}
	for {
		p, err := wsutil.ReadServerText(c)
		if err != nil {
			return fail(err)
		}
		if bytes.HasPrefix(p, []byte("40")) {
			break
		}
		if bytes.HasPrefix(p, []byte("44")) {
			return fail(fmt.Errorf("socket.io: connect refused: %s", p[2:]))
		}
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// SocketIO runs the idle (Duration 0) or the acknowledged-echo scenario.
func SocketIO(ctx context.Context, cfg SocketIOConfig) (SocketIOResult, error) {
	if cfg.Conns <= 0 || cfg.Conns > maxFiles-100 {
		return SocketIOResult{}, fmt.Errorf("loadtest: socket.io: %d connections; one process may open about %d files", cfg.Conns, maxFiles)
	}
	if !strings.Contains(cfg.URL, "?") {
		cfg.URL += "?EIO=4&transport=websocket"
	}
	if cfg.Settle <= 0 {
		cfg.Settle = 2 * time.Second
	}
	d, err := newDialer(cfg.URL, 4)
	if err != nil {
		return SocketIOResult{}, err
	}
	before, err := ReadProc(cfg.PID)
	if err != nil {
		return SocketIOResult{}, err
	}
	conns, errs := dialMany(ctx, cfg.Conns, 64, 0, 0, func(ctx context.Context, i int) (net.Conn, error) { return sioConnect(ctx, d, i) }, nil)
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	defer closeAll(conns)
	r := SocketIOResult{Conns: len(conns), RSSBefore: before.RSS, Errors: errs}
	if cfg.Duration <= 0 {
		select {
		case <-time.After(cfg.Settle):
		case <-ctx.Done():
		}
		after, err := ReadProc(cfg.PID)
		if err != nil {
			return r, err
		}
		r.RSSAfter = after.RSS
		if len(conns) > 0 {
			r.BytesPerConn = float64(after.RSS-before.RSS) / float64(len(conns))
		}
		return r, nil
	}

	payload := strings.Repeat("x", max(cfg.Size, 1))
	cpu0, err := ReadProc(cfg.PID)
	if err != nil {
		return r, err
	}
	var acked atomic.Int64
	hist := newHist()
	start := time.Now()
	stop := start.Add(cfg.Duration)
	for _, c := range conns {
		wg.Go(func() {
			h := newHist()
			var n int64
			var ferr error
			for id := 0; time.Now().Before(stop) && ctx.Err() == nil; id++ {
				c.SetDeadline(time.Now().Add(10 * time.Second))
				prefix := "43" + strconv.Itoa(id) + "["
				sent := time.Now()
				if ferr = wsutil.WriteClientText(c, []byte("42"+strconv.Itoa(id)+`["echo","`+payload+`"]`)); ferr != nil {
					break
				}
				for ferr == nil {
					var p []byte
					p, ferr = wsutil.ReadServerText(c)
					switch {
					case ferr != nil:
					case len(p) == 1 && p[0] == '2': // the server's ping
						ferr = wsutil.WriteClientMessage(c, ws.OpText, []byte("3"))
						continue
					case strings.HasPrefix(string(p), prefix):
						if len(p) != len(prefix)+len(payload)+3 {
							ferr = errors.New("socket.io: acknowledgement of another length")
						}
					default:
						continue // anything else the server sends
					}
					break
				}
				if ferr != nil {
					break
				}
				h.RecordValue(int64(time.Since(sent) / time.Microsecond))
				n++
				if cfg.Progress != nil {
					cfg.Progress.Add(1)
				}
			}
			acked.Add(n)
			mu.Lock()
			hist.Merge(h)
			if ferr != nil && time.Now().Before(stop) {
				errs[errKind(ferr)]++
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu1, err := ReadProc(cfg.PID)
	if err != nil {
		return r, err
	}
	r.RSSAfter = cpu1.RSS
	r.Acked = acked.Load()
	r.PerSecond = float64(r.Acked) / elapsed.Seconds()
	r.ServerCPU = cpu1.CPU - cpu0.CPU
	if r.ServerCPU > 0 {
		r.PerCPUSecond = float64(r.Acked) / r.ServerCPU.Seconds()
	}
	r.Latency = latencyOf(hist)
	return r, nil
}
