package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"html"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wsmatrix/wsmatrix/loadtest"
	"github.com/wsmatrix/wsmatrix/runtime"
)

const benchUsage = `Usage: wsmatrix bench [flags]

Runs a load scenario against runtimes it starts itself (and peer servers),
one after another, or against a server given by --url and --pid, and
prints a markdown table. Durations need a unit (10s, 500ms).

`

// bench runs a load scenario against runtimes it starts itself, one after
// another, or against a server given by --url and --pid.
func bench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var (
		scenario  = fs.String("scenario", "echo", "echo, idle, capacity, broadcast, connect, flood, http, socketio-idle or socketio-echo")
		runtimes  = fs.String("runtimes", "stdhttp,fasthttp,gnet", "runtimes to start and measure, in order")
		paths     = fs.String("paths", "", "handler routes to measure on each runtime (default: /echo,/echo-event; broadcast: /broadcast)")
		peers     = fs.String("peers", "", "also start and measure peer servers: name=/path/to/binary,... (each takes --addr, serves /echo, logs addr=)")
		rawURL    = fs.String("url", "", "measure an external server at this ws:// URL instead (needs --pid)")
		pid       = fs.Int("pid", 0, "process id of the external server")
		conns     = fs.Int("conns", 1000, "connections (broadcast: subscribers; connect: concurrent dialers, at most 200; capacity: the most to open)")
		clients   = fs.Int("clients", 0, "capacity: client processes opening the connections (default: one per 19,000; one process may open about 19,900 files here)")
		size      = fs.Int("size", 1024, "echo: message size in bytes")
		duration  = durationFlag(fs, "duration", 10*time.Second, "echo, broadcast, connect: `duration` of the load")
		serverCPU = fs.Int("server-cpu", 0, "CPU the started servers are pinned to, 0 by default (-1: not pinned)")
		clientCPU = fs.Int("client-cpu", 1, "CPU this load client is pinned to (-1: not pinned)")
		rate      = fs.Int("rate", 10, "broadcast: messages per second from the publisher")
		inflight  = fs.Int("inflight", 1, "echo: messages in flight per connection; idle: messages each connection sends at once for its echo")
		stuck     = fs.Int("stuck", 0, "broadcast: subscribers that never read (the others' latency shows whether they are held back)")
		compress  = fs.String("compression", "off", "echo, idle: permessage-deflate on the servers (serve --compression and the peers' --compression) and offered by the client: off, no-context-takeover or context-takeover")
		headers   = fs.String("headers", "none", "idle: handshake headers the client adds: none, or browser (those Chromium sends, with the target's own Origin and no cookies)")
		payload   = fs.String("payload", "bytes", "echo: bytes (one repeated byte) or json (JSON-like text that compresses as chat messages do)")
		jsonOut   = fs.String("json", "", "also write the results as JSON to this file")
		svgOut    = fs.String("svg", "", "also draw the compared figure as an SVG bar chart in this file")
		rounds    = fs.Int("rounds", 1, "measure every target this many times, every second round in reverse order, and report each target's median (echo: also with each figure divided by the client's CPU per echo first; on a shared machine one round's ratios can be off by a third; an external --url server is measured again without a restart)")
		baseline  = fs.String("baseline", "", "the target the ratios are against, in each round: a name as the table prints it (\"gorilla /echo\") or its first word if that is unique (default: the first target)")
	)
	if code, ok := parseFlags(fs, args, benchUsage, stdout, stderr); !ok {
		return code
	}
	fail := func(code int, format string, a ...any) int {
		printError(stderr, "bench", fmt.Errorf(format, a...))
		return code
	}
	if _, ok := scenarios[*scenario]; !ok {
		return fail(2, "--scenario %q: echo, idle, capacity, broadcast, connect, flood, http, socketio-idle or socketio-echo", *scenario)
	}
	if *rounds < 1 {
		return fail(2, "--rounds %d: at least 1", *rounds)
	}
	if *rawURL != "" {
		var also []string
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "runtimes" || f.Name == "paths" || f.Name == "peers" {
				also = append(also, "--"+f.Name)
			}
		})
		if len(also) > 0 {
			return fail(2, "--url measures one external server: %s would be ignored", strings.Join(also, ", "))
		}
	}
	if *rawURL == "" {
		for _, rt := range strings.Split(*runtimes, ",") {
			if err := checkRuntime(rt); err != nil {
				return fail(2, "%v", err)
			}
		}
	}
	if *paths == "" {
		*paths = "/echo,/echo-event"
		if *scenario == "http" {
			*paths = "/healthz"
		}
		if *scenario == "broadcast" {
			*paths = "/broadcast"
		}
		if strings.HasPrefix(*scenario, "socketio") {
			*paths = "/socket.io/"
		}
	}
	var header http.Header
	switch *headers {
	case "none":
	case "browser":
		header = loadtest.BrowserHeaders
	default:
		return fail(2, "--headers %q: none or browser", *headers)
	}
	if *clientCPU >= 0 {
		if err := pinSelf(*clientCPU); err != nil {
			return fail(1, "pin to CPU %d: %v", *clientCPU, err)
		}
	}
	// A target's name is known before it starts: --baseline names one.
	type target struct {
		name  string
		start func() (started, error)
	}
	var targets []target
	if *rawURL != "" {
		if *pid <= 0 {
			return fail(2, "--url needs --pid")
		}
		if err := unix.Kill(*pid, 0); err == unix.ESRCH { // EPERM: it exists
			return fail(2, "--pid %d: no such process", *pid)
		}
		targets = append(targets, target{*rawURL, func() (started, error) { return started{*rawURL, *pid, func() {}}, nil }})
	} else {
		for _, rt := range strings.Split(*runtimes, ",") {
			for _, p := range strings.Split(*paths, ",") {
				targets = append(targets, target{rt + " " + p, func() (started, error) {
					self, err := os.Executable()
					if err != nil {
						return started{}, err
					}
					return startChild(rt, []string{self, "serve", "--runtime=" + rt, "--addr=127.0.0.1:0", "--compression=" + *compress}, *serverCPU, p)
				}})
			}
		}
	}

	if *rawURL == "" && *peers != "" {
		for _, p := range strings.Split(*peers, ",") {
			name, bin, ok := strings.Cut(p, "=")
			if !ok {
				return fail(2, "--peers %q: want name=/path/to/binary", p)
			}
			path := "/echo"
			switch *scenario {
			case "broadcast":
				path = "/broadcast"
			case "http":
				path = "/healthz"
			case "socketio-idle", "socketio-echo":
				path = "/socket.io/"
			}
			targets = append(targets, target{name + " " + path, func() (started, error) {
				args := []string{bin, "--addr=127.0.0.1:0"}
				if *compress != "off" {
					args = append(args, "--compression="+*compress)
				}
				return startChild(name, args, *serverCPU, path)
			}})
		}
	}
	names := make([]string, len(targets))
	for i, t := range targets {
		names[i] = t.name
	}
	report := benchReport{Scenario: *scenario, Started: time.Now().UTC(), ServerCPU: *serverCPU, ClientCPU: *clientCPU,
		Conns: *conns, Size: *size, Duration: *duration, Rate: *rate, InFlight: *inflight}
	server := fmt.Sprintf("server CPU %d", *serverCPU)
	if *rawURL != "" {
		server = fmt.Sprintf("external server (pid %d, not pinned by bench)", *pid)
	}
	sc := scenarios[*scenario]
	headed := false // the table's head goes out with its first row: a run that fails first prints none
	head := func() {
		if !headed {
			headed = true
			fmt.Fprintf(stdout, "scenario %s, %d connections, %s, client CPU %d, %s\n\n", *scenario, *conns, server, *clientCPU, report.Started.Format(time.RFC3339))
			fmt.Fprintln(stdout, sc.header)
			fmt.Fprintln(stdout, "|"+strings.Repeat("---|", strings.Count(sc.header, "|")-1))
		}
	}
	// Interrupted, bench stops the server it started and keeps what it
	// measured (its servers also die with it: startChild).
	ctx, stopSignals := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	context.AfterFunc(ctx, stopSignals) // a second signal ends bench at once (its servers die with it)
	bi := 0
	if *baseline != "" {
		var err error
		if bi, err = findTarget(names, *baseline); err != nil {
			return fail(2, "--baseline: %v", err)
		}
	}
	writeJSON := func() error {
		if *jsonOut == "" {
			return nil
		}
		b, _ := json.MarshalIndent(report, "", "  ")
		return os.WriteFile(*jsonOut, append(b, '\n'), 0o644)
	}
	// failRun keeps what earlier targets and rounds measured.
	failRun := func(format string, a ...any) int {
		if err := writeJSON(); err != nil {
			printError(stderr, "bench", err)
		}
		return fail(1, format, a...)
	}
	report.Baseline, report.Rounds = names[bi], *rounds
	figures := make([][]float64, len(targets))  // per target, per round
	controls := make([][]float64, len(targets)) // sc.control's, likewise
	for r := range *rounds {
		order := make([]int, len(targets))
		for i := range order {
			order[i] = i
		}
		if r%2 == 1 {
			slices.Reverse(order) // a target's place in the run shows in its figure
		}
		type row struct {
			name, cells string
			k           int // in report.Targets
		}
		var held []row // measured before this round's baseline: printed with it
		// flush prints the held rows, with their ratios once the baseline
		// of the round is measured, or without them when it never will be.
		flush := func() {
			if len(held) == 0 {
				return
			}
			head()
			for _, h := range held {
				ratio := "…"
				if t := &report.Targets[h.k]; len(figures[bi]) == r+1 {
					ratio = "n/a" // a baseline of 0 gives no ratio
					if figures[bi][r] > 0 {
						v := ratioOf(t.Figure, figures[bi][r])
						t.Ratio = &v
						ratio = fmt.Sprintf("%.2f", v)
					}
				}
				fmt.Fprintf(stdout, "| %s | %s | %s |\n", h.name, h.cells, ratio)
			}
			held = held[:0]
		}
		for _, i := range order {
			t := targets[i]
			name := t.name
			if *rounds > 1 {
				name = fmt.Sprintf("%s (round %d)", t.name, r+1)
			}
			if ctx.Err() != nil {
				flush()
				return failRun("interrupted before %s", name)
			}
			st, err := t.start()
			if err != nil {
				flush()
				if ctx.Err() != nil { // the signal reached the server too (a terminal's ^C goes to the group)
					return failRun("%s: interrupted", name)
				}
				return failRun("%s: %v", name, err)
			}
			var done atomic.Int64
			stopProgress := progress(stderr, name, &done)
			res, figure, cells, err := sc.run(ctx, benchParams{url: st.url, pid: st.pid, conns: *conns, size: *size, duration: *duration, rate: *rate, inflight: *inflight, stuck: *stuck,
				compress: *compress != "off", json: *payload == "json", header: header, progress: &done, clients: *clients})
			stopProgress()
			st.stop()
			if ctx.Err() != nil { // a measurement cut short is not kept
				flush()
				return failRun("%s: interrupted", name)
			}
			if err != nil {
				flush()
				return failRun("%s: %v", name, err)
			}
			figures[i] = append(figures[i], figure)
			if sc.control != nil {
				controls[i] = append(controls[i], sc.control(res))
			}
			report.Targets = append(report.Targets, benchTarget{Name: t.name, Round: r + 1, Figure: figure, Result: res})
			held = append(held, row{name, cells, len(report.Targets) - 1})
			if len(figures[bi]) == r+1 {
				flush()
			}
		}
	}
	fmt.Fprintf(stdout, "\nratio: %s, against %s\n", sc.figure, names[bi])
	if *rounds > 1 {
		fmt.Fprintf(stdout, "\n%d rounds, every second one in reverse order; the ratio is taken in each round, then the median\n\n", *rounds)
		hdr, rule := "| target | figure per round | median | ratio per round | median ratio |", "|---|---|---|---|---|"
		if sc.control != nil {
			hdr, rule = hdr+" normalized ratio per round | median |", rule+"---|---|"
		}
		fmt.Fprintln(stdout, hdr)
		fmt.Fprintln(stdout, rule)
		for i, name := range names {
			ratios := make([]float64, len(figures[i]))
			for r, f := range figures[i] {
				ratios[r] = ratioOf(f, figures[bi][r])
			}
			m := benchMedian{Name: name, Figures: figures[i], Median: median(figures[i]), Ratios: ratios, MedianRatio: median(ratios)}
			line := fmt.Sprintf("| %s | %s | %.2f | %s | %.2f |", name, joinFloats(m.Figures), m.Median, joinFloats(m.Ratios), m.MedianRatio)
			if sc.control != nil {
				for r, f := range figures[i] {
					m.NormalizedRatios = append(m.NormalizedRatios, ratioOf(ratioOf(f, controls[i][r]), ratioOf(figures[bi][r], controls[bi][r])))
				}
				m.NormalizedMedianRatio = median(m.NormalizedRatios)
				line += fmt.Sprintf(" %s | %.2f |", joinFloats(m.NormalizedRatios), m.NormalizedMedianRatio)
			}
			report.Medians = append(report.Medians, m)
			fmt.Fprintln(stdout, line)
		}
		if sc.control != nil {
			fmt.Fprintln(stdout, "\nnormalized: each figure divided by the load client's CPU per echo in the same measurement before the ratio (the client is the same program for every target: what moves it moved the whole machine)")
		}
	}
	if err := writeJSON(); err != nil {
		return fail(1, "%v", err)
	}
	if *svgOut != "" {
		bars := make([]bar, len(names))
		what := sc.figure
		for i, name := range names {
			bars[i] = bar{name, figures[i][0], ratioOf(figures[i][0], figures[bi][0])}
			if *rounds > 1 {
				bars[i] = bar{name, report.Medians[i].Median, report.Medians[i].MedianRatio}
			}
		}
		if *rounds > 1 {
			what += fmt.Sprintf(", median of %d rounds", *rounds)
		}
		if err := os.WriteFile(*svgOut, chart(report, what, bars), 0o644); err != nil {
			return fail(1, "%v", err)
		}
	}
	return 0
}

