package main

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsmatrix/wsmatrix/runtime/runtimetest"
)

// run runs the binary to completion and returns its exit code and output.
func runBinary(t *testing.T, bin string, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), out.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, out.String()
}

// TestEveryRuntime runs the same command lines on each runtime.
func TestEveryRuntime(t *testing.T) {
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			if code, out := runBinary(t, binary, nil, "serve", "--runtime="+rt, "--help"); code != 0 || !strings.Contains(out, "-read-limit") || !strings.Contains(out, "WSMATRIX_READ_LIMIT") {
				t.Fatalf("--help: exit %d\n%s", code, out)
			}
			for _, args := range [][]string{{"--read-limit=lots"}, {"--ping-interval=-3s"}, {"--send-queue-full=drop"}, {"--log-format=xml"}, {"--tls-cert=/nonexistent"}} {
				code, out := runBinary(t, binary, nil, append([]string{"serve", "--runtime=" + rt, "--addr=127.0.0.1:0"}, args...)...)
				if code != 2 || strings.Contains(out, "msg=listening") {
					t.Fatalf("%v: exit %d, want 2 before listening\n%s", args, code, out)
				}
			}
			// The environment sets what the command line does not.
			code, out := runBinary(t, binary, []string{"WSMATRIX_READ_LIMIT=lots"}, "serve", "--runtime="+rt, "--addr=127.0.0.1:0")
			if code != 2 || !strings.Contains(out, "WSMATRIX_READ_LIMIT") {
				t.Fatalf("bad environment value: exit %d\n%s", code, out)
			}
		})
	}
	t.Run("environment picks the runtime", func(t *testing.T) {
		cmd := exec.Command(binary, "serve", "--addr=127.0.0.1:0")
		cmd.Env = append(os.Environ(), "WSMATRIX_RUNTIME=gnet")
		s := startCmd(t, cmd)
		if !strings.Contains(s.logs.String(), "runtime=gnet") {
			t.Fatalf("logs: %s", s.logs)
		}
	})
}

var metricLine = regexp.MustCompile(`(?m)^(wsmatrix_\w+)\{([^}]*)\} (\S+)$`)

// TestMetrics scrapes /metrics before and after traffic.
func TestMetrics(t *testing.T) {
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			s := startServe(t, "--runtime="+rt, "--admin-addr=127.0.0.1:0")
			m := regexp.MustCompile(`msg="admin listening" addr=(\S+)`).FindStringSubmatch(s.logs.String())
			if m == nil {
				t.Fatalf("no admin address in logs: %s", s.logs)
			}
			scrape := func() map[string]float64 {
				resp, err := http.Get("http://" + m[1] + "/metrics")
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				got := map[string]float64{}
				for _, l := range metricLine.FindAllStringSubmatch(string(b), -1) {
					if !strings.Contains(l[2], `runtime="`+rt+`"`) {
						t.Fatalf("metric without the runtime label: %s", l[0])
					}
					v, _ := strconv.ParseFloat(l[3], 64)
					got[l[1]+"{"+l[2]+"}"] = v
				}
				return got
			}
			before := scrape()
			c, _, err := websocket.DefaultDialer.Dial("ws://"+s.addr+"/echo", nil)
			if err != nil {
				t.Fatal(err)
			}
			for range 3 {
				c.WriteMessage(websocket.TextMessage, []byte("12345"))
				c.ReadMessage()
			}
			mid := scrape()
			c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4002, ""), time.Now().Add(time.Second))
			c.ReadMessage()
			c.Close()
			// A refused upgrade (wrong version) is counted by status.
			req, _ := http.NewRequest("GET", "http://"+s.addr+"/echo", nil)
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", "websocket")
			req.Header.Set("Sec-WebSocket-Version", "8")
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			var after map[string]float64
			for range 50 {
				after = scrape()
				if after[`wsmatrix_closes_total{code="4002",runtime="`+rt+`"}`] == 1 {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			l := `runtime="` + rt + `"`
			checks := []struct {
				name     string
				from, to float64
			}{
				{`wsmatrix_handshakes_total{` + l + `,status="101"}`, before[`wsmatrix_handshakes_total{`+l+`,status="101"}`], 1},
				{`wsmatrix_connections_open{` + l + `}`, 0, 1},
				{`wsmatrix_messages_total{direction="in",` + l + `}`, 0, 3},
				{`wsmatrix_messages_total{direction="out",` + l + `}`, 0, 3},
				{`wsmatrix_message_bytes_total{direction="in",` + l + `}`, 0, 15},
			}
			for _, c := range checks {
				if mid[c.name] != c.to {
					t.Errorf("%s = %v after traffic, want %v", c.name, mid[c.name], c.to)
				}
			}
			if after[`wsmatrix_connections_open{`+l+`}`] != 0 || after[`wsmatrix_closes_total{code="4002",`+l+`}`] != 1 || after[`wsmatrix_handshakes_total{`+l+`,status="426"}`] != 1 {
				t.Errorf("after close and a refused upgrade: %v", after)
			}
		})
	}
}

