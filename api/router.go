package api

import (
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/wsmatrix/wsmatrix/internal/hook"
)

// Router maps URL patterns to WebSocket handlers (Handle) and to ordinary
// HTTP handlers (HandleHTTP: pages, APIs, files, health checks), and runs
// middleware before either. Patterns are those of net/http.ServeMux (Go
// 1.22): "/chat/{room}" makes r.PathValue("room") available through
// Conn.Request. Every runtime serves both kinds on one port.
//
// A WebSocket pattern without a method is served for GET. A page and a
// WebSocket route may share a path, as Flask-Sock allows: a GET with
// "Upgrade: websocket" goes to the socket, a plain GET to the page. A
// WebSocket route asked without an upgrade answers 426; unknown paths get
// 404, known paths asked with another method 405 and an Allow header.
type Router struct {
	root   *routerRoot
	prefix string
	parent *Router
	mw     []func(http.Handler) http.Handler
	used   bool // a route was registered: Use may no longer be called
}

type routerRoot struct {
	mux   *http.ServeMux // every route: 404 and 405 from both kinds
	pages *http.ServeMux // the page routes only: where a plain request to a WebSocket route goes

	mu      sync.Mutex
	entries map[string]*entry // by full pattern, so a page and a socket can share one
}

// entry is what the mux holds for one pattern: a WebSocket handler, a page
// handler, or both.
type entry struct {
	pages *http.ServeMux
	ws    http.Handler // the upgrade behind the route's middleware
	page  http.Handler
}

func (e *entry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch e.route(r) {
	case hook.WebSocket:
		e.ws.ServeHTTP(w, r)
	case hook.Page:
		if e.page != nil {
			e.page.ServeHTTP(w, r)
			return
		}
		if h, pattern := e.pages.Handler(r); pattern != "" {
			h.ServeHTTP(w, r) // a page on the same path with another pattern ("/x" beside "GET /x")
			return
		}
		e.ws.ServeHTTP(w, r) // the upgrade answers 426
	}
}

func (e *entry) route(r *http.Request) hook.Route {
	if e.ws != nil && IsUpgrade(r) {
		return hook.WebSocket
	}
	return hook.Page
}

// IsUpgrade reports whether r asks for a WebSocket: its Upgrade header
// has the websocket token. It is how the router tells a WebSocket request
// from a page request on the same path, for middleware that must tell
// them apart too (an Upgrade of h2c is a page request).
func IsUpgrade(r *http.Request) bool {
	for _, v := range r.Header.Values("Upgrade") {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), "websocket") {
				return true
			}
		}
	}
	return false
}

func init() {
	hook.Classify = func(h http.Handler, r *http.Request) hook.Route {
		return h.(*Router).root.classify(r)
	}
}

// classify reports which kind of route r reaches.
func (root *routerRoot) classify(r *http.Request) hook.Route {
	h, pattern := root.mux.Handler(r)
	if pattern == "" {
		return hook.NoRoute
	}
	if e, ok := h.(*entry); ok {
		return e.route(r)
	}
	return hook.Page
}

// NewRouter returns an empty router.
func NewRouter() *Router {
	return &Router{root: &routerRoot{mux: http.NewServeMux(), pages: http.NewServeMux(), entries: map[string]*entry{}}}
}

// Use appends middleware. Middleware is a func(http.Handler) http.Handler
// that runs before the handler of every route registered after it: it may
// add to the request context, or write a response (401, 403, 429) instead
// of calling next, which refuses a WebSocket upgrade with that response.
// Use panics when called after a route was registered on the same router or
// group, as the order would be ambiguous.
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
		panic(fmt.Sprintf("wsmatrix: Router.Group: prefix %q must start with / and not end with /", prefix))
	}
	return &Router{root: rt.root, prefix: rt.prefix + prefix, parent: rt}
}

