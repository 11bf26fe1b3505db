package api

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"
)

// Disabled turns off a duration option (PingInterval, IdleTimeout,
// WriteTimeout, HandshakeTimeout). A zero value means "use the default".
const Disabled time.Duration = -1

// QueuePolicy says what Send does when a connection's send queue is full.
type QueuePolicy uint8

const (
	// QueueBlock makes Send wait for room up to WriteTimeout, then fail
	// with an error wrapping ErrQueueFull; the connection is then closed
	// with 1008, since its peer is not reading. This holds for one sender
	// as for many: no Send ever waits on the socket itself.
	QueueBlock QueuePolicy = iota
	// QueueClose closes the connection with 1008 (policy violation) at
	// once: for fan-out services that must never wait on a slow reader.
	QueueClose
)

// String returns "block" or "close".
func (p QueuePolicy) String() string {
	if p == QueueClose {
		return "close"
	}
	return "block"
}

// Compression says whether and how a runtime offers permessage-deflate
// (RFC 7692) to clients that ask for it (every browser does).
type Compression uint8

const (
	// CompressionOff answers without the extension: messages go
	// uncompressed.
	CompressionOff Compression = iota
	// CompressionNoContextTakeover compresses each message on its own, both
	// ways: an idle connection holds no compressor, no decompressor and no
	// window; a message borrows pooled ones. Compressed frames can be
	// prepared once for many connections.
	CompressionNoContextTakeover
	// CompressionContextTakeover lets each message refer to the ones before
	// it, both ways, for a better ratio on small, similar messages: the
	// connection keeps the last 32 KiB it received (less when the client
	// offers a smaller window) and the last 8 KiB it sent.
	CompressionContextTakeover
)

// String returns "off", "no-context-takeover" or "context-takeover".
func (c Compression) String() string {
	switch c {
	case CompressionNoContextTakeover:
		return "no-context-takeover"
	case CompressionContextTakeover:
		return "context-takeover"
	}
	return "off"
}

