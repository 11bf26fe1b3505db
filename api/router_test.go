package api_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/internal/hook"
)

// recorder plays the runtime: it records which request reached a
// WebSocket route.
type recorder struct{ reached *http.Request }

func (u *recorder) upgrade(w http.ResponseWriter, r *http.Request, h any) {
	u.reached = r
	w.WriteHeader(http.StatusSwitchingProtocols)
}

func TestRouter(t *testing.T) {
	noop := func(api.Conn) {}
	r := api.NewRouter()
	r.Handle("/chat/{room}", noop)
	g := r.Group("/v1")
	g.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.URL.Query().Get("key") == "" {
				http.Error(w, "key needed", http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, req)
		})
	})
	g.Handle("/feed", noop)

	tests := []struct {
		method, target string
		status         int
		room           string
	}{
		{"GET", "/chat/lobby", 101, "lobby"},
		{"POST", "/chat/lobby", 405, ""},
		{"GET", "/nowhere", 404, ""},
		{"GET", "/v1/feed", 401, ""},
		{"GET", "/v1/feed?key=k", 101, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			u := &recorder{}
			req := httptest.NewRequest(tt.method, tt.target, nil)
			req.Header.Set("Upgrade", "websocket")
			ctx := hook.WithUpgrade(req.Context(), u.upgrade)
			req = req.WithContext(ctx)
			w := httptest.NewRecorder()
			r.ServeHTTP(w, req)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d", w.Code, tt.status)
			}
			if tt.status == 101 && u.reached.PathValue("room") != tt.room {
				t.Fatalf("room %q", u.reached.PathValue("room"))
			}
			if tt.status == 405 && !strings.Contains(w.Header().Get("Allow"), "GET") {
				t.Fatalf("Allow %q", w.Header().Get("Allow"))
			}
		})
	}
}

func TestRouterWithoutRuntime(t *testing.T) {
	r := api.NewRouter()
	r.Handle("/x", func(api.Conn) {})
	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest("GET", "/x", nil))
	if w.Code != http.StatusUpgradeRequired {
		t.Fatalf("plain GET of a WebSocket route: status %d, want 426", w.Code)
	}
	req := httptest.NewRequest("GET", "/x", nil)
	req.Header.Set("Upgrade", "websocket")
	w = httptest.NewRecorder()
	r.ServeHTTP(w, req)
	if w.Code != http.StatusInternalServerError {
		t.Fatalf("an upgrade with no runtime: status %d, want 500", w.Code)
	}
}

func TestRouterMisuse(t *testing.T) {
	for name, f := range map[string]func(){
		"use after handle": func() {
			r := api.NewRouter()
			r.Handle("/a", func(api.Conn) {})
			r.Use(func(h http.Handler) http.Handler { return h })
		},
		"parent use after group handle": func() {
			r := api.NewRouter()
			r.Group("/g").Handle("/a", func(api.Conn) {})
			r.Use(func(h http.Handler) http.Handler { return h })
		},
		"nil handler":    func() { api.NewRouter().Handle("/a", nil) },
		"duplicate":      func() { r := api.NewRouter(); r.Handle("/a", func(api.Conn) {}); r.Handle("/a", func(api.Conn) {}) },
		"bad prefix":     func() { api.NewRouter().Group("g/") },
		"empty prefix":   func() { api.NewRouter().Group("") },
		"POST socket":    func() { api.NewRouter().Handle("POST /x", func(api.Conn) {}) },
		"nil middleware": func() { api.NewRouter().Use(nil) },
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

func TestOptionsDefaults(t *testing.T) {
	o, err := api.Options{}.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if o.ReadLimit != 16<<20 || o.PingInterval != api.DefaultPingInterval || o.Logger == nil || o.SendQueueBytes != 1<<20 || o.InboxBytes != 1<<20 || o.IdleTimeout != api.Disabled {
		t.Fatalf("defaults %+v", o)
	}
	bad := []api.Options{
		{ReadLimit: -1}, {PingInterval: -5}, {PongTimeout: api.Disabled}, {SendQueueBytes: -1}, {InboxBytes: -1},
		{MaxHeaderBytes: 10}, {Subprotocols: []string{"has space"}}, {MaxConnections: -1},
	}
	for _, b := range bad {
		if _, err := b.WithDefaults(); err == nil {
			t.Errorf("%+v accepted", b)
		}
	}
}

func TestStatusCode(t *testing.T) {
	for _, c := range []api.StatusCode{1000, 1003, 1007, 1014, 3000, 4999} {
		if !c.Sendable() {
			t.Errorf("%v not sendable", c)
		}
	}
	for _, c := range []api.StatusCode{0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000} {
		if c.Sendable() {
			t.Errorf("%v sendable", c)
		}
	}
	if s := api.StatusGoingAway.String(); s != "1001 (going away)" {
		t.Fatal(s)
	}
}
