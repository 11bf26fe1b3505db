package api

import (
	"context"
	"net/http"
	"strings"
)

// Router maps URL patterns to handlers and runs middleware before the
// upgrade. Patterns are those of net/http.ServeMux (Go 1.22): "/chat/{room}"
// makes r.PathValue("room") available through Conn.Request. A pattern
// without a method is served for GET only: other methods get 405 and an
// Allow header, and unknown paths get 404.
//
// A Router is an http.Handler; a runtime serves it by putting an Upgrader
// into the request context (see WithUpgrader). Served without one, a
// WebSocket route answers 500.
type Router struct {
	root   *routerRoot
	prefix string
	parent *Router
	mw     []func(http.Handler) http.Handler
	used   bool // a route was registered: Use may no longer be called
}

type routerRoot struct {
	mux *http.ServeMux // safe for concurrent Handle and ServeHTTP
}

// NewRouter returns an empty router.
func NewRouter() *Router {
	return &Router{root: &routerRoot{mux: http.NewServeMux()}}
}

// Use appends middleware. Middleware is a func(http.Handler) http.Handler
// that runs before the upgrade: it may add to the request context, or
// write a response (401, 403, 429) instead of calling next, which refuses
// the upgrade with that response. Use panics when called after Handle on
// the same router or group, as the order would be ambiguous.
func (rt *Router) Use(mw ...func(http.Handler) http.Handler) {
	if rt.used {
		panic("wsmatrix: Router.Use called after Handle; add middleware first")
	}
	for _, m := range mw {
		if m == nil {
			panic("wsmatrix: Router.Use: nil middleware")
		}
	}
	rt.mw = append(rt.mw, mw...)
}

// Group returns a router whose patterns are prefixed with prefix and whose
// middleware runs after this router's (Flask blueprints). prefix starts
// with "/" and does not end with one.
func (rt *Router) Group(prefix string) *Router {
	if !strings.HasPrefix(prefix, "/") || strings.HasSuffix(prefix, "/") {
		panic("wsmatrix: Router.Group: prefix " + prefix + " must start with / and not end with /")
	}
	return &Router{root: rt.root, prefix: rt.prefix + prefix, parent: rt}
}

// Handle serves h on pattern, as "/echo", "/chat/{room}" or
// "GET example.com/x". It panics on a nil handler or a pattern that
// net/http.ServeMux refuses, such as a duplicate.
func (rt *Router) Handle(pattern string, h Handler) {
	if h == nil {
		panic("wsmatrix: Router.Handle: nil handler for " + pattern)
	}
	method, rest := "", pattern
	if i := strings.IndexAny(pattern, " \t"); i >= 0 {
		method, rest = pattern[:i], strings.TrimLeft(pattern[i:], " \t")
	}
	if method == "" {
		method = http.MethodGet
	}
	host, path := "", rest
	if i := strings.IndexByte(rest, '/'); i > 0 {
		host, path = rest[:i], rest[i:]
	}
	full := method + " " + host + rt.prefix + path

	var chain []func(http.Handler) http.Handler
	for g := rt; g != nil; g = g.parent {
		g.used = true
		chain = append(g.mw[:len(g.mw):len(g.mw)], chain...)
	}
	var next http.Handler = upgradeHandler{h}
	for i := len(chain) - 1; i >= 0; i-- {
		next = chain[i](next)
	}
	rt.root.mux.Handle(full, next)
}

// ServeHTTP routes r to its WebSocket handler or answers 404/405.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt.root.mux.ServeHTTP(w, r)
}

// Matches reports whether r's method and path reach one of the router's
// routes, without running its middleware: for runtimes that put WebSocket
// routes in front of another handler.
func (rt *Router) Matches(r *http.Request) bool {
	_, pattern := rt.root.mux.Handler(r)
	return pattern != ""
}

// Upgrader turns an HTTP request into a WebSocket connection served by h.
// Runtimes implement it; the Router calls it once a request has passed the
// middleware of a WebSocket route. It writes the error response itself
// when the request is not a valid upgrade.
type Upgrader interface {
	Upgrade(w http.ResponseWriter, r *http.Request, h Handler)
}

type upgraderKey struct{}

// WithUpgrader returns ctx carrying u, for runtimes that serve a Router.
func WithUpgrader(ctx context.Context, u Upgrader) context.Context {
	return context.WithValue(ctx, upgraderKey{}, u)
}

type upgradeHandler struct{ h Handler }

func (u upgradeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	up, _ := r.Context().Value(upgraderKey{}).(Upgrader)
	if up == nil {
		http.Error(w, "wsmatrix: this router is served without a runtime", http.StatusInternalServerError)
		return
	}
	up.Upgrade(w, r, u.h)
}
