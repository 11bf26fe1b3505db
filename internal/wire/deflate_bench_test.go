package wire

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// chatJSON is n bytes of JSON-like text, as loadtest's echo --payload=json
// sends: it compresses about as chat messages do.
func chatJSON(n int) []byte {
	words := strings.Fields("the quick brown fox jumps over lazy dog hello world message room user joined left typing online away status update ping pong")
	var b bytes.Buffer
	seed := uint32(2166136261)
	next := func() uint32 { seed ^= seed << 13; seed ^= seed >> 17; seed ^= seed << 5; return seed }
	for b.Len() < n {
		fmt.Fprintf(&b, `{"id":%d,"room":"room-%d","user":"user-%d","text":"%s %s %s","ts":%d},`,
			next()%100000, next()%50, next()%1000, words[next()%uint32(len(words))], words[next()%uint32(len(words))], words[next()%uint32(len(words))], 1732000000+next()%100000)
	}
	return b.Bytes()[:n]
}

func BenchmarkCompress(b *testing.B) {
	for _, n := range []int{1 << 10, 64 << 10} {
		p := chatJSON(n)
		b.Run(fmt.Sprintf("level1/%d", n), func(b *testing.B) {
			b.SetBytes(int64(n))
			var dst []byte
			for b.Loop() {
				dst = Compress(dst[:0], p, 1, 15, nil)
			}
			b.ReportMetric(float64(len(dst)), "out-bytes")
		})
		b.Run(fmt.Sprintf("stateless/%d", n), func(b *testing.B) {
			b.SetBytes(int64(n))
			var dst []byte
			for b.Loop() {
				dst = Compress(dst[:0], p, 1, 15, []byte{})
			}
			b.ReportMetric(float64(len(dst)), "out-bytes")
		})
	}
}

func BenchmarkInflate(b *testing.B) {
	for _, n := range []int{1 << 10, 64 << 10} {
		p := chatJSON(n)
		c := Compress(nil, p, 1, 15, nil)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			var dst []byte
			var err error
			for b.Loop() {
				dst, err = Inflate(dst[:0], c, nil, 1<<20, true)
				if err != nil || !bytes.Equal(dst, p) {
					b.Fatal(err)
				}
			}
		})
	}
}
