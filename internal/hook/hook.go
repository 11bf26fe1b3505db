// Package hook carries what the api package and the runtimes share
// without making it public API: how a runtime takes over the WebSocket
// routes of an api.Router, and how it asks a router which kind of route a
// request reaches.
package hook

import (
	"context"
	"net/http"
)

// Upgrade serves a request that reached a WebSocket route: h is the
// route's api.Handler (any, to keep this package below api).
type Upgrade func(w http.ResponseWriter, r *http.Request, h any)

type upgradeKey struct{}

// holder lets Served drop the Upgrade once the request is served.
type holder struct{ up Upgrade }

// WithUpgrade returns ctx carrying up, for the router's WebSocket routes.
func WithUpgrade(ctx context.Context, up Upgrade) context.Context {
	return context.WithValue(ctx, upgradeKey{}, &holder{up})
}

// UpgradeFrom returns the Upgrade in ctx, or nil.
func UpgradeFrom(ctx context.Context) Upgrade {
	if h, _ := ctx.Value(upgradeKey{}).(*holder); h != nil {
		return h.up
	}
	return nil
}

// Served drops the Upgrade of ctx once the request it came with is served:
// a connection keeps its request's context for its life, and the Upgrade
// holds what served the handshake (a response, buffers).
func Served(ctx context.Context) {
	if h, _ := ctx.Value(upgradeKey{}).(*holder); h != nil {
		h.up = nil
	}
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
