package conn

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// keptRequest is what a connection keeps of its upgrade request while its
// handler waits for messages (an event-style one once its handler
// returned, a blocking one from its first wait in Receive): the context
// (the values middleware put there, and the TLS state if any: a plain
// connection has none, and a field for it would move the struct to the
// 48-byte size class), and the rest in one string. An *http.Request with
// its URL and header map costs about 600 bytes; an idle connection may wait
// for hours. Request rebuilds one on first use.
type keptRequest struct {
	ctx  context.Context
	text string // fields as written by keepRequest, each length-prefixed
}

// keptTLS is the context key of a kept request's TLS state.
type keptTLS struct{}

// keepRequest packs r: URL, host, method, protocol, remote address,
// request URI, pattern, the pattern's path values, and the headers. The
// fields an upgrade usually has (GET, HTTP/1.1, the socket's address
// remote, the URL as the request URI, and as the pattern after the
// method) take one byte each.
func keepRequest(r *http.Request, remote netip.AddrPort) *keptRequest {
	var spare [4]string
	names := appendWildcards(spare[:0], r.Pattern)
	u := r.URL.String()
	mode := urlMode(r.URL, u)
	method, path, ok := strings.Cut(r.Pattern, " ")
	var ra [64]byte
	fields := [...]optional{
		{s: r.Method, usual: r.Method == "GET"},
		{s: r.Proto, usual: r.Proto == "HTTP/1.1"},
		{s: r.RemoteAddr, usual: remote.IsValid() && r.RemoteAddr == string(remote.AppendTo(ra[:0]))}, // compared, not copied
		{s: r.RequestURI, usual: r.RequestURI == u},
		// A route without wildcards asked without a query: the pattern
		// is the URL, after the method as api.Router registers it.
		{s: r.Pattern, usual: r.Pattern == u, second: method == r.Method && ok && path == u},
	}
	field := func(s string) int { return uvarintLen(len(s)) + len(s) }
	size := field(u) + 1 + field(r.Host) + uvarintLen(len(names)) + uvarintLen(len(r.Header)) // exact: the string keeps the builder's whole buffer
	if mode == urlQuery {
		size += field(r.URL.RawQuery)
	}
	for _, f := range fields {
		size += f.size()
	}
	for _, n := range names {
		size += field(n) + field(r.PathValue(n))
	}
	for k, vs := range r.Header {
		size += field(k) + uvarintLen(len(vs))
		for _, v := range vs {
			size += field(v)
		}
	}
	var b strings.Builder // one allocation: the string is the builder's buffer
	b.Grow(size)
	var n [binary.MaxVarintLen64]byte
	num := func(v int) { b.Write(binary.AppendUvarint(n[:0], uint64(v))) }
	str := func(s string) {
		num(len(s))
		b.WriteString(s)
	}
	str(u)
	num(mode)
	if mode == urlQuery {
		str(r.URL.RawQuery)
	}
	str(r.Host)
	for _, f := range fields {
		switch {
		case f.usual:
			num(0)
		case f.second:
			num(1)
		default:
			num(len(f.s) + 2)
			b.WriteString(f.s)
		}
	}
	num(len(names))
	for _, name := range names {
		str(name)
		str(r.PathValue(name))
	}
	num(len(r.Header))
	for k, vs := range r.Header {
		str(k)
		num(len(vs))
		for _, v := range vs {
			str(v)
		}
	}
	ctx := r.Context()
	if r.TLS != nil {
		ctx = context.WithValue(ctx, keptTLS{}, r.TLS)
	}
	return &keptRequest{ctx: ctx, text: b.String()}
}

// optional is a field keepRequest writes as a 0 when it has its usual
// value, a 1 when its second usual one, else as its length + 2 and its
// bytes.
type optional struct {
	s             string
	usual, second bool
}

func (f optional) size() int {
	if f.usual || f.second {
		return 1
	}
	return uvarintLen(len(f.s)+2) + len(f.s)
}

// How request parses the URL back from its String.
const (
	urlParse      = iota // url.Parse
	urlRequestURI        // url.ParseRequestURI: a '#' outside a fragment, or a path that starts with "//", which url.Parse takes for a host
	urlQuery             // url.Parse, then the query written after it: a relative path with a '#' in the query
)

// urlMode is how the URL u prints as (s) is parsed back. net/http takes
// a '#' into the query (a request line has no fragment), which url.Parse
// would take for the start of a fragment; a path of "//x" would be a host
// to it.
func urlMode(u *url.URL, s string) int {
	switch {
	case u.Fragment != "" || u.RawFragment != "":
		return urlParse
	case !strings.Contains(s, "#") && !(u.Scheme == "" && u.Host == "" && u.User == nil && strings.HasPrefix(s, "//")):
		return urlParse
	case u.Scheme != "" || strings.HasPrefix(s, "/"):
		return urlRequestURI // as a server parses a request line: no fragment, no host without a scheme
	default:
		return urlQuery // a relative path, which url.ParseRequestURI refuses: the '#' can only be the query's
	}
}

