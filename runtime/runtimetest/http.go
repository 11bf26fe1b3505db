package runtimetest

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/gobwas/ws"
	"github.com/wsmatrix/wsmatrix/api"
)

// httpCases hold every runtime to HTTP/1.1 as net/http speaks it, for the
// router's plain routes on the same port as its WebSocket routes.
func httpCases() []testCase {
	return []testCase{
		{"http/page_and_socket_share_a_path", func(t *testing.T, k *kit) {
			s := k.app(testOptions())
			resp := k.get(t, s, "/chat")
			if resp.StatusCode != 200 || resp.body != "chat page" {
				t.Fatalf("plain GET /chat: %d %q, want the page", resp.StatusCode, resp.body)
			}
			c := dial(t, s.addr, "/chat")
			c.text("hi")
			c.expectMessage(ws.OpText, []byte("hi"))
		}},
		{"http/404_405_and_426", func(t *testing.T, k *kit) {
			s := k.app(testOptions())
			if r := k.get(t, s, "/nowhere"); r.StatusCode != 404 {
				t.Fatalf("unknown path: %d", r.StatusCode)
			}
			req, _ := http.NewRequest("DELETE", "http://"+s.addr+"/chat", nil)
			r := k.do(t, req)
			if r.StatusCode != 405 || !strings.Contains(r.Header.Get("Allow"), "GET") {
				t.Fatalf("DELETE /chat: %d Allow %q, want 405 with GET allowed", r.StatusCode, r.Header.Get("Allow"))
			}
			if r := k.get(t, s, "/echo"); r.StatusCode != 426 {
				t.Fatalf("plain GET of a WebSocket-only route: %d, want 426", r.StatusCode)
			}
		}},
		{"http/path_values_methods_and_middleware", func(t *testing.T, k *kit) {
			s := k.app(testOptions())
			req, _ := http.NewRequest("POST", "http://"+s.addr+"/api/items/42", strings.NewReader("x"))
			r := k.do(t, req)
			if r.StatusCode != 201 || r.body != "item 42" || r.Header.Get("X-Middleware") != "ran" {
				t.Fatalf("POST /api/items/42: %d %q middleware %q", r.StatusCode, r.body, r.Header.Get("X-Middleware"))
			}
			if r := k.get(t, s, "/private"); r.StatusCode != 401 {
				t.Fatalf("middleware refusal: %d, want 401", r.StatusCode)
			}
		}},
		{"http/keep_alive_with_go_client", func(t *testing.T, k *kit) {
			s := k.app(testOptions())
			reused := 0
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			defer client.CloseIdleConnections()
			for i := range 50 {
				trace := &httptrace.ClientTrace{GotConn: func(ci httptrace.GotConnInfo) {
					if ci.Reused {
						reused++
					}
				}}
				req, _ := http.NewRequest("GET", "http://"+s.addr+"/hello?n="+strconv.Itoa(i), nil)
				req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
				resp, err := client.Do(req)
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(b) != "hello "+strconv.Itoa(i) {
					t.Fatalf("request %d: %q", i, b)
				}
			}
			if reused != 49 {
				t.Fatalf("%d of 49 requests reused the connection", reused)
			}
		}},
		{"http/upgrade_pipelined_behind_pages_answered_after_them", func(t *testing.T, k *kit) {
			// Responses go out in the order of the requests (RFC 9112
			// 9.3.2), the 101 of an upgrade pipelined behind pages
			// included: fasthttp held the pages' answers until the last
			// request and the 101 went out before them.
			s := k.app(testOptions())
			nc, br := rawConn(t, s.addr)
			io.WriteString(nc, "GET /hello?n=1 HTTP/1.1\r\nHost: x\r\n\r\nGET /hello?n=2 HTTP/1.1\r\nHost: x\r\n\r\n"+
				"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
			for i := 1; i <= 2; i++ {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("response %d: %v", i, err)
				}
				body, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != 200 || string(body) != "hello "+strconv.Itoa(i) {
					t.Fatalf("response %d: %d %q, want the page", i, resp.StatusCode, body)
				}
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("third response: %v %v, want 101", resp, err)
			}
			c := &client{t: t, conn: nc, br: br}
			c.text("after the pages")
			c.expectMessage(ws.OpText, []byte("after the pages"))
		}},
		{"http/pipelined_requests_answered_in_order", func(t *testing.T, k *kit) {
			s := k.app(testOptions())
			nc, br := rawConn(t, s.addr)
			var b strings.Builder
			for i := range 10 {
				fmt.Fprintf(&b, "GET /hello?n=%d HTTP/1.1\r\nHost: x\r\n\r\n", i)
			}
			io.WriteString(nc, b.String()) // one write: ten requests
			for i := range 10 {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("response %d: %v", i, err)
				}
				body, _ := io.ReadAll(resp.Body)
				if string(body) != "hello "+strconv.Itoa(i) {
					t.Fatalf("response %d: %q", i, body)
				}
			}
		}},
		{"http/request_bodies_content_length_and_chunked", func(t *testing.T, k *kit) {
			s := k.app(testOptions())
			payload := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
			sum := fmt.Sprintf("%x", sha256.Sum256(payload))
			for _, chunked := range []bool{false, true} {
				var body io.Reader = bytes.NewReader(payload)
				if chunked {
					body = io.MultiReader(body) // no length known: the client sends chunks
				}
				req, _ := http.NewRequest("POST", "http://"+s.addr+"/upload", body)
				r := k.do(t, req)
				if r.StatusCode != 200 || r.body != sum {
					t.Fatalf("chunked %v: %d %q, want the body's sha256", chunked, r.StatusCode, r.body)
				}
			}
		}},
		{"http/head_answers_headers_only", func(t *testing.T, k *kit) {
			s := k.app(testOptions())
			nc, br := rawConn(t, s.addr)
			io.WriteString(nc, "HEAD /big HTTP/1.1\r\nHost: x\r\n\r\nGET /hello?n=1 HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, err := http.ReadResponse(br, &http.Request{Method: "HEAD"})
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("HEAD: %v %v", resp, err)
			}
			resp, err = http.ReadResponse(br, nil) // the next response follows at once: HEAD sent no body
			if err != nil {
				t.Fatalf("after HEAD: %v", err)
			}
			if b, _ := io.ReadAll(resp.Body); string(b) != "hello 1" {
				t.Fatalf("after HEAD: %q", b)
			}
		}},
		{"http/expect_100_continue", func(t *testing.T, k *kit) {
			s := k.app(testOptions())
			nc, br := rawConn(t, s.addr)
			io.WriteString(nc, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
			line, err := br.ReadString('\n')
			if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
				t.Fatalf("before the body: %q %v, want 100 Continue", line, err)
			}
			br.ReadString('\n') // the blank line after the interim response
			io.WriteString(nc, "hello")
			resp, err := http.ReadResponse(br, nil)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("after the body: %v %v", resp, err)
			}
			if b, _ := io.ReadAll(resp.Body); string(b) != fmt.Sprintf("%x", sha256.Sum256([]byte("hello"))) {
				t.Fatalf("body hash %q", b)
			}
		}},
		{"http/large_response_streams_while_sockets_are_served", func(t *testing.T, k *kit) {
			s := k.app(testOptions())
			resp, err := http.Get("http://" + s.addr + "/stream")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			first := make([]byte, 1<<20)
			if _, err := io.ReadFull(resp.Body, first); err != nil {
				t.Fatal(err)
			}
			// The stream waits for us: the server must go on serving sockets.
			c := dial(t, s.addr, "/echo")
			c.text("while streaming")
			c.expectMessage(ws.OpText, []byte("while streaming"))
			n, err := io.Copy(io.Discard, resp.Body)
			if err != nil || n+int64(len(first)) != 64<<20 {
				t.Fatalf("streamed %d bytes (%v), want 64 MiB", n+int64(len(first)), err)
			}
		}},
		{"http/file_server_ranges_and_conditional_requests", func(t *testing.T, k *kit) {
			s := k.app(testOptions())
			req, _ := http.NewRequest("GET", "http://"+s.addr+"/files/hello.txt", nil)
			req.Header.Set("Range", "bytes=6-10")
			r := k.do(t, req)
			if r.StatusCode != 206 || r.body != "world" {
				t.Fatalf("range: %d %q, want 206 world", r.StatusCode, r.body)
			}
			req, _ = http.NewRequest("GET", "http://"+s.addr+"/files/hello.txt", nil)
			req.Header.Set("If-Modified-Since", time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).Format(http.TimeFormat))
			if r := k.do(t, req); r.StatusCode != 304 {
				t.Fatalf("If-Modified-Since: %d, want 304", r.StatusCode)
			}
			req, _ = http.NewRequest("GET", "http://"+s.addr+"/content", nil)
			req.Header.Set("If-None-Match", `"v1"`)
			if r := k.do(t, req); r.StatusCode != 304 {
				t.Fatalf("If-None-Match: %d, want 304", r.StatusCode)
			}
			req, _ = http.NewRequest("GET", "http://"+s.addr+"/content", nil)
			req.Header.Set("Range", "bytes=-3")
			if r := k.do(t, req); r.StatusCode != 206 || r.body != "xyz" {
				t.Fatalf("ServeContent range: %d %q", r.StatusCode, r.body)
			}
		}},
		{"http/slow_request_head_is_cut", func(t *testing.T, k *kit) {
			o := testOptions()
			o.HandshakeTimeout = 300 * time.Millisecond
			s := k.app(o)
			nc, br := rawConn(t, s.addr)
			io.WriteString(nc, "GET /hello HTTP/1.1\r\nHost: x\r\n") // and never the blank line
			start := time.Now()
			nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			io.Copy(io.Discard, br) // until the server closes
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("a request head that never ends was held %v (HandshakeTimeout %v)", d, o.HandshakeTimeout)
			}
		}},
		{"http/client_that_stops_reading_is_cut", func(t *testing.T, k *kit) {
			o := testOptions()
			o.WriteTimeout = 300 * time.Millisecond
			s := k.app(o)
			nc, _ := rawConn(t, s.addr)
			nc.(*net.TCPConn).SetReadBuffer(4096)
			io.WriteString(nc, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n") // and never read
			time.Sleep(2 * time.Second)                                   // the stream stalls, the write times out
			nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, _ := io.Copy(io.Discard, nc)
			if n >= 64<<20 {
				t.Fatal("the whole stream arrived: the server never gave up on a client that stopped reading")
			}
		}},
		{"http/oversized_head_gets_431", func(t *testing.T, k *kit) {
			o := testOptions()
			o.MaxHeaderBytes = 4096
			s := k.app(o)
			nc, br := rawConn(t, s.addr)
			io.WriteString(nc, "GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 64<<10)+"\r\n\r\n")
			resp, err := http.ReadResponse(br, nil)
			if err != nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
				t.Fatalf("a 64 KiB head with MaxHeaderBytes 4096: %v %v, want 431", resp, err)
			}
		}},
		{"http/keep_alive_outlasts_the_handshake_timeout", func(t *testing.T, k *kit) {
			// HandshakeTimeout bounds a request's head once it starts; an
			// idle keep-alive connection waits KeepAliveIdle (60 s) for one.
			o := testOptions()
			o.HandshakeTimeout = 300 * time.Millisecond
			s := k.app(o)
			nc, br := rawConn(t, s.addr)
			for i := range 2 {
				if i == 1 {
					time.Sleep(time.Second)
				}
				if _, err := io.WriteString(nc, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil || resp.StatusCode != http.StatusOK {
					t.Fatalf("request %d, the second after 1 s idle with HandshakeTimeout 300ms: %v %v", i, resp, err)
				}
				io.ReadAll(resp.Body)
			}
		}},
		{"http/head_just_over_the_limit_gets_431", func(t *testing.T, k *kit) {
			// net/http reads 4 KiB past its MaxHeaderBytes; the limit is
			// the same on every runtime.
			o := testOptions()
			o.MaxHeaderBytes = 8192
			s := k.app(o)
			for _, c := range []struct {
				size   int
				status int
			}{{8000, http.StatusOK}, {8300, http.StatusRequestHeaderFieldsTooLarge}, {12000, http.StatusRequestHeaderFieldsTooLarge}} {
				nc, br := rawConn(t, s.addr)
				head := "GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: "
				io.WriteString(nc, head+strings.Repeat("a", c.size-len(head)-4)+"\r\n\r\n")
				resp, err := http.ReadResponse(br, nil)
				if err != nil || resp.StatusCode != c.status {
					t.Fatalf("a %d-byte head with MaxHeaderBytes 8192: %v %v, want %d", c.size, resp, err, c.status)
				}
				nc.Close()
			}
		}},
		{"http/upgrade_after_plain_requests_on_one_connection", func(t *testing.T, k *kit) {
			s := k.app(testOptions())
			nc, br := rawConn(t, s.addr)
			for i := range 3 {
				fmt.Fprintf(nc, "GET /hello?n=%d HTTP/1.1\r\nHost: x\r\n\r\n", i)
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
				io.ReadAll(resp.Body)
			}
			io.WriteString(nc, upgradeHead(s.addr, "/echo"))
			resp, err := http.ReadResponse(br, nil)
			if err != nil || resp.StatusCode != 101 {
				t.Fatalf("upgrade after three requests: %v %v", resp, err)
			}
			c := &client{t: t, conn: nc, br: br, resp: resp}
			nc.SetDeadline(time.Time{})
			c.text("upgraded")
			c.expectMessage(ws.OpText, []byte("upgraded"))
		}},
		{"http/browser_shaped_request", func(t *testing.T, k *kit) {
			s := k.app(testOptions())
			req, _ := http.NewRequest("GET", "http://"+s.addr+"/chat", nil)
			for k, v := range map[string]string{
				"User-Agent":                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36",
				"Accept":                    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
				"Accept-Encoding":           "gzip, deflate, br, zstd",
				"Accept-Language":           "en-US,en;q=0.9",
				"Cache-Control":             "max-age=0",
				"Sec-Fetch-Dest":            "document",
				"Sec-Fetch-Mode":            "navigate",
				"Sec-Fetch-Site":            "none",
				"Upgrade-Insecure-Requests": "1",
				"Cookie":                    "session=abc; theme=dark",
			} {
				req.Header.Set(k, v)
			}
			if r := k.do(t, req); r.StatusCode != 200 || r.body != "chat page" {
				t.Fatalf("browser GET: %d %q", r.StatusCode, r.body)
			}
		}},
		{"http/smuggling_shapes_answered_as_net_http_does", func(t *testing.T, k *kit) {
			s := k.app(testOptions())
			ref := httptest.NewServer(appRouter(testOptions())) // the same pages on net/http alone
			defer ref.Close()
			shapes := map[string]string{
				"content-length and transfer-encoding": "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /hello?n=smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
				"two different content-lengths":        "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 40\r\n\r\nhelloGET /hello?n=smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
				"transfer-encoding not chunked last":   "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
				"space before the header colon":        "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\nhello",
				"bare LF in chunked body":              "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\nGET /hello?n=smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
				"chunk size with extension and LF":     "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\nhello\r\n0\r\n\r\n",
				"obsolete line folding":                "GET /hello?n=fold HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n",
			}
			// Where net/http is lenient and nothing can be smuggled, a stricter
			// parser may serve nothing: fasthttp waits for a CRLF that a head
			// with bare LF line ends never sends, and closes at the handshake
			// timeout (docs/runtimes.md).
			lenient := map[string]string{
				"bare LF line ends in the head": "GET /hello?n=lf HTTP/1.1\nHost: x\n\n",
			}
			for name, raw := range lenient {
				want := exchange(t, ref.Listener.Addr().String(), raw)
				got := exchange(t, s.addr, raw)
				if len(got) > 0 && !sameAnswers(got, want) {
					t.Errorf("%s: answered %v, net/http answers %v", name, got, want)
				}
				t.Logf("%s: answered %v, net/http answers %v", name, got, want)
			}
			for name, raw := range shapes {
				want := exchange(t, ref.Listener.Addr().String(), raw)
				got := exchange(t, s.addr, raw)
				if !sameAnswers(got, want) {
					t.Errorf("%s: answered %v, net/http answers %v", name, got, want)
				}
			}
		}},
	}
}

