// Command wsmatrix serves the built-in WebSocket handlers on a chosen
// runtime.
//
//	wsmatrix serve --runtime=stdhttp --addr=127.0.0.1:8080
//
// Every flag of serve can also be set with an environment variable
// (--read-limit: WSMATRIX_READ_LIMIT); the command line wins.
//
// Exit codes: 0 after a clean stop (connections still open when
// --shutdown-timeout runs out are cut: still a clean stop), 1 when the
// runtime fails (cannot listen, a worker that cannot start), 2 for bad usage (unknown flag, bad
// value, unknown runtime), reported before anything is served.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/handlers"
	"github.com/wsmatrix/wsmatrix/hub"
	"github.com/wsmatrix/wsmatrix/runtime"
	"github.com/wsmatrix/wsmatrix/runtime/all"
	"github.com/wsmatrix/wsmatrix/socketio"
)

func main() {
	redis.SetLogger(quietRedis{}) // its errors reach the caller (emit) or the hub's log (serve): not twice, unformatted
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// quietRedis drops go-redis's own log lines.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

const usage = `wsmatrix serves WebSocket handlers on interchangeable runtimes.

Usage:
  wsmatrix serve [flags]    serve the demo page and handlers (/, /healthz, /echo, /echo-event, /broadcast, /chat/{room}, /socket.io/)
  wsmatrix emit [flags] TEXT  send TEXT to the rooms, users or ids of servers started with --redis
  wsmatrix reach [flags]    measure one emit reaching every connection of a room, from several client processes
  wsmatrix bench [flags]    measure runtimes and peers side by side (echo, idle, capacity, broadcast, connect, flood, http, socketio-idle, socketio-echo)
  wsmatrix runtimes         list the runtimes built into this binary

Run 'wsmatrix <command> --help' (or 'wsmatrix help <command>') for the flags of a command.
`

// run runs the command line args. Usage and results go to stdout, errors
// to stderr, each line with one prefix: "wsmatrix serve: ...".
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stdout, stderr)
	case "bench":
		return bench(ctx, args[1:], stdout, stderr)
	case "emit":
		return emit(args[1:], stdout, stderr)
	case "reach":
		return reach(args[1:], stdout, stderr)
	case "bench-hold": // a client process of reach
		return benchHold(args[1:], stdout, stderr)
	case "bench-open": // a client process of bench --scenario=capacity
		return benchOpen(args[1:], os.Stdin, stdout, stderr)
	case "runtimes":
		return listRuntimes(args[1:], stdout, stderr)
	case "help":
		if len(args) > 1 && args[1] != "help" { // help serve: serve --help
			return run(ctx, []string{args[1], "--help"}, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return 0
	case "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "wsmatrix: unknown command %q\n\n%s", args[0], usage)
	return 2
}

func listRuntimes(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("runtimes", flag.ContinueOnError)
	if code, ok := parseFlags(fs, args, "Usage: wsmatrix runtimes\n\nLists the runtimes built into this binary; (default) marks the one\nserve uses without --runtime.\n", stdout, stderr); !ok {
		return code
	}
	for _, n := range runtime.Names() {
		def := ""
		if n == all.Default() {
			def = " (default)"
		}
		fmt.Fprintln(stdout, n+def)
	}
	return 0
}

const serveUsage = `Usage: wsmatrix serve [flags]

Serves a demo page at / (type a line, see it echoed; join a room chat),
/healthz, and the WebSocket routes /echo (blocking style), /echo-event
(event style), /chat/{room} (each message to every member of the room, the
sender included, in the order the hub received them), /broadcast (the
room of all its connections) and Socket.IO at /socket.io/ (namespace "/":
"echo" is acknowledged with its arguments, "join" (room) joins and
acknowledges, "say" (room, msg) emits "said" (msg) to the room), all on one
port. With --redis, rooms span
every process started with the same URL, whatever their runtimes, and
'wsmatrix emit' reaches them. Durations need a unit (30s, 500ms); 0 needs
none. Every flag can also be set with the environment variable
shown in brackets.

`

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var (
		rtName    = fs.String("runtime", all.Default(), "runtime to serve on: "+strings.Join(runtime.Names(), ", "))
		addr      = fs.String("addr", "127.0.0.1:8080", "TCP address to listen on")
		adminAddr = fs.String("admin-addr", "", "address of the admin server with Prometheus /metrics and pprof at /debug/pprof/; empty: off")
		grace     = durationFlag(fs, "shutdown-timeout", 10*time.Second, "`duration` a stop waits for connections to close before cutting them")
		logLevel  = fs.String("log-level", "info", "log level: debug, info, warn, error")
		logFormat = fs.String("log-format", "text", "log format: text or json")
		tlsCert   = fs.String("tls-cert", "", "PEM certificate file: serve wss:// (stdhttp, fasthttp)")
		tlsKey    = fs.String("tls-key", "", "PEM key file for --tls-cert")
		anyOrigin = fs.Bool("allow-any-origin", false, "accept any browser Origin (default: same host or --origins)")
		origins   = fs.String("origins", "", "comma-separated extra allowed Origin hosts (path.Match patterns, e.g. *.example.com)")
		protos    = fs.String("subprotocols", "", "comma-separated subprotocols, in order of preference")
		policy    = fs.String("send-queue-full", "block", "when a send queue is full: block (up to --write-timeout) or close (1008)")
		compress  = fs.String("compression", "off", "permessage-deflate: off, no-context-takeover or context-takeover")
		redisURL  = fs.String("redis", "", "redis://HOST:PORT of the Redis that joins the rooms of several processes (and 'wsmatrix emit'); empty: this process only")
		slow      = fs.String("slow-member", "close", "a room member whose send queue is full: close (1008) or drop (skip the message, counted)")
		o         api.Options
	)
	fs.Int64Var(&o.ReadLimit, "read-limit", api.DefaultReadLimit, "largest message accepted, in bytes (past it: close 1009)")
	durationVar(fs, &o.PingInterval, "ping-interval", api.DefaultPingInterval, "ping a connection silent for this `duration`; 0 disables pings")
	durationVar(fs, &o.PongTimeout, "pong-timeout", api.DefaultPongTimeout, "drop a connection that sends nothing within this `duration` after a ping")
	durationVar(fs, &o.HandshakeTimeout, "handshake-timeout", api.DefaultHandshakeTimeout, "`duration` allowed to send a request head (an upgrade or a page); 0 disables")
	fs.IntVar(&o.MaxHeaderBytes, "max-header-bytes", api.DefaultMaxHeaderBytes, "largest request head (an upgrade or a page), in bytes: 431 past it")
	durationVar(fs, &o.IdleTimeout, "idle-timeout", 0, "close a connection that sent no message for this `duration` (pings and pongs don't count); 0 disables")
	durationVar(fs, &o.WriteTimeout, "write-timeout", api.DefaultWriteTimeout, "`duration` bound on one socket write and on waiting for a full send queue; 0 disables")
	durationVar(fs, &o.CloseTimeout, "close-timeout", api.DefaultCloseTimeout, "`duration` to wait for the peer's answer to a close frame")
	fs.IntVar(&o.MaxConnections, "max-connections", 0, "most open WebSocket connections, and most Socket.IO sessions (past it: 503); 0 means no bound")
	fs.IntVar(&o.SendQueueBytes, "send-queue-bytes", api.DefaultSendQueueBytes, "bytes that may wait to be written per connection (one message is always taken)")
	fs.IntVar(&o.InboxSize, "inbox", api.DefaultInboxSize, "received messages that may wait for the handler per connection")
	fs.IntVar(&o.InboxBytes, "inbox-bytes", api.DefaultInboxBytes, "bytes of received messages that may wait for a busy handler per connection")
	fs.IntVar(&o.Workers, "event-workers", api.DefaultWorkers, "most event-style callbacks running at once (per process)")
	workers := fs.Int("workers", 1, "processes serving the address together (SO_REUSEPORT), restarted when they die; SIGTERM stops them all")
	fs.BoolVar(&o.ReusePort, "reuse-port", false, "listen with SO_REUSEPORT, to share the address with other processes (implied by --workers)")
	fs.IntVar(&o.CompressionThreshold, "compression-threshold", api.DefaultCompressionThreshold, "messages shorter than this many bytes go uncompressed")
	fs.IntVar(&o.CompressionLevel, "compression-level", api.DefaultCompressionLevel, "flate level, 1 (fastest) to 9 (smallest)")
	returnMemory := durationFlag(fs, "return-memory", runtime.ReturnQuiet, "give the memory a burst of connections or messages left free back to the system once the process allocated little for this `duration` (one garbage collection each time); 0 disables")
	fs.VisitAll(func(f *flag.Flag) { f.Usage += " [" + envName(f.Name) + "]" })
	if code, ok := parseFlags(fs, args, serveUsage, stdout, stderr); !ok {
		return code
	}
	bad := func(format string, a ...any) int {
		printError(stderr, "serve", fmt.Errorf(format, a...))
		return 2
	}
	// The environment fills what the command line did not set.
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if v, ok := os.LookupEnv(envName(f.Name)); ok && !set[f.Name] && envErr == nil {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("%s=%q: %v", envName(f.Name), v, err)
			}
		}
	})
	if envErr != nil {
		return bad("%v", envErr)
	}
	if err := checkRuntime(*rtName); err != nil {
		return bad("%v", err)
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return bad("--log-level %q: debug, info, warn or error", *logLevel)
	}
	var handler slog.Handler
	switch *logFormat {
	case "text":
		handler = slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})
	case "json":
		handler = slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level})
	default:
		return bad("--log-format %q: text or json", *logFormat)
	}
	logger := slog.New(handler)
	if *workers < 1 {
		return bad("--workers %d: at least 1", *workers)
	}
	if _, _, err := net.SplitHostPort(*addr); err != nil {
		return bad("--addr %q: %v", *addr, err)
	}

	// On the command line 0 turns a duration off; in api.Options it means "default".
	for _, d := range []*time.Duration{&o.PingInterval, &o.IdleTimeout, &o.HandshakeTimeout, &o.WriteTimeout} {
		if *d == 0 {
			*d = api.Disabled
		}
	}
	if o.PongTimeout == 0 {
		return bad("--pong-timeout 0: pings need a time to wait for their answer (turn pings off with --ping-interval=0)")
	}
	if o.CloseTimeout == 0 {
		return bad("--close-timeout 0: a close needs a time to wait for the peer's answer")
	}
	switch *policy {
	case "block":
		o.SendQueueFull = api.QueueBlock
	case "close":
		o.SendQueueFull = api.QueueClose
	default:
		return bad("--send-queue-full %q: block or close", *policy)
	}
	switch *compress {
	case "off":
	case "no-context-takeover":
		o.Compression = api.CompressionNoContextTakeover
	case "context-takeover":
		o.Compression = api.CompressionContextTakeover
	default:
		return bad("--compression %q: off, no-context-takeover or context-takeover", *compress)
	}
	if *anyOrigin {
		o.CheckOrigin = func(*http.Request) bool { return true }
	}
	o.OriginPatterns = splitList(*origins)
	o.Subprotocols = splitList(*protos)
	if (*tlsCert == "") != (*tlsKey == "") {
		return bad("--tls-cert and --tls-key go together")
	}
	if *tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(*tlsCert, *tlsKey)
		if err != nil {
			return bad("TLS: %v", err)
		}
		o.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	hubOpts := hub.Options{Logger: logger}
	switch *slow {
	case "close":
	case "drop":
		hubOpts.SlowMember = hub.DropSlow
	default:
		return bad("--slow-member %q: close or drop", *slow)
	}
	if _, err := o.WithDefaults(); err != nil { // what runtime.New would refuse, refused before any worker starts
		return bad("%v", err)
	}
	if id := os.Getenv(workerEnv); id != "" {
		logger = logger.With("worker", id)
		hubOpts.Logger = logger
		o.ReusePort = true
	} else if *workers > 1 {
		if *redisURL == "" {
			logger.Warn("workers without --redis: each worker has rooms of its own, and a message to a room reaches only the members on its worker")
		}
		logger.Warn("workers: a Socket.IO client's long-polling requests may reach another worker than its session's (400 Session ID unknown): have clients use the websocket transport only, or run one worker per port behind a load balancer with sticky sessions")
		return supervise(ctx, args, *workers, *addr, *adminAddr, stdout, stderr, logger)
	}
	o.Logger = logger
	var redisLog string // the URL, its password masked
	if *redisURL != "" {
		bp, err := hub.NewRedis(*redisURL, hub.RedisOptions{})
		if err != nil {
			return bad("--redis: %v", err)
		}
		hubOpts.Backplane = bp
		redisLog = bp.String()
	}
	h := hub.New(hubOpts)
	defer h.Close()
	reg := prometheus.NewRegistry()
	if *adminAddr != "" {
		o.Observer = newMetrics(reg, *rtName).observer()
		registerHub(reg, *rtName, h)
	}

	router := api.NewRouter()
	router.HandleHTTP("GET /{$}", handlers.Demo)
	router.HandleHTTPFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	router.Handle("/echo", handlers.Echo)
	router.Handle("/echo-event", handlers.EchoEvent)
	router.Handle("/chat/{room}", handlers.Chat(h))
	router.Handle("/broadcast", handlers.Room(h, "/broadcast"))
	sio := socketio.New(socketio.Options{Hub: h, Logger: logger, MaxSessions: o.MaxConnections}) // a polling session holds its request as a connection does
	defer sio.Close()
	serveSocketIO(sio)
	sio.Mount(router, "/socket.io/")

	rt, err := runtime.New(*rtName, router, o)
	if err != nil {
		return bad("%v", err)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	var admin *http.Server
	if *adminAddr != "" {
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		mux.HandleFunc("/debug/pprof/", pprof.Index) // profiles, on the admin port only
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		l, err := net.Listen("tcp", *adminAddr)
		if err != nil {
			logger.Error("cannot listen", "admin-addr", *adminAddr, "err", err)
			return 1
		}
		admin = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go admin.Serve(l)
		logger.Info("admin listening", "addr", l.Addr().String(), "metrics", "/metrics")
	}
	bound, err := rt.Start(*addr)
	if err != nil {
		logger.Error("cannot listen", "runtime", rt.Name(), "addr", *addr, "err", err)
		return 1
	}
	scheme := "ws"
	if o.TLSConfig != nil {
		scheme = "wss"
	}
	logger.Info("listening", "runtime", rt.Name(), "addr", bound.String(), "scheme", scheme, "routes", "/ /healthz /echo /echo-event /chat/{room} /broadcast /socket.io/", "redis", redisLog, "hub", h.Node())
	var returned func(uint64)
	if *adminAddr != "" {
		returned = memoryReturned(reg, *rtName) // exported, 0, when off too
	}
	if *returnMemory > 0 {
		mctx, stopReturning := context.WithCancel(ctx)
		defer stopReturning()
		go runtime.ReturnMemory(mctx, *returnMemory, returned)
	}
	workerReady()
	code := 0
	select {
	case <-ctx.Done():
	case <-rt.Done(): // stopped serving on its own
		logger.Error("stopped serving", "runtime", rt.Name(), "err", rt.Err())
		code = 1
	}
	logger.Info("stopping", "runtime", rt.Name(), "grace", grace.String()) // "10s" in JSON too, not nanoseconds
	sctx, cancel := context.WithTimeout(context.Background(), *grace)
	defer cancel()
	if err := rt.Shutdown(sctx); err != nil {
		if onlyDeadline(err) && sctx.Err() != nil {
			// What --shutdown-timeout asks for, not a runtime error.
			logger.Warn("shutdown: the grace period ran out: connections still open were cut", "grace", grace.String())
		} else {
			logger.Error("shutdown", "err", err)
			code = 1
		}
	}
	if admin != nil {
		admin.Shutdown(sctx)
	}
	logger.Info("stopped")
	return code
}