// Options configure a runtime. The zero value of every field means its
// documented default; every runtime honours every field or refuses to start.
type Options struct {
	// ReadLimit bounds one received message, in bytes, checked from each
	// frame header before its payload is read; past it the connection
	// closes with 1009. Default 16 MiB.
	ReadLimit int64

	// PingInterval is how long the connection may stay silent before the
	// server sends a ping. Default 25 s; Disabled turns pings off.
	PingInterval time.Duration
	// PongTimeout is how long the server waits, after a ping, for any
	// frame from the peer before it drops the connection (1006). Default
	// 20 s.
	PongTimeout time.Duration

	// HandshakeTimeout bounds the time to receive the head of every
	// request, an upgrade or a page (slowloris). Default 10 s.
	HandshakeTimeout time.Duration
	// MaxHeaderBytes bounds every request's line and headers, an upgrade's
	// or a page's: 431 past it, the same on every runtime. Default 8 KiB,
	// as nginx and Apache.
	MaxHeaderBytes int
	// IdleTimeout closes a connection (1001) that received no message (no
	// data frame) for this long. Pings and pongs do not count: the pongs
	// that answer PingInterval's pings would otherwise keep every idle
	// connection open. Default: off (pings find dead peers).
	IdleTimeout time.Duration
	// WriteTimeout bounds one write to the socket and the wait for room in
	// a full send queue. A write that times out drops the connection.
	// Default 10 s.
	WriteTimeout time.Duration
	// CloseTimeout bounds the wait for the peer's answer to a close frame.
	// Default 5 s.
	CloseTimeout time.Duration

	// CheckOrigin decides whether a browser's Origin may connect. When nil,
	// a request is allowed when it has no Origin header, when the Origin's
	// host equals the request's Host, or when it matches one of
	// OriginPatterns. A refused request gets 403.
	CheckOrigin func(r *http.Request) bool
	// OriginPatterns are extra allowed Origin hosts, matched with
	// path.Match and without case: "example.com", "*.example.com",
	// "localhost:*".
	OriginPatterns []string

	// Subprotocols the server speaks, in its order of preference: the first
	// of these that the client also offers is chosen.
	Subprotocols []string

	// Compression chooses permessage-deflate: off (the default), without
	// context takeover, or with it; see Compression.
	Compression Compression
	// CompressionThreshold is the size under which a message is sent
	// uncompressed, as compressing it costs more than it saves. Default
	// 512 bytes.
	CompressionThreshold int
	// CompressionLevel is the flate level, 1 (fastest, the default) to 9
	// (smallest), for messages compressed on their own. With context
	// takeover the server's messages use a stateless fast encoder that
	// keeps an 8 KiB window instead.
	CompressionLevel int

	// ReusePort listens with SO_REUSEPORT, so that several processes (or
	// servers) bound to the same address share it: the kernel spreads new
	// connections among them (wsmatrix serve --workers). Give a fixed port:
	// each listener on port 0 gets a port of its own.
	ReusePort bool

	// MaxConnections bounds the open WebSocket connections of a runtime;
	// past it the upgrade gets 503. Default 0: no bound.
	MaxConnections int
	// SendQueueBytes bounds the bytes waiting to be written on one
	// connection: frames its Sends queued that the socket has not taken
	// yet (on an event loop, also what the loop holds for the peer). A
	// message is always taken into an empty queue, whatever its size, so
	// a connection whose peer stops reading holds at most about
	// max(SendQueueBytes, its largest message). Pongs count too: past the
	// bound only the answer to the latest ping is kept (RFC 6455 5.5.3).
	// Default 1 MiB.
	SendQueueBytes int
	// SendQueueFull says what Send does when the queue is full. Default
	// QueueBlock.
	SendQueueFull QueuePolicy
	// InboxSize bounds the received messages waiting for the handler on one
	// connection. Default 16.
	InboxSize int
	// InboxBytes bounds the bytes of received messages waiting for the
	// handler on one connection, the message being received included.
	// While the handler waits for a message, one message of up to
	// ReadLimit is always taken; while it is busy, the server stops
	// reading from the peer once the inbox holds InboxSize messages or
	// InboxBytes bytes (TCP pushes back). An event-loop runtime cannot stop
	// reading: it closes the connection with 1008 once the peer has more
	// than max(ReadLimit, InboxBytes) waiting for its busy handler, the
	// input it has not parsed yet included, or more than InboxBytes while
	// it reads nothing it is sent (a Send has waited a second for room).
	// Default 1 MiB.
	InboxBytes int
	// Workers bounds the shared pool that runs event-style callbacks.
	// Default 256.
	Workers int

	// TLSConfig, when set, makes Start serve TLS (wss://) with it. The
	// gnet runtime refuses it: terminate TLS in front of it.
	TLSConfig *tls.Config

	// Observer, when set, receives the runtime's events for metrics.
	Observer *Observer

	// Logger receives the runtime's logs. Default slog.Default().
	Logger *slog.Logger
}

// Defaults of Options.
const (
	DefaultReadLimit            = 16 << 20
	DefaultPingInterval         = 25 * time.Second
	DefaultPongTimeout          = 20 * time.Second
	DefaultHandshakeTimeout     = 10 * time.Second
	DefaultMaxHeaderBytes       = 8 << 10
	DefaultWriteTimeout         = 10 * time.Second
	DefaultCloseTimeout         = 5 * time.Second
	DefaultSendQueueBytes       = 1 << 20
	DefaultInboxSize            = 16
	DefaultInboxBytes           = 1 << 20
	DefaultWorkers              = 256
	DefaultCompressionThreshold = 512
	DefaultCompressionLevel     = 1
)

