package runtime_test

import (
	"context"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/runtime"
)

type fake struct{ name string }

func (f fake) Name() string                 { return f.name }
func (fake) Start(string) (net.Addr, error) { return nil, nil }
func (fake) Shutdown(context.Context) error { return nil }
func newFake(name string) runtime.Factory {
	return func(*api.Router, api.Options) (runtime.Runtime, error) { return fake{name}, nil }
}

func TestRegistry(t *testing.T) {
	runtime.Register("test-b", newFake("test-b"))
	runtime.Register("test-a", newFake("test-a"))
	names := runtime.Names()
	if !slices.IsSorted(names) || !slices.Contains(names, "test-a") || !slices.Contains(names, "test-b") {
		t.Fatalf("Names() = %v", names)
	}
	rt, err := runtime.New("test-a", api.NewRouter(), api.Options{})
	if err != nil || rt.Name() != "test-a" {
		t.Fatalf("New: %v %v", rt, err)
	}
	_, err = runtime.New("nope", api.NewRouter(), api.Options{})
	if err == nil || !strings.Contains(err.Error(), `unknown runtime "nope" (forgotten import?)`) || !strings.Contains(err.Error(), "test-a") {
		t.Fatalf("unknown runtime: %v", err)
	}
	if _, err := runtime.New("test-a", nil, api.Options{}); err == nil {
		t.Fatal("nil router accepted")
	}
}

func TestRegisterPanics(t *testing.T) {
	for name, f := range map[string]func(){
		"nil":       func() { runtime.Register("test-nil", nil) },
		"duplicate": func() { runtime.Register("test-dup", newFake("x")); runtime.Register("test-dup", newFake("x")) },
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