// parseFlags parses args into fs: --help and -h print usage and the flags
// on stdout (exit 0); a bad flag or an argument is an error on stderr
// (exit 2). ok says whether to go on.
func parseFlags(fs *flag.FlagSet, args []string, usage string, stdout, stderr io.Writer) (code int, ok bool) {
	fs.SetOutput(io.Discard) // the flag package would print errors, and the usage after them
	fs.Usage = func() {}
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, usage)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return 0, false
	case err != nil:
		printError(stderr, fs.Name(), err)
		fmt.Fprintf(stderr, "Run 'wsmatrix %s --help' for the flags.\n", fs.Name())
		return 2, false
	case fs.NArg() > 0:
		printError(stderr, fs.Name(), fmt.Errorf("unexpected argument %q", fs.Arg(0)))
		return 2, false
	}
	return 0, true
}

// printError prints err on w with the one prefix "wsmatrix cmd: " on each
// of its lines (errors.Join makes one per error); the library's own
// "wsmatrix: " prefixes are dropped.
func printError(w io.Writer, cmd string, err error) {
	for line := range strings.Lines(err.Error()) {
		line = strings.TrimSuffix(line, "\n")
		for strings.HasPrefix(line, "wsmatrix: ") {
			line = line[len("wsmatrix: "):]
		}
		fmt.Fprintf(w, "wsmatrix %s: %s\n", cmd, strings.ReplaceAll(line, ": wsmatrix: ", ": "))
	}
}