// benchReport is the JSON output of wsmatrix bench (schema in
// docs/benchmarks.md).
type benchReport struct {
	Scenario  string        `json:"scenario"`
	Started   time.Time     `json:"started"`
	ServerCPU int           `json:"server_cpu"`
	ClientCPU int           `json:"client_cpu"`
	Conns     int           `json:"conns"`
	Size      int           `json:"size"`
	Duration  time.Duration `json:"duration_ns"`
	Rate      int           `json:"rate"`
	InFlight  int           `json:"in_flight"`
	Baseline  string        `json:"baseline"` // the target the ratios are against
	Rounds    int           `json:"rounds"`
	Targets   []benchTarget `json:"targets"`           // in the order they ran
	Medians   []benchMedian `json:"medians,omitempty"` // with --rounds above 1
}

type benchTarget struct {
	Name   string   `json:"name"`
	Round  int      `json:"round"`           // from 1
	Figure float64  `json:"figure"`          // the compared figure of the scenario
	Ratio  *float64 `json:"ratio,omitempty"` // figure / the baseline's figure in the same round; absent when a run stopped before it was measured
	Result any      `json:"result"`          // the loadtest result
}

// benchMedian is one target's figures over the rounds of a run.
type benchMedian struct {
	Name        string    `json:"name"`
	Figures     []float64 `json:"figures"` // per round
	Median      float64   `json:"median"`
	Ratios      []float64 `json:"ratios"` // against the baseline, per round
	MedianRatio float64   `json:"median_ratio"`
	// echo: the ratios with each figure divided by the client's CPU per
	// echo in the same measurement first (see scenario.control).
	NormalizedRatios      []float64 `json:"normalized_ratios,omitempty"`
	NormalizedMedianRatio float64   `json:"normalized_median_ratio,omitempty"`
}

