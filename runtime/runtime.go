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
	"fmt"
	"net"
	"slices"
	"sort"
	"sync"

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
}

// Factory makes a runtime for a router and options.
type Factory func(r *api.Router, opts api.Options) (Runtime, error)

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
		hint := "forgotten import?"
		if slices.Contains(Builtin, name) {
			hint = "built with no_" + name + "?"
		}
		return nil, fmt.Errorf("wsmatrix: unknown runtime %q (%s); this program has: %v", name, hint, Names())
	}
	if r == nil {
		return nil, fmt.Errorf("wsmatrix: runtime %s: nil router", name)
	}
	return f(r, opts)
}

// Builtin names the runtimes of this module, which runtime/all registers
// unless a build tag (no_stdhttp, no_fasthttp, no_gnet) leaves one out.
var Builtin = []string{"stdhttp", "fasthttp", "gnet"}
