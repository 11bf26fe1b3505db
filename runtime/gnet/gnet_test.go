package gnet_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/runtime"
	"github.com/wsmatrix/wsmatrix/runtime/gnet"
	"github.com/wsmatrix/wsmatrix/runtime/runtimetest"
)

// gnet starts a process-wide ants worker pool in its package init; its two
// housekeeping goroutines live as long as the process.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).purgeStaleWorkers"),
		goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).ticktock"),
		goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*goWorker).run.func1"))
}

func TestConformance(t *testing.T) {
	runtimetest.Run(t, func(r *api.Router, o api.Options) (runtime.Runtime, error) {
		return gnet.New(r, o)
	}, runtimetest.Config{IdleBlocking: 1, IdleEvent: 0}) // as the package documents
}
