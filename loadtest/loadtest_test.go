package loadtest_test

import (
	"context"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/handlers"
	"github.com/wsmatrix/wsmatrix/hub"
	"github.com/wsmatrix/wsmatrix/loadtest"
	"github.com/wsmatrix/wsmatrix/runtime/stdhttp"
)

func server(t *testing.T) string { return serve(t, "/echo", handlers.Echo) }

func broadcastServer(t *testing.T) string {
	h := hub.New(hub.Options{})
	t.Cleanup(func() { h.Close() })
	return serve(t, "/broadcast", handlers.Room(h, "all"))
}

// serve serves h at path on a stdhttp runtime and returns its URL.
func serve(t *testing.T, path string, h api.Handler) string {
	r := api.NewRouter()
	r.Handle(path, h)
	s, err := stdhttp.New(r, api.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return "ws://" + a.String() + path
}

func TestReadProc(t *testing.T) {
	p, err := loadtest.ReadProc(os.Getpid())
	if err != nil || p.RSS <= 0 {
		t.Fatalf("%+v %v", p, err)
	}
}

func TestIdle(t *testing.T) {
	u := server(t)
	r, err := loadtest.Idle(context.Background(), loadtest.IdleConfig{URL: u, PID: os.Getpid(), Conns: 50, Settle: 10 * time.Millisecond, Rest: 10 * time.Millisecond})
	if err != nil || r.Conns != 50 || len(r.Errors) != 0 || r.RSSAfter <= 0 || r.Echoed != 50 || r.RSSAfterEcho <= 0 || r.RSSAfterRest <= 0 {
		t.Fatalf("%+v %v", r, err)
	}
}

// EchoBurst: each connection writes its messages at once and reads every
// answer before the memory is read.
func TestIdleBurst(t *testing.T) {
	var received atomic.Int64
	u := serve(t, "/echo", func(ws api.Conn) {
		for {
			m, err := ws.Receive()
			if err != nil {
				return
			}
			received.Add(1)
			if ws.Send(m) != nil {
				return
			}
		}
	})
	r, err := loadtest.Idle(context.Background(), loadtest.IdleConfig{URL: u, PID: os.Getpid(), Conns: 20, EchoBurst: 4, Settle: 10 * time.Millisecond, Rest: 10 * time.Millisecond})
	if err != nil || r.Echoed != 20 || r.EchoBurst != 4 || len(r.Errors) != 0 || received.Load() != 80 {
		t.Fatalf("%+v %v; the server received %d messages, want 80", r, err, received.Load())
	}
}

// Header: the client sends the headers it is given with the handshake
// (BrowserHeaders: what a browser sends), and the server sees them.
func TestIdleBrowserHeaders(t *testing.T) {
	var seen atomic.Int64
	u := serve(t, "/echo", func(ws api.Conn) {
		h := ws.Request().Header
		ok := true
		for k := range loadtest.BrowserHeaders {
			ok = ok && h.Get(k) == loadtest.BrowserHeaders.Get(k)
		}
		ok = ok && h.Get("Origin") == "http://"+ws.Request().Host
		if ok {
			seen.Add(1)
		}
		handlers.Echo(ws)
	})
	r, err := loadtest.Idle(context.Background(), loadtest.IdleConfig{URL: u, PID: os.Getpid(), Conns: 10, Header: loadtest.BrowserHeaders, Settle: 10 * time.Millisecond, Rest: 10 * time.Millisecond})
	if err != nil || r.Echoed != 10 || len(r.Errors) != 0 || seen.Load() != 10 {
		t.Fatalf("%+v %v; %d of 10 handshakes carried the browser's headers", r, err, seen.Load())
	}
}

func TestEcho(t *testing.T) {
	u := server(t)
	r, err := loadtest.Echo(context.Background(), loadtest.EchoConfig{URL: u, PID: os.Getpid(), Conns: 10, Size: 1024, Duration: 300 * time.Millisecond})
	if err != nil || r.Messages < 10 || len(r.Errors) != 0 || r.Latency.P50 <= 0 {
		t.Fatalf("%+v %v", r, err)
	}
}

func TestEchoInFlight(t *testing.T) {
	u := server(t)
	r, err := loadtest.Echo(context.Background(), loadtest.EchoConfig{URL: u, PID: os.Getpid(), Conns: 4, Size: 100, InFlight: 8, Duration: 300 * time.Millisecond})
	if err != nil || r.Messages < 32 || r.Messages%8 != 0 || len(r.Errors) != 0 || r.InFlight != 8 {
		t.Fatalf("%+v %v", r, err)
	}
}

func TestBroadcast(t *testing.T) {
	u := broadcastServer(t)
	r, err := loadtest.Broadcast(context.Background(), loadtest.BroadcastConfig{URL: u, PID: os.Getpid(), Subscribers: 20, Rate: 50, Duration: 400 * time.Millisecond})
	if err != nil || r.Sent < 10 || r.Delivered != r.Sent*20 || r.DeliveryRatio != 1 || r.Latency.P50 <= 0 {
		t.Fatalf("%+v %v", r, err)
	}
}

func TestConnect(t *testing.T) {
	u := server(t)
	r, err := loadtest.Connect(context.Background(), loadtest.ConnectConfig{URL: u, PID: os.Getpid(), Workers: 4, Duration: 300 * time.Millisecond, Count: 200})
	if err != nil || r.Succeeded < 20 || r.SuccessRatio != 1 || r.Tried > 200 {
		t.Fatalf("%+v %v", r, err)
	}
}

func TestBounds(t *testing.T) {
	ctx := context.Background()
	if _, err := loadtest.Idle(ctx, loadtest.IdleConfig{URL: "ws://127.0.0.1:1/x", Conns: 30000}); err == nil || !strings.Contains(err.Error(), "open about") {
		t.Fatalf("30000 connections: %v", err)
	}
	if _, err := loadtest.Idle(ctx, loadtest.IdleConfig{URL: "ws://127.0.0.1:1/x", Conns: 1, EchoBurst: 2000}); err == nil || !strings.Contains(err.Error(), "at most 1024") {
		t.Fatalf("2000 messages at once: %v", err)
	}
	if _, err := loadtest.Echo(ctx, loadtest.EchoConfig{URL: "ws://10.0.0.1:80/x", Conns: 1, Duration: time.Second}); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("non-loopback target: %v", err)
	}
}

