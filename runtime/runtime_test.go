package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/runtime"
)

type fake struct{ name string }

func (f fake) Name() string                 { return f.name }
func (fake) Start(string) (net.Addr, error) { return nil, nil }
func (fake) Shutdown(context.Context) error { return nil }
func (fake) Done() <-chan struct{}          { return nil }
func (fake) Err() error                     { return nil }
func newFake(name string) runtime.Factory {
	return func(*api.Router, api.Options) (runtime.Runtime, error) { return fake{name}, nil }
}

// unique makes registry names that a repeated test run (-count) has not
// registered yet: the registry is process-wide.
func unique(name string) string {
	seq++
	return fmt.Sprintf("%s-%d", name, seq)
}

var seq int

func TestRegistry(t *testing.T) {
	a, b := unique("test-a"), unique("test-b")
	runtime.Register(b, newFake(b))
	runtime.Register(a, newFake(a))
	names := runtime.Names()
	if !slices.IsSorted(names) || !slices.Contains(names, a) || !slices.Contains(names, b) {
		t.Fatalf("Names() = %v", names)
	}
	rt, err := runtime.New(a, api.NewRouter(), api.Options{})
	if err != nil || rt.Name() != a {
		t.Fatalf("New: %v %v", rt, err)
	}
	_, err = runtime.New("nope", api.NewRouter(), api.Options{})
	if err == nil || !strings.Contains(err.Error(), `unknown runtime "nope" (forgotten import?)`) || !strings.Contains(err.Error(), a) {
		t.Fatalf("unknown runtime: %v", err)
	}
	if _, err := runtime.New(a, nil, api.Options{}); err == nil {
		t.Fatal("nil router accepted")
	}
}

func TestRegisterPanics(t *testing.T) {
	for name, f := range map[string]func(){
		"nil":       func() { runtime.Register(unique("test-nil"), nil) },
		"duplicate": func() { d := unique("test-dup"); runtime.Register(d, newFake(d)); runtime.Register(d, newFake(d)) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			f()
		})
	}
}

// TestNoRuntimeRegistered: a program that imports no runtime is told
// which import to add. It runs in a fresh process, where nothing is
// registered yet.
func TestNoRuntimeRegistered(t *testing.T) {
	if os.Getenv("WSMATRIX_TEST_EMPTY_REGISTRY") == "1" {
		_, err := runtime.New("stdhttp", api.NewRouter(), api.Options{})
		fmt.Println(err)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestNoRuntimeRegistered$", "-test.count=1")
	cmd.Env = append(os.Environ(), "WSMATRIX_TEST_EMPTY_REGISTRY=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !strings.Contains(string(out), `import _ "github.com/wsmatrix/wsmatrix/runtime/all"`) {
		t.Fatalf("New with no runtime registered says %q; want the import to add", out)
	}
}

// stopping is a runtime whose listener fails on its own after a while.
type stopping struct {
	fake
	done     chan struct{}
	err      error
	shutdown chan struct{}
}

func (s *stopping) Start(string) (net.Addr, error) {
	if s.err != nil {
		go func() { time.Sleep(20 * time.Millisecond); close(s.done) }()
	}
	return &net.TCPAddr{}, nil
}
func (s *stopping) Done() <-chan struct{} { return s.done }
func (s *stopping) Err() error            { return s.err }
func (s *stopping) Shutdown(context.Context) error {
	close(s.shutdown)
	return nil
}

func TestServe(t *testing.T) {
	t.Run("failure_surfaces_when_it_happens", func(t *testing.T) {
		rt := &stopping{fake: fake{"stopping"}, done: make(chan struct{}), err: errors.New("accept: too many open files"), shutdown: make(chan struct{})}
		res := make(chan error, 1)
		go func() { res <- runtime.Serve(context.Background(), rt, "127.0.0.1:0") }()
		select {
		case err := <-res:
			if err == nil || !strings.Contains(err.Error(), "too many open files") {
				t.Fatalf("Serve = %v, want the listener's failure", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Serve did not return when the runtime stopped serving")
		}
		select {
		case <-rt.shutdown:
		default:
			t.Fatal("the connections of a failed runtime were not shut down")
		}
	})
	t.Run("context_done_stops_cleanly", func(t *testing.T) {
		rt := &stopping{fake: fake{"stopping"}, done: make(chan struct{}), shutdown: make(chan struct{})} // never stops on its own
		ctx, cancel := context.WithCancel(context.Background())
		res := make(chan error, 1)
		go func() { res <- runtime.Serve(ctx, rt, "127.0.0.1:0") }()
		cancel()
		if err := <-res; err != nil {
			t.Fatalf("Serve after ctx was done = %v, want nil", err)
		}
		<-rt.shutdown
	})
	t.Run("start_error", func(t *testing.T) {
		rt := startFails{fake{"x"}}
		if err := runtime.Serve(context.Background(), rt, "127.0.0.1:0"); err == nil || !strings.Contains(err.Error(), "in use") {
			t.Fatalf("Serve = %v, want Start's error", err)
		}
	})
}

type startFails struct{ fake }

func (startFails) Start(string) (net.Addr, error) { return nil, errors.New("address already in use") }

func TestBackground(t *testing.T) {
	var b runtime.Background
	if b.Done() != nil || b.Err() != nil {
		t.Fatal("Done or Err before Go")
	}
	b.Wait() // returns at once before Go
	fail := errors.New("accept: boom")
	b.Go(func() error { return fail })
	<-b.Done()
	if !errors.Is(b.Err(), fail) {
		t.Fatalf("Err = %v, want the failure", b.Err())
	}
	var s runtime.Background
	release := make(chan struct{})
	s.Go(func() error { <-release; return errors.New("closed") })
	s.Stopping()
	close(release)
	s.Wait()
	if s.Err() != nil {
		t.Fatalf("Err after Stopping = %v, want nil", s.Err())
	}
}
