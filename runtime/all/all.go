// Package all registers every runtime that is built into the program.
package all

import (
	_ "github.com/wsmatrix/wsmatrix/runtime/stdhttp" // net/http runtime
)