// appRouter is a small app: pages, an API, files, a stream, and sockets.
func appRouter(o api.Options) *api.Router {
	r := api.NewRouter()
	r.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			w.Header().Set("X-Middleware", "ran")
			if req.URL.Path == "/private" {
				http.Error(w, "who are you?", http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, req)
		})
	})
	r.HandleHTTPFunc("GET /chat", func(w http.ResponseWriter, req *http.Request) { io.WriteString(w, "chat page") })
	r.Handle("/chat", echo)
	r.Handle("/echo", echo)
	r.HandleHTTPFunc("/hello", func(w http.ResponseWriter, req *http.Request) {
		io.WriteString(w, "hello "+req.URL.Query().Get("n"))
	})
	r.HandleHTTPFunc("GET /private", func(w http.ResponseWriter, req *http.Request) {})
	r.HandleHTTPFunc("POST /api/items/{id}", func(w http.ResponseWriter, req *http.Request) {
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, "item "+req.PathValue("id"))
	})
	r.HandleHTTPFunc("POST /upload", func(w http.ResponseWriter, req *http.Request) {
		h := sha256.New()
		if _, err := io.Copy(h, req.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%x", h.Sum(nil))
	})
	r.HandleHTTPFunc("GET /big", func(w http.ResponseWriter, req *http.Request) {
		w.Write(bytes.Repeat([]byte("b"), 100<<10))
	})
	r.HandleHTTPFunc("GET /stream", func(w http.ResponseWriter, req *http.Request) {
		chunk := bytes.Repeat([]byte("s"), 64<<10)
		for range 1024 { // 64 MiB, flushed as it goes
			if _, err := w.Write(chunk); err != nil {
				return
			}
			http.NewResponseController(w).Flush()
		}
	})
	files := fstest.MapFS{"hello.txt": {Data: []byte("hello world"), ModTime: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}}
	r.HandleHTTP("GET /files/", http.StripPrefix("/files", http.FileServerFS(files)))
	r.HandleHTTPFunc("GET /content", func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		http.ServeContent(w, req, "c.txt", time.Time{}, strings.NewReader("abcdefghijklmnopqrstuvwxyz"))
	})
	return r
}

