package loadtest

import (
	"testing"
	"time"
)

func TestParseProc(t *testing.T) {
	stat := []byte("1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 100 1000 200")
	p, err := parseProc(stat, []byte("Name:\tx\nVmRSS:\t  2048 kB\nThreads:\t9\n"))
	if err != nil || p.CPU != 3*time.Second || p.RSS != 2048<<10 {
		t.Fatalf("%+v %v", p, err)
	}
	for _, bad := range []string{"", "1 (x) S 1", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 a b", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 9223372036854775807 0"} {
		if _, err := parseProc([]byte(bad), nil); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// FuzzParseProc: any bytes give a reading or an error, never a panic or a
// negative reading.
func FuzzParseProc(f *testing.F) {
	f.Add([]byte("1 (a b) S 1 1 1 0 -1 0 0 0 0 0 7 3 0"), []byte("VmRSS:\t 10 kB\n"))
	f.Add([]byte(")))"), []byte("VmRSS:"))
	f.Fuzz(func(t *testing.T, stat, status []byte) {
		p, err := parseProc(stat, status)
		if err == nil && (p.CPU < 0 || p.RSS < 0) {
			t.Fatalf("negative reading %+v", p)
		}
	})
}
