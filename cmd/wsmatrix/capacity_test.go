package main

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/wsmatrix/wsmatrix/loadtest"
)

// A server that runs out of file descriptors goes on serving the
// connections it holds, stays up, and accepts again once some close: each
// runtime under a 256-file limit (prlimit), 400 connections asked.
func TestFileLimit(t *testing.T) {
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			s := startCmd(t, exec.Command("prlimit", "--nofile=256:256", binary, "serve", "--addr=127.0.0.1:0", "--runtime="+rt))
			url := "ws://" + s.addr + "/echo-event"
			o, err := loadtest.Open(context.Background(), loadtest.OpenConfig{URL: url, Conns: 400, Handshake: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("held %d of 400, errors %v", o.Held, o.Errors)
			if o.Held < 150 || o.Held > 256 {
				o.Close()
				t.Fatalf("held %d connections under a 256-file limit", o.Held)
			}
			select {
			case err := <-s.done:
				s.done <- err
				t.Fatalf("the server ended at its file limit: %v\n%s", err, s.logText())
			default:
			}
			if n, errs := o.Echo(64, 5*time.Second); n != o.Held {
				o.Close()
				t.Fatalf("%d of the %d held connections echoed at the limit: %v\n%s", n, o.Held, errs, s.logText())
			}
			o.Close()
			deadline := time.Now().Add(10 * time.Second)
			for {
				again, err := loadtest.Open(context.Background(), loadtest.OpenConfig{URL: url, Conns: 1, Dialers: 1, Handshake: time.Second})
				if err == nil && again.Held == 1 {
					n, _ := again.Echo(64, 2*time.Second)
					again.Close()
					if n == 1 {
						break
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("no new connection within 10 s of closing the others\n%s", s.logText()[max(0, len(s.logText())-3000):])
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
}
