package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"

	"github.com/wsmatrix/wsmatrix/loadtest"
)

// perClientProcess is how many connections a client process opens when
// the number of processes is left to startClients.
const perClientProcess = 19000

// clientProc is a load client process of this binary (bench-hold,
// bench-open): it opens its share of the connections and reports on
// stdout, a line at a time; some read commands on stdin.
type clientProc struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

// startClients splits conns over clients processes (0: as few as the file
// limit allows), each running "wsmatrix sub --url=URL --conns=N
// --offset=O extra...": offsets keep their source ports apart.
func startClients(ctx context.Context, sub, url string, conns, clients int, stderr io.Writer, extra ...string) ([]*clientProc, error) {
	if clients <= 0 {
		clients = (conns + perClientProcess - 1) / perClientProcess
	}
	per := (conns + clients - 1) / clients
	if per > loadtest.MaxConnsPerProcess {
		return nil, fmt.Errorf("%d connections over %d client processes: one opens at most %d", conns, clients, loadtest.MaxConnsPerProcess)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	var ps []*clientProc
	for i := range clients {
		n := min(per, conns-i*per)
		if n <= 0 {
			break
		}
		args := append([]string{sub, "--url=" + url, "--conns=" + strconv.Itoa(n), "--offset=" + strconv.Itoa(i*per)}, extra...)
		p := &clientProc{cmd: exec.CommandContext(ctx, exe, args...)}
		p.cmd.Stderr = stderr
		out, err := p.cmd.StdoutPipe()
		if err == nil {
			p.in, err = p.cmd.StdinPipe()
		}
		if err == nil {
			err = p.cmd.Start()
		}
		if err != nil {
			killClients(ps)
			return nil, err
		}
		p.out = bufio.NewScanner(out)
		p.out.Buffer(make([]byte, 64<<10), 1<<20)
		ps = append(ps, p)
	}
	return ps, nil
}

// line returns the process's next line; false: it ended first.
func (p *clientProc) line() ([]byte, bool) {
	if !p.out.Scan() {
		return nil, false
	}
	return p.out.Bytes(), true
}

// readJSON decodes the process's next line into v.
func (p *clientProc) readJSON(v any) error {
	b, ok := p.line()
	if !ok {
		return fmt.Errorf("a client process ended before it reported")
	}
	return json.Unmarshal(b, v)
}

// endClients ends the processes' input and waits for them to close their
// connections and exit.
func endClients(ps []*clientProc) {
	for _, p := range ps {
		p.in.Close()
	}
	for _, p := range ps {
		p.cmd.Wait()
	}
}

// killClients kills the processes and waits for them.
func killClients(ps []*clientProc) {
	for _, p := range ps {
		p.in.Close()
		p.cmd.Process.Kill()
		p.cmd.Wait()
	}
}
