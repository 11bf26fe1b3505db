package loadtest

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// HTTPConfig describes the http scenario: Conns keep-alive connections
// send small requests for Duration, driven by wrk (Debian's package), and
// the server's CPU per request is read from /proc.
type HTTPConfig struct {
	URL      string // ws:// or http://; requested as http://
	PID      int
	Conns    int
	Threads  int // wrk threads; default 1 (the client has one core)
	Duration time.Duration
	Progress *atomic.Int64
}

// HTTPResult is what the http scenario measured.
type HTTPResult struct {
	Requests        int64         `json:"requests"`
	PerSecond       float64       `json:"per_second"`
	ServerCPU       time.Duration `json:"server_cpu_ns"`
	ServerCPUPerReq float64       `json:"server_cpu_us_per_request"`
	LatencyP50      string        `json:"latency_p50"`
	LatencyP99      string        `json:"latency_p99"`
	Errors          string        `json:"errors,omitempty"` // wrk's socket errors and non-2xx answers
}

var (
	wrkRequests = regexp.MustCompile(`(\d+) requests in`)
	wrkRate     = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	wrkP50      = regexp.MustCompile(`(?m)^\s+50%\s+(\S+)`)
	wrkP99      = regexp.MustCompile(`(?m)^\s+99%\s+(\S+)`)
	wrkErrors   = regexp.MustCompile(`(?m)^\s+(Socket errors:.*|Non-2xx or 3xx responses:.*)$`)
)

// HTTP runs the http scenario.
func HTTP(ctx context.Context, cfg HTTPConfig) (HTTPResult, error) {
	if err := checkBounds("http", cfg.Conns, cfg.Duration); err != nil {
		return HTTPResult{}, err
	}
	if cfg.Threads <= 0 {
		cfg.Threads = 1
	}
	u := strings.Replace(strings.Replace(cfg.URL, "ws://", "http://", 1), "wss://", "https://", 1)
	if !strings.HasPrefix(u, "http://127.") {
		return HTTPResult{}, fmt.Errorf("loadtest: http: %s: load goes to loopback addresses only", cfg.URL)
	}
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		return HTTPResult{}, fmt.Errorf("loadtest: http: wrk is not installed (apt-get install wrk; .ci/setup does): %w", err)
	}
	before, err := ReadProc(cfg.PID)
	if err != nil {
		return HTTPResult{}, err
	}
	cmd := exec.CommandContext(ctx, wrk, "-t", strconv.Itoa(cfg.Threads), "-c", strconv.Itoa(cfg.Conns),
		"-d", strconv.Itoa(max(1, int(cfg.Duration.Seconds())))+"s", "--latency", u)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return HTTPResult{}, fmt.Errorf("loadtest: http: wrk: %v\n%s", err, out)
	}
	after, err := ReadProc(cfg.PID)
	if err != nil {
		return HTTPResult{}, err
	}
	return parseWrk(string(out), after.CPU-before.CPU, cfg.Progress)
}

// parseWrk reads wrk's report.
func parseWrk(out string, cpu time.Duration, progress *atomic.Int64) (HTTPResult, error) {
	m := wrkRequests.FindStringSubmatch(out)
	r := wrkRate.FindStringSubmatch(out)
	if m == nil || r == nil {
		return HTTPResult{}, fmt.Errorf("loadtest: http: cannot read wrk's report:\n%s", out)
	}
	res := HTTPResult{ServerCPU: cpu}
	res.Requests, _ = strconv.ParseInt(m[1], 10, 64)
	res.PerSecond, _ = strconv.ParseFloat(r[1], 64)
	if res.Requests > 0 {
		res.ServerCPUPerReq = float64(cpu/time.Nanosecond) / 1e3 / float64(res.Requests)
	}
	if p := wrkP50.FindStringSubmatch(out); p != nil {
		res.LatencyP50 = p[1]
	}
	if p := wrkP99.FindStringSubmatch(out); p != nil {
		res.LatencyP99 = p[1]
	}
	var errs []string
	for _, e := range wrkErrors.FindAllStringSubmatch(out, -1) {
		errs = append(errs, strings.TrimSpace(e[1]))
	}
	res.Errors = strings.Join(errs, "; ")
	if progress != nil {
		progress.Add(res.Requests)
	}
	return res, nil
}
