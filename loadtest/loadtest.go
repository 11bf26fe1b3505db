// Package loadtest drives WebSocket servers with bounded load scenarios and
// reads the server's cost from /proc: memory per idle connection and CPU
// per echoed message. It measures any server reachable on loopback, given
// its URL and process id.
package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/httphead"
	"github.com/gobwas/ws"
)

// Proc is a reading of a process's cost.
type Proc struct {
	CPU time.Duration // user + system time so far
	RSS int64         // resident memory, bytes
}

// ReadProc reads /proc/PID/stat and /proc/PID/status.
func ReadProc(pid int) (Proc, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Proc{}, err
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Proc{}, err
	}
	return parseProc(stat, status)
}

// parseProc takes the CPU time from a /proc/PID/stat line and the
// resident memory from /proc/PID/status.
func parseProc(stat, status []byte) (Proc, error) {
	// Fields after the command name, which is in parentheses and may hold
	// spaces and parentheses itself.
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return Proc{}, errors.New("loadtest: /proc stat without a command name")
	}
	f := strings.Fields(string(stat[end+1:]))
	if len(f) < 13 {
		return Proc{}, errors.New("loadtest: short /proc stat")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil || utime < 0 || stime < 0 || utime > 1<<40 || stime > 1<<40 {
		return Proc{}, fmt.Errorf("loadtest: /proc stat times %q %q", f[11], f[12])
	}
	const ticks = 100 // USER_HZ on Linux
	p := Proc{CPU: time.Duration(utime+stime) * time.Second / ticks}
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil || kb < 0 || kb > 1<<40 {
				return Proc{}, fmt.Errorf("loadtest: /proc status VmRSS %q", v)
			}
			p.RSS = kb << 10
		}
	}
	return p, nil
}

// dialer opens WebSocket client connections from a rotation of loopback
// source addresses, so that many connections do not exhaust one address's
// ephemeral ports.
type dialer struct {
	u        *url.URL
	sources  []net.IP
	compress bool          // offer permessage-deflate
	header   http.Header   // more handshake headers, if any
	timeout  time.Duration // bound on one dial and handshake; default 10 s
}

// BrowserHeaders are the handshake headers Chromium 131 sends besides
// those of the WebSocket handshake itself (Host, Upgrade, Connection,
// Sec-WebSocket-Key and -Version) and Origin, which the scenarios set to
// the target's own (a page of the same origin), without cookies: a server
// that keeps its upgrade requests keeps these.
var BrowserHeaders = http.Header{
	"Pragma":          {"no-cache"},
	"Cache-Control":   {"no-cache"},
	"User-Agent":      {"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"},
	"Accept-Encoding": {"gzip, deflate, br, zstd"},
	"Accept-Language": {"en-US,en;q=0.9"},
}

// withHeader makes the dialer send h with each handshake, and an Origin
// of the target's own unless h has one.
func (d *dialer) withHeader(h http.Header) {
	if h == nil {
		return
	}
	h = h.Clone()
	if h.Get("Origin") == "" {
		h.Set("Origin", "http://"+d.u.Host)
	}
	d.header = h
}

func newDialer(rawURL string, sources int) (*dialer, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "ws" {
		return nil, fmt.Errorf("loadtest: %s: only ws:// URLs", rawURL)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("loadtest: %s: load goes to loopback addresses only", rawURL)
	}
	d := &dialer{u: u}
	for i := range min(max(sources, 1), 250*250) {
		d.sources = append(d.sources, net.IPv4(127, 0, byte(i/250), byte(1+i%250)))
	}
	return d, nil
}

// dial opens connection number i and completes the handshake.
func (d *dialer) dial(ctx context.Context, i int) (net.Conn, error) {
	src := d.sources[i%len(d.sources)]
	timeout := d.timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	nd := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: timeout}
	wd := ws.Dialer{NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return nd.DialContext(ctx, network, addr)
	}, Timeout: timeout}
	if d.header != nil {
		wd.Header = ws.HandshakeHeaderHTTP(d.header)
	}
	if d.compress {
		// The client keeps no window of its own: it sends the same
		// compressed frame again and again.
		wd.Extensions = []httphead.Option{httphead.NewOption("permessage-deflate", map[string]string{"client_no_context_takeover": ""})}
	}
	c, br, _, err := wd.Dial(ctx, d.u.String())
	if err != nil {
		return nil, err
	}
	if br != nil { // the server sent frames right behind its answer (Socket.IO's open packet)
		return &bufferedConn{Conn: c, r: br}, nil
	}
	return c, nil
}

