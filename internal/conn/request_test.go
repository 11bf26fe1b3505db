package conn

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/internal/hook"
)

type keyT struct{}

// testRemote is the socket's address in the kept-request tests.
var testRemote = netip.MustParseAddrPort("192.0.2.1:1234")

// roundTrip packs the request a mux hands to its handler for target and
// rebuilds it.
func roundTrip(t *testing.T, pattern, target string, header http.Header) (before, after *http.Request) {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc(pattern, func(_ http.ResponseWriter, r *http.Request) {
		r = r.WithContext(context.WithValue(r.Context(), keyT{}, "v"))
		r.TLS = &tls.ConnectionState{ServerName: "x"}
		before = detach(r)
		after = keepRequest(before, testRemote).request(testRemote)
	})
	req := httptest.NewRequest(http.MethodGet, target, nil)
	req.RemoteAddr = "192.0.2.1:1234"
	for k, vs := range header {
		req.Header[k] = vs
	}
	mux.ServeHTTP(httptest.NewRecorder(), req)
	if before == nil {
		t.Fatalf("%s did not match %s", target, pattern)
	}
	return before, after
}

func TestKeptRequestRoundTrip(t *testing.T) {
	cases := []struct{ pattern, target string }{
		{"GET /chat/{room}", "/chat/lobby?u=ann&x=%26"},
		{"/files/{rest...}", "/files/a/b%2Fc/d"},
		{"/exact/{$}", "/exact/"},
		{"/a/{x}/b/{y}", "/a/%7Bq%7D/b/%C3%A9"},
		{"/plain", "/plain?"},
		{"/e", "/e?channel=#general&user=ann"}, // net/http takes '#' into the query
	}
	h := http.Header{"Cookie": {"a=1; session=xyz"}, "X-Multi": {"a", "b, c"}, "User-Agent": {"t/1"}, "X-Empty": {""}}
	for _, c := range cases {
		before, after := roundTrip(t, c.pattern, c.target, h)
		if after.Method != before.Method || after.URL.String() != before.URL.String() || after.URL.Path != before.URL.Path ||
			after.URL.RawPath != before.URL.RawPath || after.URL.RawQuery != before.URL.RawQuery ||
			after.Proto != before.Proto || after.ProtoMajor != before.ProtoMajor || after.ProtoMinor != before.ProtoMinor ||
			after.Host != before.Host || after.RemoteAddr != before.RemoteAddr || after.RequestURI != before.RequestURI ||
			after.Pattern != before.Pattern || after.TLS != before.TLS {
			t.Errorf("%s: rebuilt %+v, want %+v", c.target, after, before)
		}
		if !reflect.DeepEqual(after.Header, before.Header) {
			t.Errorf("%s: header %v, want %v", c.target, after.Header, before.Header)
		}
		for _, n := range appendWildcards(nil, c.pattern) {
			if after.PathValue(n) != before.PathValue(n) {
				t.Errorf("%s: PathValue(%q) = %q, want %q", c.target, n, after.PathValue(n), before.PathValue(n))
			}
		}
		if after.Context().Value(keyT{}) != "v" {
			t.Errorf("%s: context value lost", c.target)
		}
		if after.Body != http.NoBody {
			t.Errorf("%s: body %v", c.target, after.Body)
		}
		if got := keepRequest(before, testRemote).path(); got != before.URL.EscapedPath() {
			t.Errorf("%s: path %q, want %q", c.target, got, before.URL.EscapedPath())
		}
	}
}

// Every connection that waited for a message keeps its request packed: 32
// bytes and the text. The TLS state, which a plain connection lacks,
// rides in the context (it was a field: 40 bytes, in the 48-byte class).
func TestKeptRequestFitsItsSizeClass(t *testing.T) {
	if n := unsafe.Sizeof(keptRequest{}); n > 32 {
		t.Fatalf("keptRequest is %d bytes, want at most 32", n)
	}
}

