package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/wsmatrix/wsmatrix/loadtest"
)

// capacityResult is what the capacity scenario measured: where a server
// stops accepting, and how it behaves there.
type capacityResult struct {
	Asked   int `json:"asked"`
	Clients int `json:"client_processes"`
	// Held counts the connections open when every client stopped (the
	// ramp of a client ends after 64 failed dials in a row).
	Held        int            `json:"held"`
	Ramp        time.Duration  `json:"ramp_ns"`
	Errors      map[string]int `json:"errors,omitempty"`
	ServerFiles int            `json:"server_files"` // descriptors the server held, /proc/PID/fd
	RSSBefore   int64          `json:"rss_before_bytes"`
	RSSHeld     int64          `json:"rss_held_bytes"`
	// CPUAtLimit is the server's CPU use, in percent of one core, over
	// 5 s right after the ramp: no traffic, but a listener it may no
	// longer be able to accept from.
	CPUAtLimit float64        `json:"cpu_at_limit_percent"`
	Echoed     int            `json:"echoed"` // held connections that then echoed one 1 KiB message
	EchoErrors map[string]int `json:"echo_errors,omitempty"`
	// Recovered is the time from the clients closing everything to a new
	// connection's echo (-1: none within 15 s); Alive says whether the
	// server process was still running at the end.
	Recovered time.Duration `json:"recovered_ns"`
	Alive     bool          `json:"alive"`
}

// capacity runs the capacity scenario against the server at url (process
// pid): client processes (bench-open, startClients) open connections until
// the server stops accepting or asked are open.
func capacity(ctx context.Context, url string, pid, asked, clients int, progress func(int)) (capacityResult, error) {
	r := capacityResult{Asked: asked, Recovered: -1}
	p0, err := loadtest.ReadProc(pid)
	if err != nil {
		return r, err
	}
	r.RSSBefore = p0.RSS
	kids, err := startClients(ctx, "bench-open", url, asked, clients, os.Stderr)
	if err != nil {
		return r, fmt.Errorf("capacity: %v", err)
	}
	defer func() { killClients(kids) }()
	r.Clients = len(kids)
	r.Errors = map[string]int{}
	for _, k := range kids {
		var o loadtest.Opened
		if err := k.readJSON(&o); err != nil {
			return r, fmt.Errorf("capacity: ramp: %v", err)
		}
		r.Held += o.Held
		r.Ramp = max(r.Ramp, o.Ramp)
		for e, n := range o.Errors {
			r.Errors[e] += n
		}
		if progress != nil {
			progress(r.Held)
		}
	}
	files, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	r.ServerFiles = len(files)
	p1, err := loadtest.ReadProc(pid)
	if err != nil {
		return r, fmt.Errorf("capacity: the server ended during the ramp: %v", err)
	}
	r.RSSHeld = p1.RSS
	select {
	case <-time.After(5 * time.Second):
	case <-ctx.Done():
		return r, ctx.Err()
	}
	if p2, err := loadtest.ReadProc(pid); err == nil {
		r.CPUAtLimit = 100 * float64(p2.CPU-p1.CPU) / float64(5*time.Second)
	}
	r.EchoErrors = map[string]int{}
	for _, k := range kids {
		fmt.Fprintln(k.in, "echo")
	}
	for _, k := range kids {
		var e struct {
			Echoed int            `json:"echoed"`
			Errors map[string]int `json:"errors"`
		}
		if err := k.readJSON(&e); err != nil {
			return r, fmt.Errorf("capacity: echoes: %v", err)
		}
		r.Echoed += e.Echoed
		for k, n := range e.Errors {
			r.EchoErrors[k] += n
		}
	}
	endClients(kids)
	kids = nil
	closed := time.Now()
	for time.Since(closed) < 15*time.Second && ctx.Err() == nil {
		o, err := loadtest.Open(ctx, loadtest.OpenConfig{URL: url, Conns: 1, Dialers: 1, Handshake: 2 * time.Second, Offset: asked})
		if err == nil && o.Held == 1 {
			n, _ := o.Echo(1024, 2*time.Second)
			o.Close()
			if n == 1 {
				r.Recovered = time.Since(closed)
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	_, err = loadtest.ReadProc(pid)
	r.Alive = err == nil
	return r, nil
}

// benchOpen is one client process of the capacity scenario: it opens its
// connections and prints what it holds (one JSON line), echoes once on
// each when it reads "echo", and closes them at the end of its input.
func benchOpen(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench-open", flag.ContinueOnError)
	var (
		rawURL = fs.String("url", "", "")
		conns  = fs.Int("conns", 0, "")
		offset = fs.Int("offset", 0, "")
	)
	if code, ok := parseFlags(fs, args, "", stdout, stderr); !ok {
		return code
	}
	o, err := loadtest.Open(context.Background(), loadtest.OpenConfig{URL: *rawURL, Conns: *conns, Offset: *offset})
	if err != nil {
		printError(stderr, "bench-open", err)
		return 1
	}
	defer o.Close()
	b, _ := json.Marshal(o)
	fmt.Fprintf(stdout, "%s\n", b)
	in := bufio.NewScanner(stdin)
	for in.Scan() {
		if in.Text() == "echo" {
			n, errs := o.Echo(1024, 10*time.Second)
			b, _ := json.Marshal(map[string]any{"echoed": n, "errors": errs})
			fmt.Fprintf(stdout, "%s\n", b)
		}
	}
	return 0
}
