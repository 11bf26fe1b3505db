package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
)

// lockedBuffer is a bytes.Buffer a server's log may write to while the
// test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// runCLI runs the command line in-process. Its context is already
// cancelled, so a serve that gets as far as listening stops at once.
func runCLI(args ...string) (code int, stdout, stderr string) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errOut lockedBuffer
	code = run(ctx, args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestHelp: --help and -h print the usage on stdout and exit 0, on every
// subcommand and at the top level.
func TestHelp(t *testing.T) {
	tests := []struct {
		args []string
		want []string // in stdout
	}{
		{[]string{"--help"}, []string{"Usage:", "wsmatrix serve"}},
		{[]string{"-h"}, []string{"Usage:", "wsmatrix serve"}},
		{[]string{"help"}, []string{"Usage:", "wsmatrix serve"}},
		{[]string{"serve", "--help"}, []string{"Usage: wsmatrix serve", "-read-limit", "WSMATRIX_READ_LIMIT", "-ping-interval duration"}},
		{[]string{"serve", "-h"}, []string{"Usage: wsmatrix serve", "-read-limit"}},
		{[]string{"serve", "--runtime=gnet", "--help"}, []string{"Usage: wsmatrix serve"}},
		{[]string{"serve", "--help"}, []string{"log level: debug, info, warn, error"}},
		{[]string{"bench", "--help"}, []string{"Usage: wsmatrix bench", "-scenario", "-duration duration"}},
		{[]string{"bench", "-h"}, []string{"Usage: wsmatrix bench", "-peers"}},
		{[]string{"runtimes", "--help"}, []string{"Usage: wsmatrix runtimes"}},
		{[]string{"runtimes", "-h"}, []string{"Usage: wsmatrix runtimes"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, stdout, stderr := runCLI(tt.args...)
			if code != 0 || stderr != "" {
				t.Fatalf("exit %d, stderr:\n%s\nwant exit 0 and nothing on stderr", code, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stdout, w) {
					t.Fatalf("stdout does not have %q:\n%s", w, stdout)
				}
			}
		})
	}
}

// TestUsageErrors: bad usage exits 2 before anything is served, with the
// error on stderr, each line carrying the subcommand's prefix and no
// second "wsmatrix: ".
func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		lines []string // stderr starts with these lines, whole
		has   []string // and contains these
	}{
		{name: "library error without its own prefix",
			args:  []string{"serve", "--read-limit=-5"},
			lines: []string{"wsmatrix serve: options: ReadLimit -5 is negative"}},
		{name: "every joined error on its own prefixed line",
			args:  []string{"serve", "--read-limit=-5", "--inbox=-1"},
			lines: []string{"wsmatrix serve: options: ReadLimit -5 is negative", "wsmatrix serve: options: InboxSize -1 is negative"}},
		{name: "unknown runtime, listed without the library's hint",
			args:  []string{"serve", "--runtime=nope"},
			lines: []string{`wsmatrix serve: unknown runtime "nope"; this binary has: fasthttp, gnet, stdhttp`}},
		{name: "unknown runtime from the environment",
			args:  []string{"serve"},
			env:   map[string]string{"WSMATRIX_RUNTIME": "nope"},
			lines: []string{`wsmatrix serve: unknown runtime "nope"; this binary has: fasthttp, gnet, stdhttp`}},
		{name: "duration without a unit",
			args: []string{"serve", "--ping-interval=5"},
			has:  []string{"wsmatrix serve: ", "-ping-interval", `"5"`, "needs a unit, e.g. 5s"}},
		{name: "fractional duration without a unit",
			args: []string{"serve", "--shutdown-timeout=1.5"},
			has:  []string{"-shutdown-timeout", "needs a unit, e.g. 1.5s"}},
		{name: "duration that is not one",
			args: []string{"serve", "--write-timeout=soon"},
			has:  []string{"-write-timeout", `"soon"`, "e.g. 5s"}},
		{name: "negative duration",
			args: []string{"serve", "--idle-timeout=-3s"},
			has:  []string{"-idle-timeout", "negative"}},
		{name: "duration without a unit from the environment",
			args:  []string{"serve"},
			env:   map[string]string{"WSMATRIX_PING_INTERVAL": "5"},
			lines: []string{`wsmatrix serve: WSMATRIX_PING_INTERVAL="5": needs a unit, e.g. 5s`}},
		{name: "log level lists the values",
			args:  []string{"serve", "--log-level=loud"},
			lines: []string{`wsmatrix serve: --log-level "loud": debug, info, warn or error`}},
		{name: "unknown flag",
			args: []string{"serve", "--no-such-flag"},
			has:  []string{"wsmatrix serve: flag provided but not defined: -no-such-flag", "wsmatrix serve --help"}},
		{name: "argument",
			args:  []string{"serve", "extra"},
			lines: []string{`wsmatrix serve: unexpected argument "extra"`}},
		{name: "runtimes takes no argument",
			args:  []string{"runtimes", "extra"},
			lines: []string{`wsmatrix runtimes: unexpected argument "extra"`}},
		{name: "bench duration without a unit",
			args: []string{"bench", "--duration=10", "--client-cpu=-1", "--url=ws://127.0.0.1:1/echo"},
			has:  []string{"wsmatrix bench: ", "-duration", "needs a unit, e.g. 10s"}},
		{name: "bench unknown runtime",
			args:  []string{"bench", "--runtimes=nope", "--client-cpu=-1", "--server-cpu=-1"},
			lines: []string{`wsmatrix bench: unknown runtime "nope"; this binary has: fasthttp, gnet, stdhttp`}},
		{name: "bench unknown flag",
			args: []string{"bench", "--no-such-flag"},
			has:  []string{"wsmatrix bench: flag provided but not defined: -no-such-flag"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			args := tt.args
			if args[0] == "serve" {
				args = append(args, "--addr=127.0.0.1:0")
			}
			code, stdout, stderr := runCLI(args...)
			if code != 2 || stdout != "" {
				t.Fatalf("exit %d, stdout %q, stderr:\n%s\nwant exit 2 and nothing on stdout", code, stdout, stderr)
			}
			prefix := "wsmatrix " + args[0] + ": "
			got := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			for _, l := range got {
				if strings.HasPrefix(l, "Run 'wsmatrix ") {
					continue
				}
				if !strings.HasPrefix(l, prefix) || strings.Contains(l[len(prefix):], "wsmatrix: ") {
					t.Errorf("line %q: want exactly one prefix %q", l, prefix)
				}
				if strings.Contains(l, "forgotten import") {
					t.Errorf("line %q has the library's hint", l)
				}
			}
			for i, l := range tt.lines {
				if i >= len(got) || got[i] != l {
					t.Errorf("stderr line %d: want %q", i+1, l)
				}
			}
			for _, h := range tt.has {
				if !strings.Contains(stderr, h) {
					t.Errorf("stderr does not have %q", h)
				}
			}
			if t.Failed() {
				t.Logf("stderr:\n%s", stderr)
			}
		})
	}
}

// TestZeroDurationNeedsNoUnit: 0 means off (or the default) and is
// accepted without a unit, on the command line and in the environment.
func TestZeroDurationNeedsNoUnit(t *testing.T) {
	t.Setenv("WSMATRIX_IDLE_TIMEOUT", "0")
	code, _, stderr := runCLI("serve", "--addr=127.0.0.1:0", "--ping-interval=0", "--handshake-timeout=0", "--write-timeout=0s")
	if code != 0 || !strings.Contains(stderr, "msg=listening") {
		t.Fatalf("exit %d, want 0 after listening; stderr:\n%s", code, stderr)
	}
}
