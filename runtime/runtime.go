// Package runtime is the registry of wsmatrix runtimes: the servers that
// accept connections for an api.Router. A runtime registers itself in its
// package's init; a program picks one by name with New.
//
//	import _ "github.com/wsmatrix/wsmatrix/runtime/all"
//
//	rt, err := runtime.New("stdhttp", router, api.Options{})
package runtime

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"slices"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/wsmatrix/wsmatrix/api"
)

// Runtime serves a router on a TCP address.
type Runtime interface {
	// Name is the name the runtime is registered under.
	Name() string
	// Start listens on addr ("127.0.0.1:0" picks a free port) and serves
	// in the background; it returns the bound address once connections
	// are accepted. A runtime is started once.
	Start(addr string) (net.Addr, error)
	// Shutdown stops accepting, sends close 1001 to every connection,
	// waits for them to end and their handlers to return, and past ctx's
	// deadline cuts what is left and returns ctx's error.
	Shutdown(ctx context.Context) error
	// Done is closed once the runtime stopped serving: after Shutdown, or
	// on its own when its listener failed. It is nil before Start.
	Done() <-chan struct{}
	// Err, once Done is closed, says why serving stopped: nil after
	// Shutdown, else the failure.
	Err() error
}

// ShutdownTimeout is how long Serve lets connections close after a stop
// signal before it cuts them.
const ShutdownTimeout = 10 * time.Second

// Serve starts rt on addr and serves until ctx is done or the process gets
// SIGINT or SIGTERM; then it shuts down gracefully: new connections are
// refused, open ones get close 1001 and ShutdownTimeout to end. It returns
// nil after such a stop, the error of Start, or, as soon as it happens, the
// failure that made rt stop serving on its own. Like the signals, what
// it does is process-wide: while it serves it gives the memory bursts
// leave back to the system (ReturnMemory, quiet for ReturnQuiet), as
// wsmatrix serve does; a program that wants otherwise calls Start and
// Shutdown itself.
//
//	rt, err := runtime.New("gnet", router, api.Options{})
//	...
//	log.Fatal(runtime.Serve(context.Background(), rt, "127.0.0.1:8080"))
func Serve(ctx context.Context, rt Runtime, addr string) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := rt.Start(addr); err != nil {
		return err
	}
	mctx, stopReturning := context.WithCancel(ctx)
	returning := make(chan struct{})
	go func() {
		defer close(returning)
		ReturnMemory(mctx, ReturnQuiet, nil)
	}()
	defer func() {
		stopReturning()
		<-returning
	}()
	var failed error
	select {
	case <-ctx.Done():
	case <-rt.Done():
		failed = rt.Err()
		if failed == nil {
			return nil // someone else shut it down
		}
		failed = fmt.Errorf("wsmatrix: %s stopped serving: %w", rt.Name(), failed)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	return errors.Join(failed, rt.Shutdown(sctx))
}

// ReturnQuiet is the quiet period after which Serve, and wsmatrix serve by
// default, give the memory a burst left back (ReturnMemory).
const ReturnQuiet = time.Second

// Factory makes a runtime for a router and options.
type Factory func(r *api.Router, opts api.Options) (Runtime, error)

// FactoryOf turns a runtime package's New into a Factory:
//
//	func init() { runtime.Register(Name, runtime.FactoryOf(New)) }
func FactoryOf[T Runtime](newRuntime func(*api.Router, api.Options) (T, error)) Factory {
	return func(r *api.Router, o api.Options) (Runtime, error) { return newRuntime(r, o) }
}

var (
	mu        sync.RWMutex
	factories = map[string]Factory{}
)

// Register makes a runtime available under name. It panics when f is nil
// or the name is taken; runtimes call it from init.
func Register(name string, f Factory) {
	mu.Lock()
	defer mu.Unlock()
	if f == nil {
		panic("wsmatrix: runtime.Register: nil factory for " + name)
	}
	if _, dup := factories[name]; dup {
		panic("wsmatrix: runtime.Register called twice for " + name)
	}
	factories[name] = f
}

// Names returns the registered runtimes, sorted.
func Names() []string {
	mu.RLock()
	defer mu.RUnlock()
	names := make([]string, 0, len(factories))
	for n := range factories {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// New makes the runtime registered as name. An unknown name fails with the
// list of what is registered.
func New(name string, r *api.Router, opts api.Options) (Runtime, error) {
	mu.RLock()
	f := factories[name]
	mu.RUnlock()
	if f == nil {
		names := Names()
		if len(names) == 0 {
			return nil, fmt.Errorf("wsmatrix: no runtime is registered, so %q is unknown: add import _ %q (every runtime) or the package of one, such as %q",
				name, "github.com/wsmatrix/wsmatrix/runtime/all", "github.com/wsmatrix/wsmatrix/runtime/stdhttp")
		}
		hint := "forgotten import?"
		if slices.Contains(builtin, name) {
			hint = "built with no_" + name + "?"
		}
		return nil, fmt.Errorf("wsmatrix: unknown runtime %q (%s); this program has: %v", name, hint, names)
	}
	if r == nil {
		return nil, fmt.Errorf("wsmatrix: runtime %s: nil router", name)
	}
	return f(r, opts)
}

// builtin names the runtimes of this module.
var builtin = []string{"stdhttp", "fasthttp", "gnet"}

// Builtin returns the names of the runtimes of this module, which
// runtime/all registers unless a build tag (no_stdhttp, no_fasthttp,
// no_gnet) leaves one out.
func Builtin() []string { return slices.Clone(builtin) }

// Background runs a runtime's accept loop on its own goroutine and
// answers Done and Err for it; runtimes use it for their Start.
type Background struct {
	mu       sync.Mutex
	done     chan struct{}
	err      error
	stopping bool
}

// Go runs serve on a new goroutine. What serve returns, unless Stopping
// was called first, is the failure Err reports.
func (b *Background) Go(serve func() error) {
	b.mu.Lock()
	b.done = make(chan struct{})
	b.mu.Unlock()
	go func() {
		err := serve()
		b.mu.Lock()
		if !b.stopping {
			b.err = err
			if b.err == nil {
				b.err = errors.New("wsmatrix: stopped serving")
			}
		}
		b.mu.Unlock()
		close(b.done)
	}()
}

// Stopping records that the runtime is shutting down: serve returning now
// is no failure.
func (b *Background) Stopping() {
	b.mu.Lock()
	b.stopping = true
	b.mu.Unlock()
}

// Done is closed once serve returned; it is nil before Go.
func (b *Background) Done() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.done
}

// Err is why serve returned on its own, once Done is closed; else nil.
func (b *Background) Err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// Wait waits for serve to return after Stopping; it returns at once
// before Go.
func (b *Background) Wait() {
	if d := b.Done(); d != nil {
		<-d
	}
}
