// Command wsmatrix serves the built-in WebSocket handlers on a chosen
// runtime.
//
//	wsmatrix serve --runtime=stdhttp --addr=127.0.0.1:8080
//
// Exit codes: 0 after a clean stop, 1 when the runtime fails, 2 for bad
// usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/handlers"
	"github.com/wsmatrix/wsmatrix/runtime"
	_ "github.com/wsmatrix/wsmatrix/runtime/all"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `wsmatrix serves WebSocket handlers on interchangeable runtimes.

Usage:
  wsmatrix serve [flags]    serve the built-in handlers (/echo, /echo-event)
  wsmatrix bench [flags]    measure runtimes side by side (echo, idle)
  wsmatrix runtimes         list the runtimes built into this binary

Run 'wsmatrix serve --help' for the flags.
`

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
	case "runtimes":
		for _, n := range runtime.Names() {
			def := ""
			if n == runtime.Default {
				def = " (default)"
			}
			fmt.Fprintln(stdout, n+def)
		}
		return 0
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "wsmatrix: unknown command %q\n\n%s", args[0], usage)
	return 2
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		rtName   = fs.String("runtime", envOr("WSMATRIX_RUNTIME", runtime.Default), "runtime to serve on: "+strings.Join(runtime.Names(), ", "))
		addr     = fs.String("addr", "127.0.0.1:8080", "TCP address to listen on")
		grace    = fs.Duration("shutdown-timeout", 10*time.Second, "how long a stop waits for connections to close before cutting them")
		logLevel = fs.String("log-level", "info", "log level: debug, info, warn, error")
		o        api.Options
	)
	fs.Int64Var(&o.ReadLimit, "read-limit", api.DefaultReadLimit, "largest message accepted, in bytes (past it: close 1009)")
	fs.DurationVar(&o.PingInterval, "ping-interval", api.DefaultPingInterval, "ping a connection silent for this long; 0 disables pings")
	fs.DurationVar(&o.PongTimeout, "pong-timeout", api.DefaultPongTimeout, "drop a connection that does not answer a ping within this")
	fs.DurationVar(&o.HandshakeTimeout, "handshake-timeout", api.DefaultHandshakeTimeout, "time allowed to send the whole upgrade request")
	fs.DurationVar(&o.IdleTimeout, "idle-timeout", 0, "close a connection that sent nothing for this long; 0 disables")
	fs.DurationVar(&o.WriteTimeout, "write-timeout", api.DefaultWriteTimeout, "bound on one socket write and on waiting for a full send queue")
	fs.IntVar(&o.MaxConnections, "max-connections", 0, "most open WebSocket connections; 0 means no bound")
	fs.IntVar(&o.SendQueueSize, "send-queue", api.DefaultSendQueueSize, "messages that may wait to be written per connection")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "wsmatrix serve: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "wsmatrix serve: --log-level: %v\n", err)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	// On the command line 0 turns a duration off; in api.Options it means "default".
	for _, d := range []*time.Duration{&o.PingInterval, &o.IdleTimeout} {
		if *d == 0 {
			*d = api.Disabled
		}
	}
	o.Logger = logger

	router := api.NewRouter()
	router.Handle("/echo", handlers.Echo)
	router.Handle("/echo-event", handlers.EchoEvent)

	rt, err := runtime.New(*rtName, router, o)
	if err != nil {
		fmt.Fprintf(stderr, "wsmatrix serve: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	bound, err := rt.Start(*addr)
	if err != nil {
		logger.Error("cannot listen", "runtime", rt.Name(), "addr", *addr, "err", err)
		return 1
	}
	logger.Info("listening", "runtime", rt.Name(), "addr", bound.String(), "routes", "/echo /echo-event")
	<-ctx.Done()
	logger.Info("stopping", "runtime", rt.Name(), "grace", *grace)
	sctx, cancel := context.WithTimeout(context.Background(), *grace)
	defer cancel()
	if err := rt.Shutdown(sctx); err != nil {
		logger.Error("shutdown", "err", err)
		return 1
	}
	logger.Info("stopped")
	return 0
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