// app serves appRouter with o.
func (k *kit) app(o api.Options) *server {
	return k.serveRouter(o, appRouter(o))
}

type response struct {
	*http.Response
	body string
}

func (k *kit) get(t *testing.T, s *server, path string) response {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+s.addr+path, nil)
	return k.do(t, req)
}

func (k *kit) do(t *testing.T, req *http.Request) response {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp, string(b)}
}

func rawConn(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	return nc, bufio.NewReader(nc)
}

// answer is one response to a raw exchange, as far as the tests compare
// them: its status class and what its body says.
type answer struct {
	Status int
	Body   string
}

// exchange sends raw and reads every response until the server closes or
// goes quiet.
func exchange(t *testing.T, addr, raw string) []answer {
	t.Helper()
	nc, br := rawConn(t, addr)
	io.WriteString(nc, raw)
	var out []answer
	for {
		nc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return out
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		a := answer{Status: resp.StatusCode}
		if resp.StatusCode < 400 {
			a.Body = string(b) // an error page's wording is the server's own
		}
		out = append(out, a)
		if resp.Close {
			return out
		}
	}
}

// sameAnswers compares the answers: the same requests served with the
// same statuses and bodies, and a refusal (4xx or 5xx: the exact code may
// differ) where net/http refuses.
func sameAnswers(got, want []answer) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		g, w := got[i], want[i]
		if (g.Status >= 400) != (w.Status >= 400) || (g.Status < 400 && (g.Status != w.Status || g.Body != w.Body)) {
			return false
		}
	}
	return true
}
