package gnet

import (
	"log/slog"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wsmatrix/wsmatrix/internal/conn"
)

// files keeps the process under its descriptor limit. gnet stops its whole
// engine, every connection with it, when an accept fails, EMFILE
// included. So each loop accepts from a listener of its own (one accept,
// then OnOpen, then the next) and OnOpen refuses a new connection once the
// sockets this server holds, plus what else the process has open, come
// within a reserve of RLIMIT_NOFILE: the next accept always finds a free
// descriptor.
type files struct {
	limit   int64        // RLIMIT_NOFILE at Start
	reserve int64        // left for the rest of the process and its loops' next accepts
	open    atomic.Int64 // sockets of this server: in the loops, and handed out to net/http
	others  atomic.Int64 // the process's other descriptors, as last counted
	counted atomic.Int64 // unix nanoseconds of the last count
	busy    atomic.Bool  // a count is running
	log     *slog.Logger
	logs    conn.LogLimit // refusals logged once a second
}

func newFiles(log *slog.Logger) *files {
	f := &files{limit: 1 << 40, log: log}
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) == nil && rl.Cur != unix.RLIM_INFINITY {
		f.limit = int64(rl.Cur)
	}
	f.reserve = 64 + f.limit/1024
	f.count()
	return f
}

// admit takes a descriptor for a socket just accepted; false: over the
// limit, refuse it.
func (f *files) admit() bool {
	n := f.open.Add(1)
	if n+f.others.Load() < f.limit-f.reserve {
		return true
	}
	f.open.Add(-1)
	// Near the limit: what else is open may have changed. Count again off
	// the loop, at most once a second.
	now := time.Now().UnixNano()
	if now-f.counted.Load() > int64(time.Second) && f.busy.CompareAndSwap(false, true) {
		go func() {
			defer f.busy.Store(false)
			f.count()
		}()
	}
	if ok, held := f.logs.Allow(); ok {
		f.log.Warn("wsmatrix: gnet: at the file limit: new connections are refused with 503, existing ones go on",
			"limit", f.limit, "reserve", f.reserve, "sockets", f.open.Load(), "other_files", f.others.Load(), "refused", held+1)
	}
	return false
}

// release gives a descriptor back.
func (f *files) release() { f.open.Add(-1) }

// count reads how many descriptors the process has open besides this
// server's sockets.
func (f *files) count() {
	f.counted.Store(time.Now().UnixNano())
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return
	}
	defer d.Close()
	total := int64(-1) // d itself
	for {
		names, err := d.Readdirnames(4096)
		total += int64(len(names))
		if err != nil || len(names) == 0 {
			break
		}
	}
	f.others.Store(max(total-f.open.Load(), 0))
}

// busyResponse is what a connection refused at the limit reads, rendered
// as every refusal is (conn.Response).
var busyResponse = func() []byte {
	w := conn.NewResponse()
	w.Header().Set("Retry-After", "1")
	http.Error(w, "wsmatrix: the server is at its file limit; retry", http.StatusServiceUnavailable)
	return w.AppendHTTP(nil)
}()