func ratioOf(figure, base float64) float64 {
	if base <= 0 {
		return 0
	}
	return figure / base
}

func median(v []float64) float64 {
	s := slices.Sorted(slices.Values(v))
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func joinFloats(v []float64) string {
	s := make([]string, len(v))
	for i, f := range v {
		s[i] = strconv.FormatFloat(f, 'f', 2, 64)
	}
	return strings.Join(s, ", ")
}

// findTarget returns the index of the target named name, or of the one
// target whose name's first word is name.
func findTarget(names []string, name string) (int, error) {
	var found []int
	for i, n := range names {
		if n == name {
			return i, nil
		}
		if first, _, _ := strings.Cut(n, " "); first == name {
			found = append(found, i)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return -1, fmt.Errorf("%q names none of the targets (%s)", name, strings.Join(names, ", "))
	}
	var m []string
	for _, i := range found {
		m = append(m, names[i])
	}
	return -1, fmt.Errorf("%q matches %s: give one in full", name, strings.Join(m, " and "))
}

type benchParams struct {
	url              string
	pid, conns, size int
	rate, inflight   int
	stuck            int
	duration         time.Duration
	compress, json   bool
	header           http.Header // idle: more handshake headers
	progress         *atomic.Int64
	clients          int
}

type scenario struct {
	header string // the markdown header, ratio last
	figure string // what the ratio compares
	run    func(context.Context, benchParams) (result any, figure float64, cells string, err error)
	// control, if set, is the load client's own cost in the figure's
	// unit: the same program against every target, so what moves it
	// between measurements moved the whole machine. With --rounds, the
	// ratios are also given with each figure divided by it first.
	control func(result any) float64
}

var scenarios = map[string]scenario{
	"idle": {
		header: "| target | conns | server RSS before | after | per connection | after one 1 KiB echo each | and 5 s idle | errors | ratio |",
		figure: "server RSS per idle connection (lower is better)",
		run: func(ctx context.Context, p benchParams) (any, float64, string, error) {
			r, err := loadtest.Idle(ctx, loadtest.IdleConfig{URL: p.url, PID: p.pid, Conns: p.conns, Compress: p.compress, Header: p.header, EchoBurst: p.inflight, Progress: p.progress})
			kib := func(b float64) string { return fmt.Sprintf("%.2f KiB", b/1024) }
			echo := kib(r.BytesPerConnEcho)
			if r.EchoBurst > 1 {
				echo += fmt.Sprintf(" (%d at once)", r.EchoBurst)
			}
			return r, r.BytesPerConn, fmt.Sprintf("%d | %.1f MiB | %.1f MiB | %.0f B (%s) | %s | %s | %s", r.Conns,
				float64(r.RSSBefore)/(1<<20), float64(r.RSSAfter)/(1<<20), r.BytesPerConn, kib(r.BytesPerConn),
				echo, kib(r.BytesPerConnRested), errText(r.Errors)), err
		},
	},
	"capacity": {
		header: "| target | asked | client processes | held | ramp | client errors | server files | server RSS per conn | server CPU at the limit | held that echo | accepts again after closing | alive | ratio |",
		figure: "connections held (higher is better)",
		run: func(ctx context.Context, p benchParams) (any, float64, string, error) {
			r, err := capacity(ctx, p.url, p.pid, p.conns, p.clients, func(n int) { p.progress.Store(int64(n)) })
			again := "not within 15 s"
			if r.Recovered >= 0 {
				again = r.Recovered.Round(time.Millisecond).String()
			}
			per := 0.0
			if r.Held > 0 {
				per = float64(r.RSSHeld-r.RSSBefore) / float64(r.Held) / 1024
			}
			return r, float64(r.Held), fmt.Sprintf("%d | %d | %d | %v | %s | %d | %.2f KiB | %.1f %% | %d (%s) | %s | %v", r.Asked, r.Clients, r.Held,
				r.Ramp.Round(time.Millisecond), errText(r.Errors), r.ServerFiles, per, r.CPUAtLimit, r.Echoed, errText(r.EchoErrors), again, r.Alive), err
		},
	},
	"echo": {
		header: "| target | msgs/s | server CPU µs/msg | p50 | p99 | p99.9 | client CPU µs/msg | bytes out per echo | errors | ratio |",
		figure: "server CPU per echoed message (lower is better)",
		run: func(ctx context.Context, p benchParams) (any, float64, string, error) {
			r, err := loadtest.Echo(ctx, loadtest.EchoConfig{URL: p.url, PID: p.pid, Conns: p.conns, Size: p.size, InFlight: p.inflight, Duration: p.duration, JSON: p.json, Compress: p.compress, Progress: p.progress})
			client := 0.0
			if r.Messages > 0 {
				client = float64(r.ClientCPU/time.Microsecond) / float64(r.Messages)
			}
			wire := fmt.Sprintf("%.0f", r.WireIn)
			if r.Compressed {
				wire += " (compressed)"
			}
			return r, r.ServerCPUPerMsg, fmt.Sprintf("%.0f | %.2f | %s | %s | %s | %.2f | %s | %s", r.PerSecond, r.ServerCPUPerMsg,
				us(r.Latency.P50), us(r.Latency.P99), us(r.Latency.P999), client, wire, errText(r.Errors)), err
		},
		control: func(res any) float64 { // the client's CPU µs per echo
			r := res.(loadtest.EchoResult)
			if r.Messages == 0 {
				return 0
			}
			return float64(r.ClientCPU) / float64(time.Microsecond) / float64(r.Messages)
		},
	},
	"broadcast": {
		header: "| target | subscribers | sent | delivered | ratio delivered | deliveries/s | server CPU µs/delivery | p50 | p99 | p99.9 | errors | ratio |",
		figure: "server CPU per delivered message (lower is better)",
		run: func(ctx context.Context, p benchParams) (any, float64, string, error) {
			r, err := loadtest.Broadcast(ctx, loadtest.BroadcastConfig{URL: p.url, PID: p.pid, Subscribers: p.conns, Rate: p.rate, Size: p.size, Duration: p.duration, Progress: p.progress, Stuck: p.stuck})
			return r, r.ServerCPUPerDel, fmt.Sprintf("%d | %d | %d | %.4f | %.0f | %.2f | %s | %s | %s | %s", r.Subscribers, r.Sent, r.Delivered,
				r.DeliveryRatio, r.PerSecond, r.ServerCPUPerDel, us(r.Latency.P50), us(r.Latency.P99), us(r.Latency.P999), errText(r.Errors)), err
		},
	},
	"flood": {
		header: "| target | message | written | ended | server RSS before | peak | growth | ratio |",
		figure: "server RSS growth under one client that sends and never reads, MiB (lower is better)",
		run: func(ctx context.Context, p benchParams) (any, float64, string, error) {
			r, err := loadtest.Flood(ctx, loadtest.FloodConfig{URL: p.url, PID: p.pid, Size: p.size, Duration: p.duration, Progress: p.progress})
			mib := func(b int64) float64 { return float64(b) / (1 << 20) }
			return r, mib(r.Growth), fmt.Sprintf("%.1f MiB | %.0f MiB | %s | %.1f MiB | %.1f MiB | %.1f MiB", mib(int64(r.Size)), mib(r.Written), r.Ended,
				mib(r.RSSBefore), mib(r.RSSPeak), mib(r.Growth)), err
		},
	},
	"http": {
		header: "| target | requests/s | server CPU µs/request | p50 | p99 | errors | ratio |",
		figure: "server CPU per plain HTTP request, keep-alive (lower is better)",
		run: func(ctx context.Context, p benchParams) (any, float64, string, error) {
			r, err := loadtest.HTTP(ctx, loadtest.HTTPConfig{URL: p.url, PID: p.pid, Conns: p.conns, Duration: p.duration, Progress: p.progress})
			return r, r.ServerCPUPerReq, fmt.Sprintf("%.0f | %.2f | %s | %s | %s", r.PerSecond, r.ServerCPUPerReq, r.LatencyP50, r.LatencyP99, r.Errors), err
		},
	},
	"socketio-idle": {
		header: "| target | Socket.IO clients | server RSS before | after | per client | errors | ratio |",
		figure: "server RSS per connected Socket.IO client (lower is better)",
		run: func(ctx context.Context, p benchParams) (any, float64, string, error) {
			r, err := loadtest.SocketIO(ctx, loadtest.SocketIOConfig{URL: p.url, PID: p.pid, Conns: p.conns})
			return r, r.BytesPerConn, fmt.Sprintf("%d | %.1f MiB | %.1f MiB | %.0f B (%.2f KiB) | %s", r.Conns,
				float64(r.RSSBefore)/(1<<20), float64(r.RSSAfter)/(1<<20), r.BytesPerConn, r.BytesPerConn/1024, errText(r.Errors)), err
		},
	},
	"socketio-echo": {
		header: "| target | clients | acked events/s | server CPU s | acked per server CPU-second | p50 | p99 | errors | ratio |",
		figure: "acknowledged events per server CPU-second (higher is better)",
		run: func(ctx context.Context, p benchParams) (any, float64, string, error) {
			r, err := loadtest.SocketIO(ctx, loadtest.SocketIOConfig{URL: p.url, PID: p.pid, Conns: p.conns, Size: p.size, Duration: p.duration, Progress: p.progress})
			return r, r.PerCPUSecond, fmt.Sprintf("%d | %.0f | %.2f | %.0f | %s | %s | %s", r.Conns, r.PerSecond, r.ServerCPU.Seconds(), r.PerCPUSecond,
				us(r.Latency.P50), us(r.Latency.P99), errText(r.Errors)), err
		},
	},
	"connect": {
		header: "| target | handshakes/s | success ratio | server CPU µs/handshake | p50 | p99 | errors | ratio |",
		figure: "handshakes per second (higher is better)",
		run: func(ctx context.Context, p benchParams) (any, float64, string, error) {
			r, err := loadtest.Connect(ctx, loadtest.ConnectConfig{URL: p.url, PID: p.pid, Workers: min(p.conns, 200), Duration: p.duration, Progress: p.progress})
			return r, r.PerSecond, fmt.Sprintf("%.0f | %.4f | %.1f | %s | %s | %s", r.PerSecond, r.SuccessRatio, r.ServerCPUPerH,
				us(r.Latency.P50), us(r.Latency.P99), errText(r.Errors)), err
		},
	},
}

func us(v int64) string { return (time.Duration(v) * time.Microsecond).String() }

// progress shows a live line on a terminal (plain start and end lines
// otherwise) until the returned func is called.
func progress(w io.Writer, name string, done *atomic.Int64) func() {
	f, ok := w.(*os.File)
	tty := false
	if ok {
		if st, err := f.Stat(); err == nil {
			tty = st.Mode()&os.ModeCharDevice != 0
		}
	}
	start := time.Now()
	if !tty {
		fmt.Fprintf(w, "bench: %s: running\n", name)
		return func() {
			fmt.Fprintf(w, "bench: %s: done, %d in %v\n", name, done.Load(), time.Since(start).Round(time.Millisecond))
		}
	}
	stop := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				fmt.Fprintf(w, "\r\033[K")
				return
			case <-t.C:
				el := time.Since(start)
				fmt.Fprintf(w, "\r\033[K%s: %d (%.0f/s) %v", name, done.Load(), float64(done.Load())/el.Seconds(), el.Round(time.Second))
			}
		}
	}()
	return func() { close(stop); <-finished }
}