// checkRuntime fails for a runtime name this binary does not have, with
// the list of those it has.
func checkRuntime(name string) error {
	names := runtime.Names()
	if slices.Contains(names, name) {
		return nil
	}
	hint := ""
	if slices.Contains(runtime.Builtin(), name) {
		hint = " (built with no_" + name + ")"
	}
	return fmt.Errorf("unknown runtime %q%s; this binary has: %s", name, hint, strings.Join(names, ", "))
}

// durationValue is a time.Duration flag that needs a unit: "5" is an
// error, not 5ns. "0" needs none (off or the default, as the flag says).
// Negative durations are refused.
type durationValue time.Duration

func durationVar(fs *flag.FlagSet, p *time.Duration, name string, value time.Duration, usage string) {
	*p = value
	fs.Var((*durationValue)(p), name, usage)
}

func durationFlag(fs *flag.FlagSet, name string, value time.Duration, usage string) *time.Duration {
	p := new(time.Duration)
	durationVar(fs, p, name, value, usage)
	return p
}

func (d *durationValue) String() string { return time.Duration(*d).String() }
func (d *durationValue) Get() any       { return time.Duration(*d) }

func (d *durationValue) Set(s string) error {
	v, err := time.ParseDuration(s)
	switch {
	case err != nil && isNumber(s):
		return fmt.Errorf("needs a unit, e.g. %ss", s)
	case err != nil:
		return errors.New("not a duration, e.g. 5s, 250ms or 1m30s")
	case v < 0:
		return errors.New("must not be negative")
	}
	*d = durationValue(v)
	return nil
}

