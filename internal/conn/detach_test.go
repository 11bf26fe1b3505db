package conn

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"reflect"
	"runtime"
	"testing"
	"time"
	"weak"

	"github.com/gobwas/ws"

	"github.com/wsmatrix/wsmatrix/api"
)

type mwKey struct{}

type connKey struct{}

// TestUpgradeLetsGoOfNetHTTPContexts: a connection that net/http upgraded,
// on the server HTTPServer makes, keeps what a handler reads of its
// request's context (the server, the local address, what middleware added)
// but not net/http's cancellable contexts of the request and its
// connection, which would stay for the life of the connection (about 400
// bytes each). On a server of the user's own, whose ConnContext adds
// values, the connection keeps them.
func TestUpgradeLetsGoOfNetHTTPContexts(t *testing.T) {
	for _, tc := range []struct {
		name            string
		middleware, own bool
	}{{"plain", false, false}, {"middleware", true, false}, {"users_own_server", true, true}} {
		middleware := tc.middleware
		t.Run(tc.name, func(t *testing.T) {
			router := api.NewRouter()
			// Middleware watches its request's context from before and
			// after the upgrade: net/http cancels it when ServeHTTP returns.
			watched := make(chan error, 3)
			if middleware {
				router.Use(func(next http.Handler) http.Handler {
					return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						ctx := r.Context()
						done := ctx.Done()
						go func() { <-done; watched <- ctx.Err() }()
						next.ServeHTTP(w, r.WithContext(context.WithValue(ctx, mwKey{}, "mw")))
						go func() { <-ctx.Done(); watched <- context.Cause(ctx) }()
						child, cancel := context.WithCancel(ctx)
						context.AfterFunc(child, func() { watched <- child.Err(); cancel() })
					})
				})
			}
			got := make(chan context.Context, 1)
			router.Handle("/t", func(c api.Conn) {
				got <- c.Request().Context()
				c.Receive()
			})
			s, err := NewServer(router, quiet())
			if err != nil {
				t.Fatal(err)
			}
			upgrade := func(w http.ResponseWriter, r *http.Request, h api.Handler) {
				var nc net.Conn
				c := s.Upgrade(w, r, func() (Transport, netip.AddrPort, error) {
					var err error
					nc, _, err = http.NewResponseController(w).Hijack()
					if err != nil {
						return nil, netip.AddrPort{}, err
					}
					return NetTransport(nc, 0), AddrPort(nc.RemoteAddr()), nil
				})
				if c != nil {
					c.Attach(nc, nil)
					go c.Run(h)
				}
			}
			var below weak.Pointer[byte] // net/http's context of the request
			handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				below = weak.Make((*byte)(reflect.ValueOf(r.Context()).UnsafePointer()))
				s.Serve(w, r, upgrade)
			})
			hs := HTTPServer(s.Options(), handler)
			if tc.own {
				hs = &http.Server{Handler: handler, ConnContext: func(ctx context.Context, _ net.Conn) context.Context {
					return context.WithValue(ctx, connKey{}, "conn")
				}}
			}
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			served := make(chan error, 1)
			go func() { served <- hs.Serve(l) }()
			defer func() {
				hs.Close()
				<-served
			}()
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if err := s.Shutdown(ctx); err != nil {
					t.Error(err)
				}
			}()

			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			client, _, _, err := ws.Dial(ctx, "ws://"+l.Addr().String()+"/t")
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			var rc context.Context
			select {
			case rc = <-got:
			case <-ctx.Done():
				t.Fatal("the handler did not start")
			}
			if v, _ := rc.Value(http.ServerContextKey).(*http.Server); v != hs {
				t.Errorf("ServerContextKey: %v, want the server", v)
			}
			if v, _ := rc.Value(http.LocalAddrContextKey).(net.Addr); v == nil || v.String() != l.Addr().String() {
				t.Errorf("LocalAddrContextKey: %v, want %v", v, l.Addr())
			}
			if middleware {
				if rc.Value(mwKey{}) != "mw" {
					t.Error("middleware's value lost")
				}
				for i := range 3 {
					select {
					case err := <-watched:
						if !errors.Is(err, context.Canceled) {
							t.Errorf("middleware's watcher %d: the request's context is done with %v", i, err)
						}
					case <-time.After(5 * time.Second):
						t.Fatalf("middleware's watcher %d: the request's context was never cancelled", i)
					}
				}
			}
			if rc.Done() != nil || rc.Err() != nil {
				t.Error("the open connection's request context can be cancelled")
			}
			if tc.own {
				if rc.Value(connKey{}) != "conn" {
					t.Error("the value ConnContext added was lost")
				}
				return
			}
			for i := 0; i < 100 && below.Value() != nil; i++ {
				runtime.GC()
				time.Sleep(5 * time.Millisecond)
			}
			if below.Value() != nil {
				t.Fatal("the open connection keeps net/http's context of its request")
			}
		})
	}
}
