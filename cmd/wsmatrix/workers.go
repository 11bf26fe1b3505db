package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// workerEnv tells a process started by supervise that it is worker N.
const workerEnv = "WSMATRIX_WORKER_ID"

// readyEnv names the descriptor on which a worker says, with one byte,
// that it serves (workerReady): one that exits before failed to start.
const readyEnv = "WSMATRIX_READY_FD"

// workerReady tells the supervisor, if there is one, that this worker
// serves.
func workerReady() {
	fd, err := strconv.Atoi(os.Getenv(readyEnv))
	if err != nil {
		return
	}
	f := os.NewFile(uintptr(fd), "ready")
	f.Write([]byte{1})
	f.Close()
}

// supervise runs n copies of `wsmatrix serve args` sharing addr with
// SO_REUSEPORT (Gunicorn's --workers, fasthttp's prefork): each on the
// chosen runtime, with the same flags. A worker that dies is restarted
// and logged; one that exits before it serves (its address taken, say)
// stops them all, and supervise returns 1, as Gunicorn halts when a worker
// fails to boot: restarting it would fail the same way, forever. SIGTERM
// or SIGINT is passed on to every worker, which closes its connections
// with 1001 and exits, and supervise returns once all have. With
// --admin-addr host:port, worker i serves its metrics at port+i (port 0:
// each its own).
func supervise(ctx context.Context, args []string, n int, addr, adminAddr string, stdout, stderr io.Writer, logger *slog.Logger) int {
	exe, err := os.Executable()
	if err != nil {
		logger.Error("workers: cannot find this program", "err", err)
		return 1
	}
	// Port 0 would give each worker a port of its own: choose one now.
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		printError(stderr, "serve", err)
		return 2
	}
	if err := adminOverlaps(addr, adminAddr, n); err != nil {
		printError(stderr, "serve", err)
		return 2
	}
	if port == "0" {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			logger.Error("cannot listen", "addr", addr, "err", err)
			return 1
		}
		addr = l.Addr().String()
		l.Close()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, giveUp := context.WithCancel(ctx)
	defer giveUp()
	logger.Info("workers starting", "workers", n, "addr", addr)

	var (
		stopping atomic.Bool
		mu       sync.Mutex
		procs    = make([]*os.Process, n)
		wg       sync.WaitGroup
		failed   atomic.Bool
	)
	for i := range n {
		wargs := append(append([]string(nil), args...), "--workers=1", "--addr="+addr)
		if adminAddr != "" {
			if h, p, err := net.SplitHostPort(adminAddr); err == nil {
				if pn, err := strconv.Atoi(p); err == nil && pn != 0 {
					p = strconv.Itoa(pn + i)
				}
				wargs = append(wargs, "--admin-addr="+net.JoinHostPort(h, p))
			}
		}
		wg.Go(func() {
			backoff := 100 * time.Millisecond
			for !stopping.Load() {
				cmd := exec.Command(exe, append([]string{"serve"}, wargs...)...)
				cmd.Env = append(os.Environ(), workerEnv+"="+strconv.Itoa(i))
				cmd.Stdout, cmd.Stderr = stdout, stderr
				// A supervisor that dies (even killed) takes its workers along.
				cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
				readR, readW, err := os.Pipe()
				if err != nil {
					logger.Error("worker did not start", "worker", i, "err", err)
					failed.Store(true)
					giveUp()
					return
				}
				cmd.ExtraFiles = []*os.File{readW} // descriptor 3
				cmd.Env = append(cmd.Env, readyEnv+"=3")
				mu.Lock()
				if stopping.Load() {
					mu.Unlock()
					readR.Close()
					readW.Close()
					return
				}
				err = cmd.Start()
				readW.Close() // the worker holds it now: its exit closes it
				if err != nil {
					mu.Unlock()
					readR.Close()
					logger.Error("worker did not start", "worker", i, "err", err)
					failed.Store(true)
					giveUp()
					return
				}
				procs[i] = cmd.Process
				mu.Unlock()
				ready := make(chan bool, 1)
				go func() {
					n, _ := readR.Read(make([]byte, 1))
					readR.Close()
					ready <- n == 1
				}()
				started := time.Now()
				err = cmd.Wait()
				served := <-ready
				if stopping.Load() {
					// A worker still starting when SIGTERM came may end by
					// the signal itself: that is a stop, not a failure.
					var ee *exec.ExitError
					if err != nil && !(errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGTERM) {
						failed.Store(true)
						logger.Error("worker stopped with an error", "worker", i, "err", err)
					}
					return
				}
				var ee *exec.ExitError
				killed := false // by the OOM killer or an operator; a crash (SIGABRT, SIGSEGV) is its own doing
				if errors.As(err, &ee) {
					st := ee.Sys().(syscall.WaitStatus)
					killed = st.Signaled() && (st.Signal() == syscall.SIGKILL || st.Signal() == syscall.SIGTERM || st.Signal() == syscall.SIGINT)
				}
				if !served && !killed {
					// It exited by itself before serving (the address
					// taken, a bad flag): the others would fail alike.
					// One killed by a signal while starting (the OOM
					// killer, an operator) is restarted as any other.
					logger.Error("worker failed to start: stopping all workers", "worker", i, "pid", cmd.Process.Pid, "err", err)
					failed.Store(true)
					giveUp()
					return
				}
				if time.Since(started) > 10*time.Second {
					backoff = 100 * time.Millisecond
				}
				logger.Error("worker exited: restarting", "worker", i, "pid", cmd.Process.Pid, "err", err, "served", served, "after", backoff)
				select {
				case <-time.After(backoff):
				case <-ctx.Done():
				}
				backoff = min(2*backoff, 5*time.Second)
			}
		})
	}
	<-ctx.Done()
	logger.Info("stopping workers", "workers", n)
	mu.Lock()
	stopping.Store(true)
	for _, p := range procs {
		if p != nil {
			p.Signal(syscall.SIGTERM)
		}
	}
	mu.Unlock()
	wg.Wait()
	logger.Info("stopped")
	if failed.Load() {
		return 1
	}
	return 0
}

// adminOverlaps refuses an admin address whose ports, one a worker, take
// in the serve address's port on the same host.
func adminOverlaps(addr, adminAddr string, n int) error {
	if adminAddr == "" {
		return nil
	}
	h, p, err1 := net.SplitHostPort(addr)
	ah, ap, err2 := net.SplitHostPort(adminAddr)
	port, err3 := strconv.Atoi(p)
	aport, err4 := strconv.Atoi(ap)
	if err := errors.Join(err1, err2, err3, err4); err != nil || port == 0 || aport == 0 {
		return nil // bad values are refused where they are used; port 0 is each its own
	}
	unspecified := func(h string) bool { ip := net.ParseIP(h); return h == "" || ip != nil && ip.IsUnspecified() }
	if (h == ah || unspecified(h) || unspecified(ah)) && port >= aport && port < aport+n {
		return fmt.Errorf("--admin-addr %s: worker %d's admin port (port+%d) would be --addr's port %d", adminAddr, port-aport, port-aport, port)
	}
	return nil
}
