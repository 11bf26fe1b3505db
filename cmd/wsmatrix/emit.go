package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wsmatrix/wsmatrix/hub"
	"github.com/wsmatrix/wsmatrix/socketio"
)

const emitUsage = `Usage: wsmatrix emit --redis=redis://HOST:PORT [--room=NAME,...] [--user=KEY,...] [--id=ID,...] [--everyone] TEXT

Sends TEXT as one text message (--binary: binary; --event=NAME: a
Socket.IO event with TEXT as its argument, to Socket.IO clients) to the
connections of
every 'wsmatrix serve --redis' process on that Redis, from a process with
no WebSocket server: a cron job, a worker, a webhook. Targets add up, each
connection getting the message once; --except leaves some out. Exit 0 once
Redis took the message (it is not stored: servers that are not subscribed
right now never see it), 1 when Redis could not be reached, 2 for bad usage.

`

func emit(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("emit", flag.ContinueOnError)
	var (
		redisURL = fs.String("redis", os.Getenv("WSMATRIX_REDIS"), "redis://HOST:PORT of the servers' --redis [WSMATRIX_REDIS]")
		rooms    = fs.String("room", "", "comma-separated rooms whose members get the message")
		users    = fs.String("user", "", "comma-separated user keys whose connections get the message")
		ids      = fs.String("id", "", "comma-separated connection ids that get the message")
		except   = fs.String("except", "", "comma-separated connection ids left out")
		everyone = fs.Bool("everyone", false, "every hub member of every server: the connections of rooms (/chat/{room}, /broadcast, Socket.IO's), not those of /echo or /echo-event")
		binary   = fs.Bool("binary", false, "send a binary message instead of text")
		event    = fs.String("event", "", "send to Socket.IO clients: this event with TEXT as its one (string) argument, in --namespace")
		nsp      = fs.String("namespace", "/", "Socket.IO namespace of --event")
		timeout  = durationFlag(fs, "timeout", 5*time.Second, "`duration` to wait for Redis")
	)
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			fmt.Fprint(stdout, emitUsage)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return 0
		}
		printError(stderr, "emit", err)
		fmt.Fprintln(stderr, "Run 'wsmatrix emit --help' for the flags.")
		return 2
	}
	bad := func(format string, a ...any) int {
		printError(stderr, "emit", fmt.Errorf(format, a...))
		return 2
	}
	if fs.NArg() != 1 {
		return bad("one TEXT argument expected, got %d (quote it)", fs.NArg())
	}
	if *redisURL == "" {
		return bad("--redis is required")
	}
	if *rooms == "" && *users == "" && *ids == "" && !*everyone {
		return bad("no target: give --room, --user, --id or --everyone")
	}
	if *timeout <= 0 {
		return bad("--timeout %v: a time to wait for Redis is needed", *timeout)
	}
	if !*binary && !utf8.ValidString(fs.Arg(0)) {
		return bad("TEXT is not valid UTF-8, which every client would refuse in a text message (1007): fix its encoding, or send it with --binary")
	}
	if !*everyone && len(splitList(*rooms))+len(splitList(*users))+len(splitList(*ids)) == 0 {
		return bad("no target: --room, --user and --id name none")
	}
	if *event != "" && (!strings.HasPrefix(*nsp, "/") || strings.Contains(*nsp, ",")) {
		return bad("--namespace %q: a Socket.IO namespace starts with / and has no comma", *nsp)
	}
	nspSet := false
	fs.Visit(func(f *flag.Flag) { nspSet = nspSet || f.Name == "namespace" })
	if nspSet && *event == "" {
		return bad("--namespace is the Socket.IO namespace of --event: give --event too")
	}
	bp, err := hub.NewRedis(*redisURL, hub.RedisOptions{})
	if err != nil {
		return bad("--redis: %v", err)
	}
	e := hub.NewEmitter(bp)
	e.Timeout = *timeout
	defer e.Close()
	var t hub.Target
	if *everyone {
		t = e.Everyone()
	} else {
		t = e.To(splitList(*rooms)...)
	}
	t = t.ToUser(splitList(*users)...).ToID(splitList(*ids)...).Except(splitList(*except)...)
	text := fs.Arg(0)
	if *event != "" {
		if *binary {
			return bad("--event and --binary do not go together")
		}
		packet, err := socketio.EventPacket(*nsp, *event, text)
		if err != nil {
			return bad("--event: %v", err)
		}
		err = socketioTarget(e, *nsp, *everyone, splitList(*rooms)).ToUser(splitList(*users)...).ToID(splitList(*ids)...).Except(splitList(*except)...).SendText(packet)
		if err != nil {
			printError(stderr, "emit", err)
			return 1
		}
		return 0
	}
	if *binary {
		err = t.SendBinary([]byte(text))
	} else {
		err = t.SendText(text)
	}
	if err != nil {
		printError(stderr, "emit", err)
		return 1
	}
	return 0
}

// socketioTarget is the hub target of Socket.IO rooms of namespace nsp
// (or of all its sockets).
func socketioTarget(e *hub.Emitter, nsp string, everyone bool, rooms []string) hub.Target {
	if everyone {
		return e.To(socketio.HubRoom(nsp, ""))
	}
	hr := make([]string, len(rooms))
	for i, r := range rooms {
		hr[i] = socketio.HubRoom(nsp, r)
	}
	return e.To(hr...)
}
