package wire

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/wsmatrix/wsmatrix/loadtest"
)

func BenchmarkCompress(b *testing.B) {
	for _, n := range []int{1 << 10, 64 << 10} {
		p := loadtest.JSONText(n)
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
		p := loadtest.JSONText(n)
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
