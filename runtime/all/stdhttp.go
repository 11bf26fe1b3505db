//go:build !no_stdhttp

package all

import _ "github.com/wsmatrix/wsmatrix/runtime/stdhttp" // net/http runtime
