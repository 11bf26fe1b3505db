package conn

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/wsmatrix/wsmatrix/api"
)

type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(int)             {}

// BenchmarkServePage is a plain request through Serve and the router,
// against the router alone: what the runtime's wrapping costs a page.
func BenchmarkServePage(b *testing.B) {
	r := api.NewRouter()
	r.HandleHTTPFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	r.Handle("/echo", func(api.Conn) {})
	s, err := NewServer(r, api.Options{})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/healthz", nil)
	w := &discard{h: http.Header{}}
	b.Run("router", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r.ServeHTTP(w, req)
		}
	})
	b.Run("serve", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s.Serve(w, req, func(http.ResponseWriter, *http.Request, api.Handler) {})
		}
	})
}
