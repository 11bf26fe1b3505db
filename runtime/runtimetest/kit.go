// Package runtimetest is the conformance kit of wsmatrix runtimes, in the
// manner of testing/fstest: a runtime's own test is one call,
//
//	func TestConformance(t *testing.T) {
//		runtimetest.Run(t, func(r *api.Router, o api.Options) (runtime.Runtime, error) {
//			return stdhttp.New(r, o)
//		}, runtimetest.Config{IdleBlocking: 2, IdleEvent: 1})
//	}
//
// and Run starts a fresh server for each named case, drives it over real
// TCP on 127.0.0.1 with a raw client that can also misbehave, and checks
// that no goroutine is left behind.
package runtimetest

import (
	"context"
	"log/slog"
	"net"
	"runtime/debug"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/runtime"
)

// Factory makes the runtime under test for a router and options.
type Factory func(r *api.Router, opts api.Options) (runtime.Runtime, error)

// Config is what a runtime documents about itself, for the kit to hold it
// to.
type Config struct {
	// IdleBlocking and IdleEvent are the goroutines one idle connection
	// holds with a blocking-style and an event-style handler.
	IdleBlocking, IdleEvent int
	// TLS: the runtime serves TLS (Options.TLSConfig), and the upgrade
	// request carries its state, as net/http's requests do.
	TLS bool
}

type testCase struct {
	name string
	run  func(t *testing.T, k *kit)
}

// Run runs every conformance case against the runtimes f makes, holding
// them to what cfg documents. Cases run one after another, each on its own
// server, under a time limit.
func Run(t *testing.T, f Factory, cfg Config) {
	var cases []testCase
	cases = append(cases, protocolCases()...)
	cases = append(cases, handshakeCases()...)
	cases = append(cases, requestCases()...)
	cases = append(cases, connCases()...)
	cases = append(cases, hardeningCases()...)
	cases = append(cases, httpCases()...)
	cases = append(cases, deflateCases()...)
	cases = append(cases, preparedCases()...)
	if cfg.TLS {
		cases = append(cases, tlsCases()...)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Like nettest: a stuck case panics, which prints every goroutine.
			timer := time.AfterFunc(caseTimeout, func() {
				debug.SetTraceback("all")
				panic("runtimetest: case " + tc.name + " still running after " + caseTimeout.String())
			})
			defer timer.Stop()
			tc.run(t, &kit{t: t, f: f, cfg: cfg})
		})
	}
}

const caseTimeout = 60 * time.Second

// processWide are goroutines that dependencies start once per process and
// keep: gnet's ants worker pool (its idle workers too) and fasthttp's date
// updater.
//
// ProcessWide returns them as goleak options, for the goroutine-leak
// checks of packages that run servers in their tests.
func ProcessWide() []goleak.Option { return slices.Clone(processWide) }

var processWide = []goleak.Option{
	goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).purgeStaleWorkers"),
	goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).ticktock"),
	goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*goWorker).run.func1"),
	goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
}

// kit serves one case.
type kit struct {
	t   *testing.T
	f   Factory
	cfg Config
}

// server is a running runtime.
type server struct {
	rt   runtime.Runtime
	addr string
}

// testOptions are the defaults of the kit: the runtime's defaults, with
// short timeouts so that cases stay fast.
func testOptions() api.Options {
	return api.Options{
		CloseTimeout: 2 * time.Second,
		WriteTimeout: 5 * time.Second,
		Logger:       slog.New(slog.DiscardHandler),
	}
}

// serve starts the runtime with routes set up by setup. The server is shut
// down at the end of the case, and the case fails if goroutines remain.
func (k *kit) serve(o api.Options, setup func(r *api.Router)) *server {
	k.t.Helper()
	r := api.NewRouter()
	setup(r)
	return k.serveRouter(o, r)
}

// serveRouter starts the runtime with r; as serve.
func (k *kit) serveRouter(o api.Options, r *api.Router) *server {
	t := k.t
	t.Helper()
	before := goleak.IgnoreCurrent()                                                                 // the goroutines that exist now are not this case's
	t.Cleanup(func() { goleak.VerifyNone(t, append([]goleak.Option{before}, ProcessWide()...)...) }) // runs last
	rt, err := k.f(r, o)
	if err != nil {
		t.Fatalf("new runtime: %v", err)
	}
	a, err := rt.Start("127.0.0.1:0")
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	s := &server{rt: rt, addr: a.(*net.TCPAddr).String()}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rt.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return s
}

// echo serves a blocking echo at /echo with o.
func (k *kit) echo(o api.Options) *server {
	return k.serve(o, func(r *api.Router) { r.Handle("/echo", echo) })
}

// echo releases each message once sent (Send keeps nothing of it): the
// next messages are received into its storage, so every case that echoes
// also checks that nothing sent (queued, corked, compressed) still reads
// a message's bytes after Send returned.
func echo(ws api.Conn) {
	for {
		m, err := ws.Receive()
		if err != nil {
			return
		}
		err = ws.Send(m)
		m.Release()
		if err != nil {
			return
		}
	}
}

// echoEvent is an echo in event style.
func echoEvent(ws api.Conn) { ws.OnMessage(func(m api.Message) { ws.Send(m) }) }

// within fails the test when ch does not yield within d.
func within[T any](t *testing.T, d time.Duration, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("timed out after %v waiting for %s", d, what)
	}
	var zero T
	return zero
}
