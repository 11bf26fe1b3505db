package fasthttp_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/runtime"
	"github.com/wsmatrix/wsmatrix/runtime/fasthttp"
	"github.com/wsmatrix/wsmatrix/runtime/runtimetest"
)

// fasthttp starts a process-wide goroutine that updates the Date header.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"))
}

func TestConformance(t *testing.T) {
	runtimetest.Run(t, func(r *api.Router, o api.Options) (runtime.Runtime, error) {
		return fasthttp.New(r, o)
	})
}
