package runtime_test

import (
	"context"
	"fmt"
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

// unique makes registry names that a repeated test run (-count) has not
// registered yet: the registry is process-wide.
func unique(name string) string {
	seq++
	return fmt.Sprintf("%s-%d", name, seq)
}

var seq int

func TestRegistry(t *testing.T) {
	a, b := unique("test-a"), unique("test-b")
	runtime.Register(b, newFake(b))
	runtime.Register(a, newFake(a))
	names := runtime.Names()
	if !slices.IsSorted(names) || !slices.Contains(names, a) || !slices.Contains(names, b) {
		t.Fatalf("Names() = %v", names)
	}
	rt, err := runtime.New(a, api.NewRouter(), api.Options{})
	if err != nil || rt.Name() != a {
		t.Fatalf("New: %v %v", rt, err)
	}
	_, err = runtime.New("nope", api.NewRouter(), api.Options{})
	if err == nil || !strings.Contains(err.Error(), `unknown runtime "nope" (forgotten import?)`) || !strings.Contains(err.Error(), a) {
		t.Fatalf("unknown runtime: %v", err)
	}
	if _, err := runtime.New(a, nil, api.Options{}); err == nil {
		t.Fatal("nil router accepted")
	}
}

func TestRegisterPanics(t *testing.T) {
	for name, f := range map[string]func(){
		"nil":       func() { runtime.Register(unique("test-nil"), nil) },
		"duplicate": func() { d := unique("test-dup"); runtime.Register(d, newFake(d)); runtime.Register(d, newFake(d)) },
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
