//go:build !no_gnet

package all

import _ "github.com/wsmatrix/wsmatrix/runtime/gnet" // gnet v2 event-loop runtime
