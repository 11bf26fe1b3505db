package conn

import (
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/wsmatrix/wsmatrix/api"
)

// LogLimit lets at most Burst lines of one kind through a second (at least
// one), so that a peer cannot flood the log, and counts the lines it held
// back. Its zero value lets one a second through.
type LogLimit struct {
	Burst int

	mu     sync.Mutex
	window time.Time
	n      int
	held   int
}

// Allow reports whether a line may be logged now, and how many were held
// back since the last one that was.
func (l *LogLimit) Allow() (ok bool, held int) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.window) >= time.Second {
		l.window, l.n = now, 0
	}
	l.n++
	if l.n > max(l.Burst, 1) {
		l.held++
		return false, 0
	}
	held, l.held = l.held, 0
	return true, held
}

// refusalLog logs refused upgrades at info level, at most refusalBurst a
// second (NewServer sets the limit), so that a scan or a misconfigured
// client cannot flood the log; it says how many it left out.
type refusalLog struct{ limit LogLimit }

const refusalBurst = 10

func (l *refusalLog) refused(log *slog.Logger, r *http.Request, status int, reason, msg string) {
	ok, suppressed := l.limit.Allow()
	if !ok {
		return
	}
	args := []any{"status", status, "reason", reason, "path", r.URL.Path, "remote", r.RemoteAddr, "detail", msg}
	if o := r.Header.Get("Origin"); o != "" {
		args = append(args, "origin", o)
	}
	if suppressed > 0 {
		args = append(args, "suppressed_since_last", suppressed)
	}
	log.Info("wsmatrix: upgrade refused", args...)
}

// logProtocolClose logs, at debug level, and counts a connection failed
// because of what its peer sent (1002, 1007, 1008, 1009).
func (s *Server) logProtocolClose(c *Conn, ce *api.CloseError) {
	reason := api.ReasonProtocol
	switch ce.Code {
	case api.StatusInvalidFramePayloadData:
		reason = api.ReasonUTF8
	case api.StatusMessageTooBig:
		reason = api.ReasonTooBig
	case api.StatusPolicyViolation:
		reason = api.ReasonFlood
	}
	s.obs.Refused(reason)
	s.opts.Logger.Debug("wsmatrix: closing on bad input", "code", int(ce.Code), "reason", reason,
		"detail", ce.Reason, "path", c.path(), "remote", c.remote.String())
}