// TestTLS serves wss:// on the runtimes that can, and checks gnet refuses.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	for _, rt := range []string{"stdhttp", "fasthttp"} {
		t.Run(rt, func(t *testing.T) {
			s := startServe(t, "--runtime="+rt, "--tls-cert="+certFile, "--tls-key="+keyFile)
			d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: pool}, HandshakeTimeout: 5 * time.Second}
			c, _, err := d.Dial("wss://"+s.addr+"/echo", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			payload := bytes.Repeat([]byte("tls"), 10000)
			c.WriteMessage(websocket.BinaryMessage, payload)
			_, p, err := c.ReadMessage()
			if err != nil || !bytes.Equal(p, payload) {
				t.Fatalf("echo over TLS: %d bytes, %v", len(p), err)
			}
		})
	}
	t.Run("gnet refuses", func(t *testing.T) {
		code, out := runBinary(t, binary, nil, "serve", "--runtime=gnet", "--addr=127.0.0.1:0", "--tls-cert="+certFile, "--tls-key="+keyFile)
		if code != 2 || !strings.Contains(out, "TLS is not supported") {
			t.Fatalf("exit %d\n%s", code, out)
		}
	})
}

func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	cert, pool := runtimetest.SelfSignedCert(t)
	kb, err := x509.MarshalECPrivateKey(cert.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile, pool
}