// WithDefaults returns o with every zero field set to its default. It
// fails when a field holds a value that cannot work, such as a negative
// ReadLimit.
func (o Options) WithDefaults() (Options, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("wsmatrix: options: "+format, args...))
	}
	if o.ReadLimit == 0 {
		o.ReadLimit = DefaultReadLimit
	} else if o.ReadLimit < 0 {
		bad("ReadLimit %d is negative", o.ReadLimit)
	}
	durations := []struct {
		name string
		p    *time.Duration
		def  time.Duration
	}{
		{"PingInterval", &o.PingInterval, DefaultPingInterval},
		{"PongTimeout", &o.PongTimeout, DefaultPongTimeout},
		{"HandshakeTimeout", &o.HandshakeTimeout, DefaultHandshakeTimeout},
		{"IdleTimeout", &o.IdleTimeout, Disabled},
		{"WriteTimeout", &o.WriteTimeout, DefaultWriteTimeout},
		{"CloseTimeout", &o.CloseTimeout, DefaultCloseTimeout},
	}
	for _, d := range durations {
		switch {
		case *d.p == 0:
			*d.p = d.def
		case *d.p < 0 && *d.p != Disabled:
			if d.name == "PongTimeout" || d.name == "CloseTimeout" { // they cannot be off
				bad("%s %v is negative", d.name, *d.p)
			} else {
				bad("%s %v is negative (use api.Disabled to turn it off)", d.name, *d.p)
			}
		}
	}
	if o.PongTimeout == Disabled {
		bad("PongTimeout cannot be disabled (disable PingInterval instead)")
	}
	if o.CloseTimeout == Disabled {
		bad("CloseTimeout cannot be disabled")
	}
	ints := []struct {
		name string
		p    *int
		def  int
	}{
		{"MaxHeaderBytes", &o.MaxHeaderBytes, DefaultMaxHeaderBytes},
		{"SendQueueBytes", &o.SendQueueBytes, DefaultSendQueueBytes},
		{"InboxSize", &o.InboxSize, DefaultInboxSize},
		{"InboxBytes", &o.InboxBytes, DefaultInboxBytes},
		{"Workers", &o.Workers, DefaultWorkers},
	}
	for _, n := range ints {
		switch {
		case *n.p == 0:
			*n.p = n.def
		case *n.p < 0:
			bad("%s %d is negative", n.name, *n.p)
		}
	}
	if o.MaxHeaderBytes > 0 && o.MaxHeaderBytes < 256 {
		bad("MaxHeaderBytes %d is too small for an upgrade request (at least 256)", o.MaxHeaderBytes)
	}
	if o.MaxConnections < 0 {
		bad("MaxConnections %d is negative", o.MaxConnections)
	}
	if o.SendQueueFull > QueueClose {
		bad("SendQueueFull %d is not a policy", o.SendQueueFull)
	}
	if o.Compression > CompressionContextTakeover {
		bad("Compression %d is not a mode", o.Compression)
	}
	switch {
	case o.CompressionThreshold == 0:
		o.CompressionThreshold = DefaultCompressionThreshold
	case o.CompressionThreshold < 0:
		bad("CompressionThreshold %d is negative", o.CompressionThreshold)
	}
	switch {
	case o.CompressionLevel == 0:
		o.CompressionLevel = DefaultCompressionLevel
	case o.CompressionLevel < 1 || o.CompressionLevel > 9:
		bad("CompressionLevel %d is not a flate level from 1 to 9", o.CompressionLevel)
	}
	for _, p := range o.OriginPatterns {
		if _, err := path.Match(p, ""); err != nil {
			bad("OriginPatterns %q: %v", p, err)
		} else if strings.Contains(p, "/") {
			bad("OriginPatterns %q: a pattern matches the Origin's host (app.example.com, *.example.com:8443), not a URL", p)
		}
	}
	if c := o.TLSConfig; c != nil && len(c.Certificates) == 0 && c.GetCertificate == nil && c.GetConfigForClient == nil {
		bad("TLSConfig has no certificate (Certificates, GetCertificate or GetConfigForClient)")
	}
	for _, p := range o.Subprotocols {
		if p == "" || !isToken(p) {
			bad("subprotocol %q is not an HTTP token", p)
		}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o, errors.Join(errs...)
}

// isToken reports whether s is an RFC 7230 token.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", c) >= 0 {
			return false
		}
	}
	return true
}
