package fasthttp_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/runtime"
	"github.com/wsmatrix/wsmatrix/runtime/fasthttp"
	"github.com/wsmatrix/wsmatrix/runtime/runtimetest"
)

// fasthttp starts a process-wide goroutine that updates the Date header,
// and a server's worker-pool cleaner outlives its Shutdown by up to
// MaxIdleWorkerDuration (10 s by default, as in the example).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"))
}

func TestConformance(t *testing.T) {
	runtimetest.Run(t, func(r *api.Router, o api.Options) (runtime.Runtime, error) {
		return fasthttp.New(r, o)
	}, runtimetest.Config{IdleBlocking: 1, IdleEvent: 0, TLS: true}) // as the package documents
}
