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
		t.Run(rt, func(t *testing.T) {
			s := startServe(t, "--runtime="+rt)
			resp, err := http.Get("http://" + s.addr + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || strings.TrimSpace(string(b)) != "ok" {
				t.Fatalf("/healthz: %d %q", resp.StatusCode, b)
			}
			shot := filepath.Join(out, "demo-"+rt+".png")
			cmd := exec.Command("node", script, "http://"+s.addr+"/", shot)
			res, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("browser: %v\n%s\nserver logs:\n%s", err, res, s.logs)
			}
			st, err := os.Stat(shot)
			if err != nil || st.Size() < 1000 {
				t.Fatalf("screenshot %s: %v", shot, err)
			}
			t.Logf("%s; screenshot %s (%d bytes)", strings.TrimSpace(string(res)), shot, st.Size())
		})
	}
}
