//go:build !no_fasthttp

package all

import _ "github.com/wsmatrix/wsmatrix/runtime/fasthttp" // fasthttp runtime
