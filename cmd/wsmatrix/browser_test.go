package main

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBrowserDemo loads the demo page from each runtime in Chromium
// (playwright-core from interop/, Debian's /usr/bin/chromium), types
// lines and sees them echoed. The screenshots stay in the test's output
// directory (WSMATRIX_SCREENSHOTS, or a temporary one), named in the log.
func TestBrowserDemo(t *testing.T) {
	script, err := filepath.Abs("../../interop/browser-echo.mjs")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("../../interop/node_modules/playwright-core"); err != nil {
		t.Fatalf("playwright-core is not installed: run `npm ci --prefix interop` (.ci/run does): %v", err)
	}
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		t.Fatalf("chromium is not installed: `apt-get install -y chromium` (.ci/run does): %v", err)
	}
	out := os.Getenv("WSMATRIX_SCREENSHOTS")
	if out == "" {
		out = filepath.Join(os.TempDir(), "wsmatrix-screenshots")
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, rt := range runtimes {
		for _, compression := range []string{"off", "no-context-takeover", "context-takeover"} {
			t.Run(rt+"/compression="+compression, func(t *testing.T) {
				browserDemo(t, script, out, rt, compression)
			})
		}
	}
}

func browserDemo(t *testing.T, script, out, rt, compression string) {
	s := startServe(t, "--runtime="+rt, "--compression="+compression)
	resp, err := http.Get("http://" + s.addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(b)) != "ok" {
		t.Fatalf("/healthz: %d %q", resp.StatusCode, b)
	}
	shot := filepath.Join(out, "demo-"+rt+"-"+compression+".png")
	res, err := exec.Command("node", script, "http://"+s.addr+"/", shot).CombinedOutput()
	if err != nil {
		t.Fatalf("browser: %v\n%s\nserver logs:\n%s", err, res, s.logs)
	}
	st, err := os.Stat(shot)
	if err != nil || st.Size() < 1000 {
		t.Fatalf("screenshot %s: %v", shot, err)
	}
	// Chromium offers permessage-deflate on every socket.
	negotiated := strings.Contains(string(res), `extensions "permessage-deflate`)
	if negotiated != (compression != "off") {
		t.Fatalf("compression %s, the browser negotiated: %s", compression, res)
	}
	t.Logf("%s (%d bytes)", strings.TrimSpace(string(res)), st.Size())
}
