package conn

import (
	"bufio"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// headSize should not count more than the head as sent: a head under
// MaxHeaderBytes that net/http (or fasthttp's buffer) takes must not get 431.
func TestHeadSizeCountsNoMoreThanSent(t *testing.T) {
	var many strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&many, "X-%d:v\r\n", i) // no space after the colon: legal (OWS)
	}
	for _, tc := range []struct{ name, head string }{
		{"no_space_after_colon", "GET / HTTP/1.1\r\nHost: h\r\n" + many.String() + "\r\n"},
		{"bare_lf", "GET / HTTP/1.1\nHost: h\n" + strings.ReplaceAll(many.String(), "\r\n", "\n") + "\n"},
		{"http10_no_host", "GET / HTTP/1.0\r\nA: b\r\n\r\n"},
	} {
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(tc.head)))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		r.RequestURI = "/"
		if got := headSize(r); got > len(tc.head) {
			t.Errorf("%s: headSize %d, the head as sent is %d bytes (a limit of %d refuses it with 431)", tc.name, got, len(tc.head), len(tc.head))
		}
	}
}
