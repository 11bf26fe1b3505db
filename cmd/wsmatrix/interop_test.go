package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDeflateInterop echoes through each runtime with real clients that
// compress: npm ws (perMessageDeflate, threshold 0: it compresses every
// message) and Debian's python3-websockets, with and without context
// takeover and with 9-bit windows. The bytes on ws's socket show that
// both directions were compressed.
func TestDeflateInterop(t *testing.T) {
	wsScript, _ := filepath.Abs("../../interop/ws-echo.mjs")
	pyScript, _ := filepath.Abs("../../interop/websockets_echo.py")
	for _, rt := range runtimes {
		for _, mode := range []string{"no-context-takeover", "context-takeover"} {
			t.Run(rt+"/"+mode, func(t *testing.T) {
				s := startServe(t, "--runtime="+rt, "--compression="+mode)
				url := "ws://" + s.addr + "/echo"
				for _, opts := range []string{`{}`, `{"serverMaxWindowBits":9,"clientMaxWindowBits":9}`, `{"serverNoContextTakeover":true,"clientNoContextTakeover":true}`} {
					out, err := exec.Command("node", wsScript, url, opts).CombinedOutput()
					if err != nil {
						t.Fatalf("ws %s: %v\n%s\nserver logs:\n%s", opts, err, out, s.logs)
					}
					var r struct {
						Extensions               string
						Payload, WireOut, WireIn int
					}
					if err := json.Unmarshal(out, &r); err != nil {
						t.Fatalf("ws %s: %s", opts, out)
					}
					if !strings.HasPrefix(r.Extensions, "permessage-deflate") || r.WireOut > r.Payload/4 || r.WireIn > r.Payload/4 {
						t.Fatalf("ws %s: extensions %q, %d bytes of messages went out as %d and came back as %d: not compressed both ways", opts, r.Extensions, r.Payload, r.WireOut, r.WireIn)
					}
					t.Logf("ws %s: %s", opts, out)
				}
				for _, bits := range []string{"0", "9"} {
					out, err := exec.Command("/usr/bin/python3", pyScript, url, bits).CombinedOutput()
					if err != nil {
						t.Fatalf("websockets (window bits %s): %v\n%s\nserver logs:\n%s", bits, err, out, s.logs)
					}
					if !strings.Contains(string(out), "PerMessageDeflate") {
						t.Fatalf("websockets (window bits %s) did not negotiate: %s", bits, out)
					}
				}
			})
		}
	}
}