func TestFlood(t *testing.T) {
	u := server(t)
	r, err := loadtest.Flood(context.Background(), loadtest.FloodConfig{URL: u, PID: os.Getpid(), Size: 1 << 20, Total: 256 << 20, Duration: 20 * time.Second, Stall: 500 * time.Millisecond})
	if err != nil || r.RSSPeak < r.RSSBefore || r.Written <= 0 {
		t.Fatalf("%+v %v", r, err)
	}
	if r.Ended != "stalled" && r.Ended != "closed" {
		t.Fatalf("a bounded server took %d bytes from a client that reads nothing (ended: %s)", r.Written, r.Ended)
	}
}

func TestEchoCompressed(t *testing.T) {
	r := api.NewRouter()
	r.Handle("/echo", handlers.Echo)
	s, err := stdhttp.New(r, api.Options{Compression: api.CompressionNoContextTakeover})
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	res, err := loadtest.Echo(context.Background(), loadtest.EchoConfig{URL: "ws://" + a.String() + "/echo", PID: os.Getpid(), Conns: 10, Size: 1024, JSON: true, Compress: true, Duration: 300 * time.Millisecond})
	if err != nil || res.Messages < 10 || len(res.Errors) != 0 || !res.Compressed || res.WireIn > 700 {
		t.Fatalf("%+v %v", res, err)
	}
	t.Logf("1 KiB of JSON-like text: %.0f bytes on the wire per echo", res.WireIn)
}