// Handle serves the WebSocket handler h on pattern, as "/echo",
// "/chat/{room}" or "GET example.com/x". It panics on a nil handler, a
// method other than GET (an upgrade is a GET), or a pattern that
// net/http.ServeMux refuses, such as a duplicate.
func (rt *Router) Handle(pattern string, h Handler) {
	if h == nil {
		panic("wsmatrix: Router.Handle: nil handler for " + pattern)
	}
	full := rt.full(pattern, http.MethodGet)
	if m, _, _ := strings.Cut(full, " "); m != http.MethodGet {
		panic(fmt.Sprintf("wsmatrix: Router.Handle: pattern %q: a WebSocket upgrade is a GET request, so %s could never reach it", pattern, m))
	}
	rt.register(full, rt.chain(upgradeHandler{h}), true)
}

// HandleHTTP serves the ordinary HTTP handler h on pattern, as
// "GET /{$}", "/static/", "POST /api/items/{id}": pages, files, APIs,
// health checks, beside the WebSocket routes and behind the same
// middleware. A pattern without a method is served for every method, as
// net/http.ServeMux does. It panics on a nil handler or a pattern
// net/http.ServeMux refuses.
func (rt *Router) HandleHTTP(pattern string, h http.Handler) {
	if h == nil {
		panic("wsmatrix: Router.HandleHTTP: nil handler for " + pattern)
	}
	full := rt.full(pattern, "")
	chained := rt.chain(h)
	rt.register(full, chained, false)
}

// HandleHTTPFunc is HandleHTTP for a function.
func (rt *Router) HandleHTTPFunc(pattern string, f func(http.ResponseWriter, *http.Request)) {
	if f == nil {
		panic("wsmatrix: Router.HandleHTTPFunc: nil handler for " + pattern)
	}
	rt.HandleHTTP(pattern, http.HandlerFunc(f))
}

// full returns pattern with the group's prefix, and method when it names
// none.
func (rt *Router) full(pattern, method string) string {
	m, rest := "", pattern
	if i := strings.IndexAny(pattern, " \t"); i >= 0 {
		m, rest = pattern[:i], strings.TrimLeft(pattern[i:], " \t")
	}
	if m == "" {
		m = method
	}
	host, path := "", rest
	if i := strings.IndexByte(rest, '/'); i > 0 {
		host, path = rest[:i], rest[i:]
	}
	full := host + rt.prefix + path
	if m != "" {
		full = m + " " + full
	}
	return full
}

// chain wraps h in the middleware of this router and its parents.
func (rt *Router) chain(h http.Handler) http.Handler {
	var chain []func(http.Handler) http.Handler
	for g := rt; g != nil; g = g.parent {
		g.used = true
		chain = append(g.mw[:len(g.mw):len(g.mw)], chain...)
	}
	for i := len(chain) - 1; i >= 0; i-- {
		h = chain[i](h)
	}
	return h
}

func (rt *Router) register(full string, h http.Handler, ws bool) {
	root := rt.root
	root.mu.Lock()
	defer root.mu.Unlock()
	e := root.entries[full]
	if e == nil {
		e = &entry{pages: root.pages}
		root.mux.Handle(full, e) // panics on a bad or conflicting pattern
		root.entries[full] = e
	}
	switch {
	case ws && e.ws == nil:
		e.ws = h
	case !ws && e.page == nil:
		e.page = h
		root.pages.Handle(full, h)
	default:
		panic("wsmatrix: Router: pattern " + full + " registered twice")
	}
}

// ServeHTTP routes r to its page or WebSocket handler, or answers 404 or
// 405.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt.root.mux.ServeHTTP(w, r)
}

type upgradeHandler struct{ h Handler }

func (u upgradeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !IsUpgrade(r) {
		w.Header().Set("Upgrade", "websocket")
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Sec-WebSocket-Version", "13")
		http.Error(w, "this is a WebSocket endpoint: send an upgrade request", http.StatusUpgradeRequired)
		return
	}
	up := hook.UpgradeFrom(r.Context())
	if up == nil {
		http.Error(w, "wsmatrix: this router is served without a runtime", http.StatusInternalServerError)
		return
	}
	up(w, r, u.h)
}
