package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wsmatrix/wsmatrix/loadtest"
)

// bench runs a load scenario against runtimes it starts itself, one after
// another, or against a server given by --url and --pid.
func bench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		scenario  = fs.String("scenario", "echo", "echo or idle")
		runtimes  = fs.String("runtimes", "stdhttp,fasthttp,gnet", "runtimes to start and measure, in order (the first is the baseline of the ratios)")
		paths     = fs.String("paths", "/echo,/echo-event", "handler routes to measure on each runtime")
		peers     = fs.String("peers", "", "also start and measure peer servers: name=/path/to/binary,... (each takes --addr, serves /echo, logs addr=)")
		rawURL    = fs.String("url", "", "measure an external server at this ws:// URL instead (needs --pid)")
		pid       = fs.Int("pid", 0, "process id of the external server")
		conns     = fs.Int("conns", 1000, "connections")
		size      = fs.Int("size", 1024, "echo: message size in bytes")
		duration  = fs.Duration("duration", 10*time.Second, "echo: how long to send")
		serverCPU = fs.Int("server-cpu", 0, "CPU the started servers are pinned to (-1: not pinned)")
		clientCPU = fs.Int("client-cpu", 1, "CPU this load client is pinned to (-1: not pinned)")
	)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *scenario != "echo" && *scenario != "idle" {
		fmt.Fprintf(stderr, "wsmatrix bench: --scenario %q: echo or idle\n", *scenario)
		return 2
	}
	if *clientCPU >= 0 {
		if err := pinSelf(*clientCPU); err != nil {
			fmt.Fprintf(stderr, "wsmatrix bench: pin to CPU %d: %v\n", *clientCPU, err)
			return 1
		}
	}
	type target struct {
		name, url string
		pid       int
		stop      func()
	}
	var targets []func() (target, error)
	if *rawURL != "" {
		if *pid <= 0 {
			fmt.Fprintln(stderr, "wsmatrix bench: --url needs --pid")
			return 2
		}
		targets = append(targets, func() (target, error) { return target{*rawURL, *rawURL, *pid, func() {}}, nil })
	} else {
		for _, rt := range strings.Split(*runtimes, ",") {
			for _, p := range strings.Split(*paths, ",") {
				targets = append(targets, func() (target, error) {
					self, err := os.Executable()
					if err != nil {
						return target{}, err
					}
					addr, child, err := startChild(rt, []string{self, "serve", "--runtime=" + rt, "--addr=127.0.0.1:0"}, *serverCPU)
					if err != nil {
						return target{}, err
					}
					return target{rt + " " + p, "ws://" + addr + p, child.Process.Pid, func() {
						child.Process.Signal(unix.SIGTERM)
						child.Wait()
					}}, nil
				})
			}
		}
	}

	if *rawURL == "" && *peers != "" {
		for _, p := range strings.Split(*peers, ",") {
			name, bin, ok := strings.Cut(p, "=")
			if !ok {
				fmt.Fprintf(stderr, "wsmatrix bench: --peers %q: want name=/path/to/binary\n", p)
				return 2
			}
			targets = append(targets, func() (target, error) {
				addr, child, err := startChild(name, []string{bin, "--addr=127.0.0.1:0"}, *serverCPU)
				if err != nil {
					return target{}, err
				}
				return target{name + " /echo", "ws://" + addr + "/echo", child.Process.Pid, func() {
					child.Process.Signal(unix.SIGTERM)
					child.Wait()
				}}, nil
			})
		}
	}
	fmt.Fprintf(stdout, "scenario %s, %d connections, server CPU %d, client CPU %d, %s\n\n", *scenario, *conns, *serverCPU, *clientCPU, time.Now().UTC().Format(time.RFC3339))
	switch *scenario {
	case "idle":
		fmt.Fprintln(stdout, "| target | conns | server RSS before | after | per connection | ratio | errors |")
		fmt.Fprintln(stdout, "|---|---|---|---|---|---|---|")
	case "echo":
		fmt.Fprintf(stdout, "%d-byte messages, one in flight per connection, %v\n\n", *size, *duration)
		fmt.Fprintln(stdout, "| target | msgs/s | server CPU µs/msg | ratio | p50 | p99 | p99.9 | errors |")
		fmt.Fprintln(stdout, "|---|---|---|---|---|---|---|---|")
	}
	var base float64
	for _, mk := range targets {
		t, err := mk()
		if err != nil {
			fmt.Fprintf(stderr, "wsmatrix bench: %v\n", err)
			return 1
		}
		var (
			row string
			v   float64
		)
		switch *scenario {
		case "idle":
			r, err := loadtest.Idle(ctx, loadtest.IdleConfig{URL: t.url, PID: t.pid, Conns: *conns})
			if err != nil {
				t.stop()
				fmt.Fprintf(stderr, "wsmatrix bench: %s: %v\n", t.name, err)
				return 1
			}
			v = r.BytesPerConn
			row = fmt.Sprintf("| %s | %d | %.1f MiB | %.1f MiB | %.0f B (%.2f KiB) | %%s | %v |", t.name, r.Conns,
				float64(r.RSSBefore)/(1<<20), float64(r.RSSAfter)/(1<<20), r.BytesPerConn, r.BytesPerConn/1024, errText(r.Errors))
		case "echo":
			r, err := loadtest.Echo(ctx, loadtest.EchoConfig{URL: t.url, PID: t.pid, Conns: *conns, Size: *size, Duration: *duration})
			if err != nil {
				t.stop()
				fmt.Fprintf(stderr, "wsmatrix bench: %s: %v\n", t.name, err)
				return 1
			}
			v = r.ServerCPUPerMsg
			row = fmt.Sprintf("| %s | %.0f | %.2f | %%s | %v | %v | %v | %v |", t.name, r.PerSecond, r.ServerCPUPerMsg, r.P50, r.P99, r.P999, errText(r.Errors))
		}
		t.stop()
		if base == 0 {
			base = v
		}
		ratio := "-"
		if base > 0 {
			ratio = fmt.Sprintf("%.2f", v/base)
		}
		fmt.Fprintf(stdout, row+"\n", ratio)
	}
	return 0
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

// startChild starts a server command, pinned to cpu, and returns the
// address it logs (addr=HOST:PORT after msg=listening).
func startChild(name string, argv []string, cpu int) (string, *exec.Cmd, error) {
	if cpu >= 0 {
		argv = append([]string{"taskset", "-c", strconv.Itoa(cpu)}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	errp, err := cmd.StderrPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	sc := bufio.NewScanner(errp)
	for sc.Scan() {
		if _, rest, ok := strings.Cut(sc.Text(), "msg=listening "); ok {
			for _, f := range strings.Fields(rest) {
				if a, ok := strings.CutPrefix(f, "addr="); ok {
					go io.Copy(io.Discard, errp)
					return a, cmd, nil
				}
			}
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	return "", nil, fmt.Errorf("server %s did not start", name)
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