// bufferedConn reads what the handshake's reader buffered, then the
// connection.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) {
	if c.r != nil {
		if c.r.Buffered() > 0 {
			return c.r.Read(p)
		}
		c.r = nil
	}
	return c.Conn.Read(p)
}

// errKind names an error for the error counts of a result.
func errKind(err error) string {
	var ne net.Error
	switch {
	case err == nil:
		return ""
	case strings.Contains(err.Error(), "too many open files"):
		return "too many open files"
	case strings.Contains(err.Error(), "cannot assign requested address"):
		return "no local port left"
	case strings.Contains(err.Error(), "connection refused"):
		return "refused"
	case strings.Contains(err.Error(), "reset by peer"):
		return "reset"
	case asNetError(err, &ne) && ne.Timeout():
		return "timeout"
	case strings.Contains(err.Error(), "unexpected HTTP response status"):
		return "handshake refused"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "closed by the server"
	}
	return "other"
}

func asNetError(err error, ne *net.Error) bool {
	e, ok := err.(net.Error)
	if ok {
		*ne = e
	}
	return ok
}

func selfPID() int { return os.Getpid() }

// checkBounds refuses loads this machine cannot hold or that run too long.
func checkBounds(scenario string, conns int, d time.Duration) error {
	if conns <= 0 || conns > maxFiles-100 {
		return fmt.Errorf("loadtest: %s: %d connections; one process may open about %d files", scenario, conns, maxFiles)
	}
	if d <= 0 || d > 10*time.Minute {
		return fmt.Errorf("loadtest: %s: duration %v not in (0, 10m]", scenario, d)
	}
	return nil
}

// dialAll opens n connections, one after another; close them with
// closeAll, also after an error.
func (d *dialer) dialAll(ctx context.Context, n int) ([]net.Conn, error) {
	conns := make([]net.Conn, 0, n)
	for i := range n {
		c, err := d.dial(ctx, i)
		if err != nil {
			return conns, fmt.Errorf("dial: %w", err)
		}
		conns = append(conns, c)
	}
	return conns, nil
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		c.Close()
	}
}

// dialMany opens n connections with dial (given the connection's index,
// from offset), workers at a time, and returns those that opened with the
// failures counted by kind; progress, if set, counts each one opened. With
// stopAfter > 0 it gives up once that many dials failed in a row (the
// server stopped accepting).
func dialMany(ctx context.Context, n, workers, offset, stopAfter int, dial func(context.Context, int) (net.Conn, error), progress *atomic.Int64) ([]net.Conn, map[string]int) {
	var (
		mu      sync.Mutex
		conns   []net.Conn
		errs    = map[string]int{}
		inARow  int
		gaveUp  bool
		stopped = make(chan struct{})
		work    = make(chan int)
		wg      sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for i := range work {
				c, err := dial(ctx, offset+i)
				mu.Lock()
				if err != nil {
					errs[errKind(err)]++
					if inARow++; inARow == stopAfter && !gaveUp {
						gaveUp = true
						close(stopped)
					}
				} else {
					inARow = 0
					conns = append(conns, c)
					if progress != nil {
						progress.Add(1)
					}
				}
				mu.Unlock()
			}
		})
	}
feed:
	for i := 0; i < n; i++ {
		select {
		case work <- i:
		case <-stopped:
			break feed
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	return conns, errs
}

// eachConn runs f on every connection, workers at a time.
func eachConn(conns []net.Conn, workers int, f func(net.Conn)) {
	var wg sync.WaitGroup
	next := make(chan net.Conn)
	for range workers {
		wg.Go(func() {
			for c := range next {
				f(c)
			}
		})
	}
	for _, c := range conns {
		next <- c
	}
	close(next)
	wg.Wait()
}

// echoEach writes msg (one frame, or several at once) on every connection
// and reads that many answers, workers at a time, each within timeout; it
// returns how many connections got all of them and the failures by kind.
func echoEach(conns []net.Conn, msg []byte, answers, workers int, timeout time.Duration) (int, map[string]int) {
	var (
		mu     sync.Mutex
		echoed int
		errs   = map[string]int{}
	)
	eachConn(conns, workers, func(c net.Conn) {
		var wire atomic.Int64
		c.SetDeadline(time.Now().Add(timeout))
		_, err := c.Write(msg)
		for i := 0; i < answers && err == nil; i++ {
			_, err = readServerFrame(c, &wire)
		}
		c.SetDeadline(time.Time{})
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			errs["echo: "+errKind(err)]++
			return
		}
		echoed++
	})
	return echoed, errs
}
