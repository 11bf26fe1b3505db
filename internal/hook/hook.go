// Package hook carries what the api package and the runtimes share
// without making it public API: how a runtime takes over the WebSocket
// routes of an api.Router, and how it asks a router which kind of route a
// request reaches.
package hook

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"
)

// Upgrade serves a request that reached a WebSocket route: h is the
// route's api.Handler (any, to keep this package below api).
type Upgrade func(w http.ResponseWriter, r *http.Request, h any)

type upgradeKey struct{}

// holder is the context WithUpgrade returns: its parent's values and
// cancellation, and the Upgrade. Rebase may swap the parent.
type holder struct {
	up     Upgrade
	parent atomic.Pointer[parentCtx] // its own allocation: what Rebase replaces must not stay reachable
}

type parentCtx struct{ context.Context }

func (h *holder) Deadline() (time.Time, bool) { return h.parent.Load().Deadline() }
func (h *holder) Done() <-chan struct{}       { return h.parent.Load().Done() }
func (h *holder) Err() error                  { return h.parent.Load().Err() }

func (h *holder) Value(key any) any {
	if key == (upgradeKey{}) {
		return h
	}
	return h.parent.Load().Value(key)
}

func (h *holder) String() string {
	if s, ok := h.parent.Load().Context.(interface{ String() string }); ok {
		return s.String() + ".WithUpgrade"
	}
	return "context.WithUpgrade"
}

// Hook is the context WithUpgrade returns.
type Hook interface {
	context.Context
	// Served drops the Upgrade once the request is served. It must not
	// look the context up again: on fasthttp the request's context is
	// recycled once the response is done.
	Served()
}

// WithUpgrade returns ctx carrying up, for the router's WebSocket routes:
// a connection keeps its request's context for its life, and up holds
// what served the handshake (a response, buffers) until Served.
func WithUpgrade(ctx context.Context, up Upgrade) Hook {
	h := &holder{up: up}
	h.parent.Store(&parentCtx{ctx})
	return h
}

func (h *holder) Served() { h.up = nil }

// Parent returns the context WithUpgrade added to, when ctx is exactly
// the one it returned (no middleware added values since): a connection
// that keeps the request's context for its life need not keep the hook.
func Parent(ctx context.Context) (context.Context, bool) {
	if h, ok := ctx.(*holder); ok {
		return h.parent.Load().Context, true
	}
	return nil, false
}

// Rebase replaces the context under the hook in ctx with what lighter
// returns for it, unless that is nil. The contexts middleware added above
// the hook reach the new one from then on. A connection keeps its
// request's context for its life; lighter can let go of what a runtime put
// under it that only served the request (such as net/http's cancellable
// contexts), keeping its values.
func Rebase(ctx context.Context, lighter func(context.Context) context.Context) {
	h, _ := ctx.Value(upgradeKey{}).(*holder)
	if h == nil {
		return
	}
	if l := lighter(h.parent.Load().Context); l != nil {
		h.parent.Store(&parentCtx{l})
	}
}

// UpgradeFrom returns the Upgrade in ctx, or nil.
func UpgradeFrom(ctx context.Context) Upgrade {
	if h, _ := ctx.Value(upgradeKey{}).(*holder); h != nil {
		return h.up
	}
	return nil
}

// Route is the kind of route a request reaches.
type Route uint8

const (
	// NoRoute: no route matches the method and path.
	NoRoute Route = iota
	// WebSocket: a WebSocket route, for an upgrade request.
	WebSocket
	// Page: an ordinary http.Handler route, or a WebSocket route asked
	// without an upgrade (it answers 426).
	Page
)

// Classify reports which kind of route r reaches on router, an
// *api.Router; the api package sets it.
var Classify func(router http.Handler, r *http.Request) Route

// PreparedFrame returns the frame of an *api.PreparedMessage for key,
// building it with build on first use; the api package sets it.
var PreparedFrame func(pm any, key uint32, build func(typ uint8, data []byte, key uint32) []byte) []byte