// bar is one bar of chart.
type bar struct {
	name          string
	figure, ratio float64
}

// chart draws the compared figure of every target as horizontal bars.
func chart(r benchReport, figure string, bars []bar) []byte {
	const w, left, barH, gap = 720, 200, 22, 8
	h := 60 + len(bars)*(barH+gap)
	maxV := 0.0
	for _, t := range bars {
		maxV = max(maxV, t.figure)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/><text x="10" y="20" font-size="14" font-weight="bold">wsmatrix bench: %s</text>`+"\n", html.EscapeString(r.Scenario))
	fmt.Fprintf(&b, `<text x="10" y="38" fill="#555">%s, %d connections, %s</text>`+"\n", html.EscapeString(figure), r.Conns, r.Started.Format("2006-01-02"))
	for i, t := range bars {
		y := 50 + i*(barH+gap)
		bw := 0.0
		if maxV > 0 {
			bw = t.figure / maxV * float64(w-left-110)
		}
		color := "#b0b0b0" // peers and external servers
		if rt, _, _ := strings.Cut(t.name, " "); slices.Contains(runtime.Builtin(), rt) {
			color = "#4878a8" // wsmatrix runtimes
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", left-8, y+barH/2+4, html.EscapeString(t.name))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", left, y, bw, barH, color)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d">%.2f (%.2f×)</text>`+"\n", float64(left)+bw+6, y+barH/2+4, t.figure, t.ratio)
	}
	b.WriteString("</svg>\n")
	return []byte(b.String())
}

