package all

import (
	"slices"

	"github.com/wsmatrix/wsmatrix/runtime"
)

// Default returns the runtime a program uses when none is named: the one
// chosen at build time with the tag default_fasthttp or default_gnet,
// stdhttp otherwise, or, when that one was left out, the first runtime
// built in.
func Default() string {
	names := runtime.Names()
	if slices.Contains(names, buildDefault) || len(names) == 0 {
		return buildDefault
	}
	return names[0]
}