// parseKeptURL parses the URL urlMode's mode says how; rawQuery is the query
// urlQuery writes.
func parseKeptURL(s string, mode int, rawQuery string) *url.URL {
	parse := url.Parse
	if mode == urlRequestURI {
		parse = url.ParseRequestURI
	}
	u, err := parse(s)
	if err != nil {
		return &url.URL{}
	}
	if mode == urlQuery {
		// The only '#' that String leaves unescaped are the query's.
		u.RawQuery, u.Fragment, u.RawFragment = rawQuery, "", ""
	}
	return u
}

// uvarintLen is the length of n as a uvarint.
func uvarintLen(n int) int {
	l := 1
	for ; n >= 0x80; n >>= 7 {
		l++
	}
	return l
}

// appendWildcards appends to names those of a ServeMux pattern's
// wildcards: {name} and {name...}.
func appendWildcards(names []string, pattern string) []string {
	for {
		i := strings.IndexByte(pattern, '{')
		if i < 0 {
			return names
		}
		j := strings.IndexByte(pattern[i:], '}')
		if j < 0 {
			return names
		}
		if n := strings.TrimSuffix(pattern[i+1:i+j], "..."); n != "$" && n != "" {
			names = append(names, n)
		}
		pattern = pattern[i+j+1:]
	}
}

// textReader walks keptRequest.text; the strings it returns share it.
type textReader struct{ s string }

func (r *textReader) num() int {
	n, w := binary.Uvarint([]byte(r.s[:min(len(r.s), binary.MaxVarintLen64)]))
	r.s = r.s[w:]
	return int(n)
}

func (r *textReader) str() string {
	n := r.num()
	s := r.s[:n]
	r.s = r.s[n:]
	return s
}

// opt reads an optional field: usual when keepRequest wrote a 0; second
// when a 1, for the caller to make its second usual value.
func (r *textReader) opt(usual string) (s string, second bool) {
	switch n := r.num(); n {
	case 0:
		return usual, false
	case 1:
		return "", true
	default:
		s := r.s[:n-2]
		r.s = r.s[n-2:]
		return s, false
	}
}

// request rebuilds the upgrade request as the handler saw it (what
// middleware changed in its fields included); path values set with
// SetPathValue for names outside the pattern are not kept.
func (k *keptRequest) request(remote netip.AddrPort) *http.Request {
	rd := textReader{k.text}
	state, _ := k.ctx.Value(keptTLS{}).(*tls.ConnectionState)
	r := &http.Request{Body: http.NoBody, TLS: state}
	us, mode := rd.str(), rd.num()
	var rawQuery string
	if mode == urlQuery {
		rawQuery = rd.str()
	}
	r.URL = parseKeptURL(us, mode, rawQuery)
	r.Host = rd.str()
	r.Method, _ = rd.opt("GET") // keepRequest writes a second usual value for the pattern only
	r.Proto, _ = rd.opt("HTTP/1.1")
	r.ProtoMajor, r.ProtoMinor, _ = http.ParseHTTPVersion(r.Proto)
	r.RemoteAddr, _ = rd.opt(remote.String())
	r.RequestURI, _ = rd.opt(us)
	if p, second := rd.opt(us); second {
		r.Pattern = r.Method + " " + us
	} else {
		r.Pattern = p
	}
	for n := rd.num(); n > 0; n-- {
		name, value := rd.str(), rd.str()
		r.SetPathValue(name, value)
	}
	n := rd.num()
	r.Header = make(http.Header, n)
	for ; n > 0; n-- {
		key := rd.str()
		vs := make([]string, rd.num())
		for i := range vs {
			vs[i] = rd.str()
		}
		r.Header[key] = vs
	}
	return r.WithContext(k.ctx)
}

// path is the request's URL path, for logs.
func (k *keptRequest) path() string {
	rd := textReader{k.text}
	u, mode := rd.str(), rd.num() // the URL comes first
	if strings.HasPrefix(u, "/") && mode != urlRequestURI {
		if i := strings.IndexAny(u, "?#"); i >= 0 {
			u = u[:i]
		}
		return u
	}
	// An absolute-form target, or what middleware made: the path alone,
	// as the request's URL gives it.
	var rawQuery string
	if mode == urlQuery {
		rawQuery = rd.str()
	}
	return parseKeptURL(u, mode, rawQuery).EscapedPath()
}