func errText(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s: %d", k, v))
	}
	return strings.Join(parts, ", ")
}

// started is a target's server, running.
type started struct {
	url  string // ws://, to the path measured
	pid  int
	stop func()
}

// startChild starts a server command, pinned to cpu, and returns it
// with the URL of path at the address it logs (addr=HOST:PORT after
// msg=listening).
func startChild(name string, argv []string, cpu int, path string) (started, error) {
	if cpu >= 0 {
		argv = append([]string{"taskset", "-c", strconv.Itoa(cpu)}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	// A bench that dies (killed, or by SIGPIPE when its output is cut
	// short) takes the server it started along.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	errp, err := cmd.StderrPipe()
	if err != nil {
		return started{}, err
	}
	if err := cmd.Start(); err != nil {
		return started{}, err
	}
	sc := bufio.NewScanner(errp)
	for sc.Scan() {
		if _, rest, ok := strings.Cut(sc.Text(), "msg=listening "); ok {
			for _, f := range strings.Fields(rest) {
				if a, ok := strings.CutPrefix(f, "addr="); ok {
					go io.Copy(io.Discard, errp)
					return started{"ws://" + a + path, cmd.Process.Pid, func() {
						cmd.Process.Signal(unix.SIGTERM)
						cmd.Wait()
					}}, nil
				}
			}
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	return started{}, fmt.Errorf("server %s did not start", name)
}

// pinSelf pins every thread of this process to cpu; threads started later
// inherit it.
func pinSelf(cpu int) error {
	var set unix.CPUSet
	set.Set(cpu)
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	for _, t := range tasks {
		tid, _ := strconv.Atoi(t.Name())
		if err := unix.SchedSetaffinity(tid, &set); err != nil {
			return err
		}
	}
	return nil
}