// FuzzKeptRequest: whatever a request holds comes back the same, its
// fields at their usual values (written as one byte) or not.
func FuzzKeptRequest(f *testing.F) {
	f.Add("GET", "/chat/r1?u=b", "X-A", "v", "room", "r1", uint8(0))
	f.Add("GET", "/echo", "", "", "", "", uint8(0xff))
	f.Add("GET", "/echo", "", "", "", "", uint8(0x17))
	f.Add("", "", "", "", "", "", uint8(0))
	f.Add("POST", "http://h/x%2F?#f", "K\x00", "\xff\xfe", "a...", "b/c", uint8(0x0f))
	f.Fuzz(func(t *testing.T, method, target, key, value, name, pv string, usual uint8) {
		u, err := parseURL(target)
		if err != nil {
			t.Skip()
		}
		proto, remote, uri, pattern := "HTTP/1.0", key, target, "/{"+name+"}"
		if usual&1 != 0 {
			proto = "HTTP/1.1"
		}
		if usual&2 != 0 {
			remote = testRemote.String()
		}
		if usual&4 != 0 {
			uri = u.String()
		}
		if usual&8 != 0 {
			pattern = u.String()
		}
		if usual&16 != 0 {
			pattern = method + " " + u.String() // as api.Router registers a route
		}
		r := &http.Request{Method: method, URL: u, Proto: proto, Host: value,
			RemoteAddr: remote, RequestURI: uri, Pattern: pattern, Header: http.Header{key: {value, pv}}}
		r.ProtoMajor, r.ProtoMinor, _ = http.ParseHTTPVersion(proto)
		for _, n := range appendWildcards(nil, pattern) {
			r.SetPathValue(n, pv)
		}
		r = r.WithContext(context.Background())
		after := keepRequest(r, testRemote).request(testRemote)
		if after.Method != method || after.URL.String() != u.String() || after.Proto != proto || after.ProtoMajor != r.ProtoMajor ||
			after.ProtoMinor != r.ProtoMinor || after.Host != value || after.RemoteAddr != remote ||
			after.RequestURI != uri || after.Pattern != pattern || !reflect.DeepEqual(after.Header, r.Header) {
			t.Fatalf("rebuilt %+v, want %+v", after, r)
		}
		for _, n := range appendWildcards(nil, pattern) {
			if after.PathValue(n) != r.PathValue(n) {
				t.Fatalf("PathValue(%q) = %q, want %q", n, after.PathValue(n), r.PathValue(n))
			}
		}
	})
}

// parseURL is url.Parse for URLs that print back to themselves: the only
// ones a server's request holds after parsing.
func parseURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if v, err := url.Parse(u.String()); err != nil || v.String() != u.String() {
		return nil, errors.New("does not round-trip")
	}
	return u, nil
}

// A packed request keeps no router hook in its context when middleware
// added nothing after it, and every value from before it.
func TestKeptRequestDropsTheHook(t *testing.T) {
	base := context.WithValue(context.Background(), keyT{}, "v")
	ctx := hook.WithUpgrade(base, func(http.ResponseWriter, *http.Request, any) {})
	ctx.Served()
	r := httptest.NewRequest(http.MethodGet, "/x", nil).WithContext(ctx)
	k := keepRequest(detach(r), testRemote)
	if k.ctx != base {
		t.Fatalf("kept context %v, want the one under the hook", k.ctx)
	}
	if k.request(testRemote).Context().Value(keyT{}) != "v" {
		t.Fatal("a value from before the hook was lost")
	}
	// Middleware that added a value keeps the whole chain.
	mw := context.WithValue(ctx, struct{}{}, 1)
	k = keepRequest(detach(r.WithContext(mw)), testRemote)
	if k.request(testRemote).Context().Value(struct{}{}) != 1 || k.request(testRemote).Context().Value(keyT{}) != "v" {
		t.Fatal("middleware's value lost")
	}
}

// Packing costs the packed string, its struct and the URL's string: the
// string is built in one allocation of its exact size. A TLS request's
// state costs one more, the context value that holds it.
func TestKeepRequestAllocations(t *testing.T) {
	_, tlsReq := roundTrip(t, "GET /chat/{room}", "/chat/lobby?u=ann", http.Header{"Cookie": {"a=1"}, "User-Agent": {"t/1"}})
	plain := *tlsReq
	plain.TLS = nil
	for _, c := range []struct {
		r    *http.Request
		most float64
	}{{&plain, 3}, {tlsReq, 4}} {
		if n := testing.AllocsPerRun(100, func() { keepRequest(c.r, testRemote) }); n > c.most {
			t.Fatalf("keepRequest (TLS %v) made %.0f allocations, want at most %.0f", c.r.TLS != nil, n, c.most)
		}
	}
}

// Detaching a request net/http served does not make its context's Done
// channel, which the connection would keep for its life (96 bytes): that
// such a context is cancelled is known without asking. A context of
// unknown origin is still asked.
func TestDetachMakesNoDoneChannel(t *testing.T) {
	served := context.WithValue(context.Background(), http.ServerContextKey, &http.Server{})
	other := context.WithValue(context.Background(), ctxKeyOther{}, 1)
	r := httptest.NewRequest(http.MethodGet, "/t", nil)
	r.Header.Set("X-A", "1")
	allocs := func(parent context.Context) float64 {
		return testing.AllocsPerRun(200, func() {
			ctx, cancel := context.WithCancel(parent)
			detach(r.WithContext(ctx))
			cancel()
		})
	}
	if a, b := allocs(served), allocs(other); a != b-1 {
		t.Fatalf("detach allocates %.0f times for a request net/http served, %.0f for another cancellable one: want one less (no Done channel)", a, b)
	}
}

type ctxKeyOther struct{}