// TestBuildTags builds binaries with runtimes left out or another default.
func TestBuildTags(t *testing.T) {
	dir := t.TempDir()
	build := func(tags string) string {
		bin := filepath.Join(dir, "wsmatrix-"+strings.ReplaceAll(tags, ",", "-"))
		if out, err := exec.Command("go", "build", "-tags", tags, "-o", bin, ".").CombinedOutput(); err != nil {
			t.Fatalf("go build -tags %s: %v\n%s", tags, err, out)
		}
		return bin
	}
	bin := build("no_gnet,no_fasthttp")
	code, out := runBinary(t, bin, nil, "serve", "--runtime=gnet", "--addr=127.0.0.1:0")
	if code != 2 || !strings.Contains(out, `wsmatrix serve: unknown runtime "gnet" (built with no_gnet); this binary has: stdhttp`) {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if mods, err := exec.Command("go", "version", "-m", bin).CombinedOutput(); err != nil || bytes.Contains(mods, []byte("panjf2000/gnet")) || bytes.Contains(mods, []byte("valyala/fasthttp")) {
		t.Fatalf("modules of a no_gnet,no_fasthttp binary (%v):\n%s", err, mods)
	}
	if code, out := runBinary(t, build("default_gnet"), nil, "runtimes"); code != 0 || !strings.Contains(out, "gnet (default)") {
		t.Fatalf("default_gnet: exit %d\n%s", code, out)
	}
}

// TestBench runs every scenario of `wsmatrix bench` briefly against a
// runtime it starts, and checks the table, the JSON and the SVG.
func TestBench(t *testing.T) {
	dir := t.TempDir()
	for _, sc := range []struct {
		name string
		args []string
	}{
		{"echo", []string{"--conns=5", "--duration=300ms"}},
		{"idle", []string{"--conns=20"}},
		{"idle", []string{"--conns=20", "--headers=browser", "--inflight=2"}},
		{"broadcast", []string{"--conns=10", "--rate=50", "--duration=300ms"}},
		{"connect", []string{"--conns=4", "--duration=300ms", "--paths=/echo"}},
	} {
		t.Run(sc.name, func(t *testing.T) {
			js, svg := filepath.Join(dir, sc.name+".json"), filepath.Join(dir, sc.name+".svg")
			args := append([]string{"bench", "--scenario=" + sc.name, "--runtimes=stdhttp,gnet", "--server-cpu=-1", "--client-cpu=-1",
				"--json=" + js, "--svg=" + svg}, sc.args...)
			code, out := runBinary(t, binary, nil, args...)
			if code != 0 || !strings.Contains(out, "| gnet /") || !strings.Contains(out, "ratio:") {
				t.Fatalf("exit %d\n%s", code, out)
			}
			var rep struct {
				Scenario string
				Targets  []struct {
					Name   string
					Figure float64
					Result map[string]any
				}
			}
			b, err := os.ReadFile(js)
			if err != nil || json.Unmarshal(b, &rep) != nil || rep.Scenario != sc.name || len(rep.Targets) < 2 || len(rep.Targets[1].Result) == 0 {
				t.Fatalf("JSON: %v\n%s", err, b)
			}
			if b, err := os.ReadFile(svg); err != nil || !bytes.HasPrefix(b, []byte("<svg")) || !bytes.Contains(b, []byte("gnet /")) {
				t.Fatalf("SVG: %v\n%s", err, b)
			}
		})
	}
	if code, out := runBinary(t, binary, nil, "bench", "--scenario=nope"); code != 2 {
		t.Fatalf("bad scenario: exit %d\n%s", code, out)
	}
	if code, out := runBinary(t, binary, nil, "bench", "--scenario=idle", "--headers=firefox"); code != 2 || !strings.Contains(out, "none or browser") {
		t.Fatalf("bad --headers: exit %d\n%s", code, out)
	}
}

// TestBenchRounds: --rounds measures every target again, every second
// round in reverse order, and --baseline takes each round's ratios
// against the target it names, in the table, the JSON and the medians.
func TestBenchRounds(t *testing.T) {
	type report struct {
		Targets []struct {
			Name          string
			Round         int
			Figure, Ratio float64
			Result        struct {
				Messages  float64
				ClientCPU float64 `json:"client_cpu_ns"`
			}
		}
		Medians []struct {
			Name                  string
			Figures, Ratios       []float64
			Median                float64
			MedianRatio           float64   `json:"median_ratio"`
			NormalizedRatios      []float64 `json:"normalized_ratios"`
			NormalizedMedianRatio float64   `json:"normalized_median_ratio"`
		}
	}
	run := func(t *testing.T, rounds int) (report, string) {
		js := filepath.Join(t.TempDir(), "rounds.json")
		code, out := runBinary(t, binary, nil, "bench", "--scenario=echo", "--conns=5", "--duration=300ms", "--runtimes=stdhttp,gnet", "--paths=/echo",
			"--server-cpu=-1", "--client-cpu=-1", "--rounds="+strconv.Itoa(rounds), "--baseline=gnet", "--json="+js)
		if code != 0 || !strings.Contains(out, "against gnet /echo") {
			t.Fatalf("exit %d\n%s", code, out)
		}
		var rep report
		b, err := os.ReadFile(js)
		if err != nil || json.Unmarshal(b, &rep) != nil {
			t.Fatalf("JSON: %v\n%s", err, b)
		}
		gnet := map[int]float64{}
		for _, tg := range rep.Targets {
			if tg.Name == "gnet /echo" {
				gnet[tg.Round] = tg.Figure
			}
		}
		for _, tg := range rep.Targets {
			// The table prints every row with its round's ratio, the
			// rows measured before the baseline included.
			name := tg.Name
			if rounds > 1 {
				name = fmt.Sprintf("%s (round %d)", tg.Name, tg.Round)
			}
			m := regexp.MustCompile(`(?m)^\| ` + regexp.QuoteMeta(name) + ` \|.* \| ([0-9.]+) \|$`).FindStringSubmatch(out)
			if tg.Figure <= 0 || math.Abs(tg.Ratio-tg.Figure/gnet[tg.Round]) > 1e-9 || m == nil || m[1] != fmt.Sprintf("%.2f", tg.Ratio) {
				t.Fatalf("%d %s: figure %v, ratio %v, gnet's %v, table %q\n%s", tg.Round, tg.Name, tg.Figure, tg.Ratio, gnet[tg.Round], m, out)
			}
		}
		return rep, out
	}
	t.Run("one round", func(t *testing.T) {
		rep, out := run(t, 1)
		if len(rep.Targets) != 2 || rep.Medians != nil || strings.Contains(out, "median") {
			t.Fatalf("%+v\n%s", rep, out)
		}
	})
	t.Run("three rounds", func(t *testing.T) {
		rep, out := run(t, 3)
		var order []string
		for _, tg := range rep.Targets {
			order = append(order, fmt.Sprintf("%d %s", tg.Round, tg.Name))
		}
		want := []string{"1 stdhttp /echo", "1 gnet /echo", "2 gnet /echo", "2 stdhttp /echo", "3 stdhttp /echo", "3 gnet /echo"}
		if !slices.Equal(order, want) || !strings.Contains(out, "| median ratio | normalized ratio per round | median |") {
			t.Fatalf("order %q, want %q\n%s", order, want, out)
		}
		if len(rep.Medians) != 2 || rep.Medians[0].Name != "stdhttp /echo" || rep.Medians[1].Name != "gnet /echo" {
			t.Fatalf("medians: %+v", rep.Medians)
		}
		gnet := rep.Medians[1]
		// normalized: the figure over the client's CPU µs per echo of the
		// same measurement, against gnet's of the same round.
		norm := map[string][]float64{}
		for _, tg := range rep.Targets {
			norm[tg.Name] = append(norm[tg.Name], tg.Figure/(tg.Result.ClientCPU/1000/tg.Result.Messages))
		}
		for _, m := range rep.Medians {
			if len(m.NormalizedRatios) != 3 {
				t.Fatalf("%s: normalized ratios %v", m.Name, m.NormalizedRatios)
			}
			for r, v := range m.NormalizedRatios {
				if want := norm[m.Name][r] / norm["gnet /echo"][r]; math.Abs(v-want) > 1e-9 {
					t.Fatalf("%s: round %d normalized ratio %v, want %v", m.Name, r+1, v, want)
				}
			}
			if n := slices.Sorted(slices.Values(m.NormalizedRatios)); m.NormalizedMedianRatio != n[1] {
				t.Fatalf("%s: normalized median %v of %v", m.Name, m.NormalizedMedianRatio, m.NormalizedRatios)
			}
		}
		for _, m := range rep.Medians {
			var figures []float64
			for _, tg := range rep.Targets {
				if tg.Name == m.Name {
					figures = append(figures, tg.Figure) // in round order: rounds run one after another
				}
			}
			if !slices.Equal(m.Figures, figures) || len(m.Ratios) != 3 {
				t.Fatalf("%s: figures %v, measured %v", m.Name, m.Figures, figures)
			}
			for r := range m.Ratios {
				if math.Abs(m.Ratios[r]-m.Figures[r]/gnet.Figures[r]) > 1e-9 {
					t.Fatalf("%s: round %d ratio %v, figures %v, gnet's %v", m.Name, r+1, m.Ratios[r], m.Figures, gnet.Figures)
				}
			}
			f := slices.Sorted(slices.Values(m.Figures))
			r := slices.Sorted(slices.Values(m.Ratios))
			if m.Median != f[1] || m.MedianRatio != r[1] {
				t.Fatalf("%s: median %v of %v, median ratio %v of %v", m.Name, m.Median, m.Figures, m.MedianRatio, m.Ratios)
			}
		}
	})
	for _, bad := range []struct {
		flags []string
		want  string
	}{
		{[]string{"--rounds=0"}, "at least 1"},
		{[]string{"--baseline=stdhttp"}, `"stdhttp" matches stdhttp /echo and stdhttp /echo-event`},
		{[]string{"--baseline=nope"}, `"nope" names none of the targets`},
		{[]string{"--url=ws://127.0.0.1:1/echo", "--pid=1", "--runtimes=gnet", "--peers=a=/bin/true"}, "--peers, --runtimes would be ignored"},
	} {
		if code, out := runBinary(t, binary, nil, append([]string{"bench", "--client-cpu=-1"}, bad.flags...)...); code != 2 || !strings.Contains(out, bad.want) {
			t.Fatalf("%s: exit %d\n%s", bad.flags, code, out)
		}
	}
	// A run whose baseline never starts: what was measured is printed
	// and written, without a ratio.
	t.Run("baseline fails", func(t *testing.T) {
		js := filepath.Join(t.TempDir(), "failed.json")
		code, out := runBinary(t, binary, nil, "bench", "--scenario=echo", "--conns=5", "--duration=300ms", "--runtimes=stdhttp", "--paths=/echo",
			"--server-cpu=-1", "--client-cpu=-1", "--peers=bad=/bin/false", "--baseline=bad", "--json="+js)
		if code != 1 || !strings.Contains(out, "bad /echo: server bad did not start") || !regexp.MustCompile(`(?m)^\| stdhttp /echo \|.* \| … \|$`).MatchString(out) {
			t.Fatalf("exit %d\n%s", code, out)
		}
		b, err := os.ReadFile(js)
		if err != nil || !bytes.Contains(b, []byte(`"name": "stdhttp /echo"`)) || bytes.Contains(b, []byte(`"ratio"`)) || !bytes.Contains(b, []byte(`"baseline": "bad /echo"`)) {
			t.Fatalf("JSON: %v\n%s", err, b)
		}
	})
}

// TestBenchInterrupted: a bench stopped by SIGTERM while its second
// target runs stops that server and writes what it measured, the first
// target with its ratio; one killed outright (SIGKILL) takes its server
// along all the same.
func TestBenchInterrupted(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			js := filepath.Join(t.TempDir(), "cut.json")
			mark := fmt.Sprintf("WSMATRIX_TEST_MARK=%d-%d", os.Getpid(), time.Now().UnixNano())
			cmd := exec.Command(binary, "bench", "--scenario=echo", "--conns=5", "--duration=6s", "--runtimes=stdhttp,gnet", "--paths=/echo",
				"--server-cpu=-1", "--client-cpu=-1", "--json="+js)
			cmd.Env = append(os.Environ(), mark)   // the servers it starts inherit it
			t.Cleanup(func() { killMarked(mark) }) // what a failing run left
			errp, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			cmd.Stdout = &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// The progress line names the target being measured.
			sc := bufio.NewScanner(errp)
			sc.Split(func(data []byte, atEOF bool) (int, []byte, error) {
				if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
					return i + 1, data[:i], nil
				}
				if atEOF && len(data) > 0 {
					return len(data), data, nil
				}
				return 0, nil, nil
			})
			var stderr strings.Builder
			for sc.Scan() {
				stderr.WriteString(sc.Text() + "\n")
				if strings.Contains(sc.Text(), "gnet /echo: ") {
					break
				}
			}
			if !strings.Contains(stderr.String(), "gnet /echo: ") {
				t.Fatalf("the second target never ran:\n%s", stderr.String())
			}
			if n := marked(mark); n < 2 {
				t.Fatalf("%d processes with the mark: want bench and its server", n)
			}
			cmd.Process.Signal(sig)
			for sc.Scan() { // to bench's end, before Wait closes the pipe
				stderr.WriteString(sc.Text() + "\n")
			}
			err = cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Success() {
				t.Fatalf("bench ended with %v after %v", err, sig)
			}
			deadline := time.Now().Add(10 * time.Second)
			for marked(mark) > 0 {
				if time.Now().After(deadline) {
					t.Fatalf("a server bench started still runs 10 s after bench got %v", sig)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if sig == syscall.SIGKILL {
				return
			}
			var rep struct {
				Baseline string
				Targets  []struct {
					Name   string
					Figure float64
					Ratio  *float64
				}
			}
			b, err := os.ReadFile(js)
			if err != nil || json.Unmarshal(b, &rep) != nil {
				t.Fatalf("JSON: %v\n%s\n%s", err, b, stderr.String())
			}
			if rep.Baseline != "stdhttp /echo" || len(rep.Targets) != 1 || rep.Targets[0].Name != "stdhttp /echo" || rep.Targets[0].Figure <= 0 ||
				rep.Targets[0].Ratio == nil || *rep.Targets[0].Ratio != 1 {
				t.Fatalf("JSON after %v: %s", sig, b)
			}
			if !strings.Contains(stderr.String(), "gnet /echo: interrupted") || !strings.Contains(out.String(), "| stdhttp /echo |") {
				t.Fatalf("stdout:\n%s\nstderr:\n%s", out.String(), stderr.String())
			}
		})
	}
}

