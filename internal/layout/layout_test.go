// Package layout_test checks the rule of docs/architecture.md that
// dependencies point down only: cmd → runtime/all → runtime/* →
// internal/conn → internal/wire → api → internal/hook (the leaf through
// which api hands its WebSocket routes to runtimes without public API) and
// internal/msgbuf (the pool of released messages' storage);
// hub, socketio and handlers see api (and socketio the hub), never a
// runtime or internal/.
package layout_test

import (
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/wsmatrix/wsmatrix/"

// allowed lists, per package (prefix), the module packages it may import.
var allowed = []struct {
	pkg  string
	deps []string
}{
	{"api", []string{"internal/hook", "internal/msgbuf"}},
	{"internal/hook", nil},
	{"internal/msgbuf", nil},
	{"internal/wire", []string{"api"}},
	{"internal/conn", []string{"api", "internal/wire", "internal/hook", "internal/msgbuf"}},
	{"runtime", []string{"api"}},
	{"runtime/runtimetest", []string{"api", "runtime"}},
	{"runtime/stdhttp", []string{"api", "internal/conn", "runtime"}},
	{"runtime/fasthttp", []string{"api", "internal/conn", "runtime"}},
	{"runtime/gnet", []string{"api", "internal/conn", "runtime"}},
	{"runtime/all", []string{"api", "runtime", "runtime/stdhttp", "runtime/fasthttp", "runtime/gnet"}},
	{"hub", []string{"api", "hub"}},
	{"socketio", []string{"api", "hub", "socketio"}},
	{"handlers", []string{"api", "hub"}},
	{"loadtest", nil},
}

func TestDependenciesPointDown(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", `{{.ImportPath}}:{{join .Imports " "}}`, mod+"...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, ":")
		p, ok := strings.CutPrefix(pkg, mod)
		if !ok {
			continue
		}
		rule := -1
		for i, a := range allowed { // the longest matching prefix decides
			if (p == a.pkg || strings.HasPrefix(p, a.pkg+"/")) && (rule < 0 || len(a.pkg) > len(allowed[rule].pkg)) {
				rule = i
			}
		}
		if rule < 0 {
			continue // cmd and examples may import anything
		}
		checked++
		for _, imp := range strings.Fields(imports) {
			d, ok := strings.CutPrefix(imp, mod)
			if !ok {
				continue
			}
			if !permitted(d, allowed[rule].deps) {
				t.Errorf("%s imports %s: docs/architecture.md says dependencies point down (%s may import %v)", p, d, allowed[rule].pkg, allowed[rule].deps)
			}
		}
	}
	if checked < 8 {
		t.Fatalf("only %d packages checked: go list output changed?", checked)
	}
}

func permitted(dep string, deps []string) bool {
	for _, a := range deps {
		if dep == a || strings.HasPrefix(dep, a+"/") {
			return true
		}
	}
	return false
}