// An upgrade as browsers and clients send it, to a route of api.Router,
// packs into the 48-byte size class: its method, protocol, remote address,
// request URI and pattern are the usual ones, one byte each (all written
// out it took 91 bytes, in the 96-byte class; a review found the pattern
// written out, 50 bytes, as api.Router's patterns start with the method).
func TestKeptRequestOfAPlainUpgradeIsSmall(t *testing.T) {
	head := "GET /echo-event HTTP/1.1\r\nHost: 127.0.0.1:18080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head)))
	if err != nil {
		t.Fatal(err)
	}
	r.RemoteAddr = testRemote.String()
	router := api.NewRouter()
	router.Handle("/echo-event", func(api.Conn) {})
	router.ServeHTTP(httptest.NewRecorder(), r) // sets the pattern as a route's handler sees it
	if r.Pattern != "GET /echo-event" {
		t.Fatalf("pattern %q", r.Pattern)
	}
	k := keepRequest(detach(r), testRemote)
	if n := len(k.text); n > 48 {
		t.Fatalf("packed request is %d bytes, want at most 48: %q", n, k.text)
	}
	if after := k.request(testRemote); after.Method != "GET" || after.Proto != "HTTP/1.1" || after.RemoteAddr != "192.0.2.1:1234" ||
		after.RequestURI != "/echo-event" || after.Pattern != "GET /echo-event" || after.Host != "127.0.0.1:18080" {
		t.Fatalf("rebuilt %+v", after)
	}
}

// On a socket whose address is
// not an IP:port (conn.AddrPort gives the zero AddrPort), a RemoteAddr of
// "" (middleware that blanks it) comes back as "" (a review found
// "invalid AddrPort": "" equals what the zero AddrPort appends).
func TestKeptRemoteAddrWithoutIPSocket(t *testing.T) {
	r := httptest.NewRequest("GET", "/echo", nil)
	r.RemoteAddr = ""
	var remote netip.AddrPort // what AddrPort gives for a non-IP socket
	got := keepRequest(r, remote).request(remote).RemoteAddr
	if got != r.RemoteAddr {
		t.Fatalf("RemoteAddr %q rebuilt as %q", r.RemoteAddr, got)
	}
}

// keptVia serves target through mux pattern, with mw around the handler
// (as api.Router runs a route's middleware after matching), and returns
// the request the handler saw and the one rebuilt from its packed form.
func keptVia(t *testing.T, pattern, target string, mw func(http.Handler) http.Handler) (before, after *http.Request, k *keptRequest) {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(pattern, mw(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		before = detach(r)
		k = keepRequest(before, testRemote)
		after = k.request(testRemote)
	})))
	req := httptest.NewRequest(http.MethodGet, target, nil)
	req.RemoteAddr = testRemote.String()
	mux.ServeHTTP(httptest.NewRecorder(), req)
	if before == nil {
		t.Fatalf("%s did not reach %s", target, pattern)
	}
	return before, after, k
}

// http.StripPrefix("/api/") leaves a relative path ("ws"); with a '#' in
// the query (net/http keeps it there) it comes back whole (a review found
// it lost when such URLs were parsed back with url.ParseRequestURI, which
// refuses a relative path).
func TestKeptURLOfARelativePathWithHashInQuery(t *testing.T) {
	strip := func(h http.Handler) http.Handler { return http.StripPrefix("/api/", h) }
	before, after, _ := keptVia(t, "GET /api/ws", "/api/ws?channel=#general&user=ann", strip)
	if after.URL.String() != before.URL.String() || after.URL.Path != before.URL.Path || after.URL.RawQuery != before.URL.RawQuery {
		t.Fatalf("URL rebuilt as %q (path %q, query %q), want %q (path %q, query %q)",
			after.URL, after.URL.Path, after.URL.RawQuery, before.URL, before.URL.Path, before.URL.RawQuery)
	}
}

// An absolute-form request target (RFC 9112 §3.2.2, which servers must
// accept): the log path is the escaped path before packing and after it
// (it was the whole URL after).
func TestKeptPathOfAbsoluteForm(t *testing.T) {
	id := func(h http.Handler) http.Handler { return h }
	before, _, k := keptVia(t, "GET /echo", "http://example.com/echo?x=1", id)
	if got, want := k.path(), before.URL.EscapedPath(); got != want {
		t.Fatalf("kept path %q, before packing %q", got, want)
	}
}

// FuzzKeptServerURL: URLs as a server parses them (ParseRequestURI,
// as net/http, fasthttp and gnet do) come back the same.
func FuzzKeptServerURL(f *testing.F) {
	for _, s := range []string{"/e?c=#g", "/a%2Fb?x", "http://h/x?#", "*", "/a%23b?q#r"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			t.Skip()
		}
		r := (&http.Request{Method: "GET", URL: u, Proto: "HTTP/1.1", RequestURI: target, Header: http.Header{}}).WithContext(t.Context())
		after := keepRequest(r, testRemote).request(testRemote)
		if after.URL.String() != u.String() || after.URL.Path != u.Path || after.URL.Host != u.Host || after.URL.RawQuery != u.RawQuery ||
			after.URL.Opaque != u.Opaque || after.URL.Scheme != u.Scheme {
			t.Fatalf("%q: rebuilt %#v, want %#v", target, after.URL, u)
		}
	})
}