// isNumber reports whether s is a decimal number such as 5, -2 or 1.5.
func isNumber(s string) bool {
	s = strings.TrimLeft(s, "+-")
	rest := strings.Trim(s, "0123456789.")
	return s != "" && rest == "" && strings.Count(s, ".") <= 1 && s != "."
}

// envName is the environment variable of a flag: --read-limit is
// WSMATRIX_READ_LIMIT.
func envName(flagName string) string {
	return "WSMATRIX_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func splitList(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// serveSocketIO is serve's Socket.IO contract on namespace "/".
func serveSocketIO(sio *socketio.Server) {
	ns := sio.Of("/")
	ns.OnConnection(func(s *socketio.Socket) {
		s.On("echo", func(e *socketio.Event) { e.Ack(e.Values()...) })
		s.On("join", func(e *socketio.Event) {
			var room string
			if e.Bind(0, &room) != nil {
				e.Ack(false)
				return
			}
			s.Join(room)
			e.Ack(true)
		})
		s.On("say", func(e *socketio.Event) {
			var room string
			if e.Bind(0, &room) != nil || len(e.Args) < 2 {
				return
			}
			// The message as it came (Value: the bytes of a binary one,
			// which a room emit refuses: acknowledged false, not sent as a
			// placeholder).
			if ns.To(room).Emit("said", e.Value(1)) != nil {
				e.Ack(false)
				return
			}
			e.Ack(true)
		})
	})
}

// onlyDeadline reports whether err is the grace period's deadline and
// nothing else (a runtime's Shutdown joins the errors of its parts).
func onlyDeadline(err error) bool {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if e != nil && !onlyDeadline(e) {
				return false
			}
		}
		return true
	}
	return errors.Is(err, context.DeadlineExceeded)
}
