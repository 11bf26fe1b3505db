package loadtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/klauspost/compress/flate"
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
	JSON     bool          // send JSON-like text, which compresses as chat messages do
	Compress bool          // offer permessage-deflate and send the message compressed
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
	WireIn          float64        `json:"wire_bytes_per_echo"` // frame bytes the server sent per echo
	Compressed      bool           `json:"compressed"`          // the server compressed its echoes
	Latency         Latency        `json:"round_trip_latency"`
	Errors          map[string]int `json:"errors,omitempty"`
}

// Echo runs the echo scenario and reads the server's CPU time over it.
func Echo(ctx context.Context, cfg EchoConfig) (EchoResult, error) {
	if err := checkBounds("echo", cfg.Conns, cfg.Duration); err != nil {
		return EchoResult{}, err
	}
	cfg.InFlight = max(cfg.InFlight, 1)
	if cfg.InFlight > maxInFlight {
		return EchoResult{}, fmt.Errorf("loadtest: echo: %d messages in flight per connection; at most %d", cfg.InFlight, maxInFlight)
	}
	d, err := newDialer(cfg.URL, max(cfg.Sources, 4))
	if err != nil {
		return EchoResult{}, err
	}
	d.compress = cfg.Compress
	conns, err := d.dialAll(ctx, cfg.Conns)
	defer closeAll(conns)
	if err != nil {
		return EchoResult{}, fmt.Errorf("loadtest: echo: %w", err)
	}
	msg, payload, err := echoFrame(cfg.Size, cfg.Text, cfg.JSON, cfg.Compress)
	if err != nil {
		return EchoResult{}, err
	}
	var wire, compressed atomic.Int64

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
					if _, err := c.Write(msg); err != nil {
						ferr = err
						break
					}
				}
				for i := 0; i < len(sent) && ferr == nil; i++ {
					f, err := readServerFrame(c, &wire)
					switch {
					case err != nil:
						ferr = err
					case !f.Header.Rsv1() && len(f.Payload) != len(payload):
						ferr = errors.New("echo of a different length")
					default:
						if f.Header.Rsv1() {
							// Not inflated (the client would spend more than the
							// server): its bytes are counted on the wire.
							compressed.Add(1)
						}
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
		r.WireIn = float64(wire.Load()) / float64(r.Messages)
		r.Compressed = compressed.Load() > 0
	}
	return r, nil
}

// echoFrame is the one frame every connection sends, masked and, with
// compress, compressed once: the client spends nothing per message on it.
// It returns the frame and its payload before compression.
func echoFrame(size int, text, json, compress bool) (msg, payload []byte, err error) {
	op := ws.OpBinary
	payload = bytes.Repeat([]byte{'x'}, size)
	if text || json {
		op = ws.OpText
	}
	if json {
		payload = JSONText(size)
	}
	frame := ws.NewFrame(op, true, payload)
	if compress {
		frame = ws.NewFrame(op, true, compressPayload(payload))
		frame.Header.Rsv = ws.Rsv(true, false, false)
	}
	frame = ws.MaskFrameInPlace(frame)
	msg, err = ws.CompileFrame(frame)
	return msg, payload, err
}

// readServerFrame reads one data message (answering nothing: pings from
// the server are skipped), counting its bytes on the wire. A fragmented
// message comes back as one frame: the first frame's header (RSV1 says
// whether it was compressed) with every fragment's payload.
func readServerFrame(c net.Conn, wire *atomic.Int64) (ws.Frame, error) {
	var msg ws.Frame
	started := false
	for {
		f, err := ws.ReadFrame(c)
		if err != nil {
			return f, err
		}
		if f.Header.OpCode.IsControl() {
			if f.Header.OpCode == ws.OpClose {
				return f, errors.New("closed by the server")
			}
			continue
		}
		wire.Add(int64(f.Header.Length) + int64(headerLen(f.Header.Length)))
		if !started {
			msg, started = f, true
		} else {
			msg.Payload = append(msg.Payload, f.Payload...)
		}
		if f.Header.Fin {
			return msg, nil
		}
	}
}

func headerLen(n int64) int {
	switch {
	case n < 126:
		return 2
	case n <= 0xffff:
		return 4
	}
	return 10
}

// JSONText is n bytes of JSON-like text: chat events with varying ids,
// names and words, which compress about as real ones do.
func JSONText(n int) []byte {
	words := strings.Fields("the quick brown fox jumps over lazy dog hello world message room user joined left typing online away status update ping pong")
	var b bytes.Buffer
	seed := uint32(2166136261)
	next := func() uint32 { seed ^= seed << 13; seed ^= seed >> 17; seed ^= seed << 5; return seed }
	for b.Len() < n {
		fmt.Fprintf(&b, `{"id":%d,"room":"room-%d","user":"user-%d","text":"%s %s %s","ts":%d},`,
			next()%100000, next()%50, next()%1000, words[next()%uint32(len(words))], words[next()%uint32(len(words))], words[next()%uint32(len(words))], 1732000000+next()%100000)
	}
	return b.Bytes()[:n]
}

// compressPayload compresses p as one permessage-deflate message.
func compressPayload(p []byte) []byte {
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.BestSpeed)
	w.Write(p)
	w.Flush()
	return b.Bytes()[:b.Len()-4]
}