// marked counts the processes whose environment holds mark.
func marked(mark string) int { return len(markedPIDs(mark)) }

func markedPIDs(mark string) []int {
	var pids []int
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile("/proc/" + d.Name() + "/environ")
		if err == nil && bytes.Contains(b, []byte(mark+"\x00")) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func killMarked(mark string) {
	for _, pid := range markedPIDs(mark) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// TestReturnMemoryAfterConnecting: the handshakes of a few thousand
// connections leave garbage that --return-memory gives back once they
// are all open and quiet.
func TestReturnMemoryAfterConnecting(t *testing.T) {
	s := startServe(t, "--runtime=gnet", "--admin-addr=127.0.0.1:0", "--return-memory=200ms")
	admin := s.admin(t)
	scrape := func() (returns, bytes float64) {
		m := wsmatrixMetrics(t, admin)
		return m["wsmatrix_memory_returns_total"], m["wsmatrix_memory_returned_bytes_total"]
	}
	if n, _ := scrape(); n != 0 {
		t.Fatalf("%v returns before any connection", n)
	}
	const conns = 3000
	for range conns {
		c, _, err := websocket.DefaultDialer.Dial("ws://"+s.addr+"/echo-event", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	var returns, bytes float64
	for deadline := time.Now().Add(15 * time.Second); returns == 0 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		returns, bytes = scrape()
	}
	status, _ := os.ReadFile("/proc/" + strconv.Itoa(s.cmd.Process.Pid) + "/status")
	rss := regexp.MustCompile(`VmRSS:\s+\d+ kB`).Find(status)
	t.Logf("%d connections: %v returns, %.1f MiB returned; server %s", conns, returns, bytes/(1<<20), rss)
	if returns == 0 || bytes == 0 {
		t.Fatalf("nothing returned in 15 s after %d handshakes (%v returns, %v bytes)", conns, returns, bytes)
	}
}

// With the return off, its counters are still exported, at 0: a
// dashboard tells "off" from "never needed" by the flag, not by a gap.
func TestReturnMemoryOffExportsZero(t *testing.T) {
	s := startServe(t, "--admin-addr=127.0.0.1:0", "--return-memory=0")
	m := wsmatrixMetrics(t, s.admin(t))
	for _, name := range []string{"wsmatrix_memory_returns_total", "wsmatrix_memory_returned_bytes_total"} {
		if v, ok := m[name]; !ok || v != 0 {
			t.Errorf("%s not exported at 0 with --return-memory=0", name)
		}
	}
}

// wsmatrixMetrics scrapes the wsmatrix_ metrics of a server's admin
// address, by name (their one label, the runtime, left out).
func wsmatrixMetrics(t *testing.T, admin string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	got := map[string]float64{}
	for _, l := range metricLine.FindAllStringSubmatch(string(b), -1) {
		v, _ := strconv.ParseFloat(l[3], 64)
		got[l[1]] = v
	}
	return got
}
