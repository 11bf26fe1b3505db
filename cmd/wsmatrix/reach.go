package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wsmatrix/wsmatrix/hub"
	"github.com/wsmatrix/wsmatrix/loadtest"
)

const reachUsage = `Usage: wsmatrix reach --url=ws://HOST:PORT/chat/ROOM --pid=PID --redis=redis://HOST:PORT --conns=N [--clients=K]

Measures one emit reaching every connection of a room: K client processes
(the connections divided among them: one process opens about 19,800
files here) join the room at --url, the server's memory (the process
--pid and its children, as with serve --workers) is read, then one
message goes through Redis, as 'wsmatrix emit' sends it, and each client
counts what arrived and when.

`

// reach is the reach scenario's parent.
func reach(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("reach", flag.ContinueOnError)
	var (
		rawURL   = fs.String("url", "", "ws:// URL of a room (serve's /chat/{room})")
		pid      = fs.Int("pid", 0, "the server's process (with --workers: the supervisor)")
		redisURL = fs.String("redis", "", "the servers' --redis")
		conns    = fs.Int("conns", 1000, "connections in all")
		clients  = fs.Int("clients", 0, "client processes (default: as few as the file limit allows)")
		timeout  = durationFlag(fs, "timeout", 60*time.Second, "`duration` to wait for the message")
	)
	if code, ok := parseFlags(fs, args, reachUsage, stdout, stderr); !ok {
		return code
	}
	fail := func(code int, format string, a ...any) int {
		printError(stderr, "reach", fmt.Errorf(format, a...))
		return code
	}
	u, err := url.Parse(*rawURL)
	if err != nil || *pid <= 0 || *redisURL == "" || *conns <= 0 {
		return fail(2, "--url, --pid, --redis and --conns are required")
	}
	room := strings.TrimPrefix(u.Path, "/chat/")
	rss0, err := loadtest.TreeRSS(*pid)
	if err != nil {
		return fail(1, "%v", err)
	}
	start := time.Now()
	kids, err := startClients(context.Background(), "bench-hold", *rawURL, *conns, *clients, stderr, "--timeout="+timeout.String())
	if err != nil {
		return fail(1, "%v", err)
	}
	defer func() { killClients(kids) }()
	opened := 0
	for _, k := range kids {
		b, ok := k.line()
		if !ok {
			return fail(1, "a client process ended before connecting")
		}
		var n int
		fmt.Sscanf(string(b), "ready %d", &n)
		opened += n
	}
	ramp := time.Since(start)
	time.Sleep(2 * time.Second) // settle
	rss1, _ := loadtest.TreeRSS(*pid)
	bp, err := hub.NewRedis(*redisURL, hub.RedisOptions{})
	if err != nil {
		return fail(2, "--redis: %v", err)
	}
	e := hub.NewEmitter(bp)
	defer e.Close()
	if err := e.To(room).SendText(strconv.FormatInt(time.Now().UnixNano(), 10) + " one emit for everyone"); err != nil {
		return fail(1, "emit: %v", err)
	}
	var (
		received int
		p50, p99 int64
		errs     = map[string]int{}
	)
	for _, k := range kids {
		var r loadtest.HoldResult
		if err := k.readJSON(&r); err != nil {
			return fail(1, "client result: %v", err)
		}
		received += r.Received
		p50, p99 = max(p50, r.Latency.P50), max(p99, r.Latency.P99)
		for k, v := range r.Errors {
			errs[k] += v
		}
	}
	fmt.Fprintf(stdout, "| connections | client processes | ramp | server RSS | per connection | received | ratio | p50 (slowest client) | p99 (slowest client) | errors |\n|---|---|---|---|---|---|---|---|---|---|\n")
	fmt.Fprintf(stdout, "| %d | %d | %v | %.1f MiB | %.2f KiB | %d | %.4f | %s | %s | %s |\n", opened, len(kids), ramp.Round(time.Millisecond),
		float64(rss1)/(1<<20), float64(rss1-rss0)/float64(max(opened, 1))/1024, received, float64(received)/float64(max(opened, 1)),
		us(p50), us(p99), errText(errs))
	if received != opened {
		return 1
	}
	return 0
}

// benchHold is one client process of reach.
func benchHold(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench-hold", flag.ContinueOnError)
	var (
		rawURL  = fs.String("url", "", "")
		conns   = fs.Int("conns", 0, "")
		offset  = fs.Int("offset", 0, "")
		timeout = durationFlag(fs, "timeout", 60*time.Second, "")
	)
	if code, ok := parseFlags(fs, args, "", stdout, stderr); !ok {
		return code
	}
	r, err := loadtest.Hold(context.Background(), loadtest.HoldConfig{URL: *rawURL, Conns: *conns, Offset: *offset, Timeout: *timeout,
		Ready: func(n int, _ map[string]int) { fmt.Fprintf(stdout, "ready %d\n", n) }})
	if err != nil {
		printError(stderr, "bench-hold", err)
		return 1
	}
	b, _ := json.Marshal(r)
	fmt.Fprintf(stdout, "%s\n", b)
	return 0
}
