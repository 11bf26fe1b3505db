package hub_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/hub"
	"github.com/wsmatrix/wsmatrix/internal/redistest"
	"github.com/wsmatrix/wsmatrix/runtime"
	_ "github.com/wsmatrix/wsmatrix/runtime/fasthttp"
	_ "github.com/wsmatrix/wsmatrix/runtime/gnet"
	"github.com/wsmatrix/wsmatrix/runtime/runtimetest"
	_ "github.com/wsmatrix/wsmatrix/runtime/stdhttp"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, append(runtimetest.ProcessWide(),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"), // go-redis pool's idle reaper reading
	)...)
}

// chatServer serves /chat/{room} on runtime rt with h: each member joins
// the room of its path, and each message it sends goes to the room,
// sender included. ?user= gives it a user key. Each member's id is sent
// to it first, as "id:<id>".
func chatServer(t *testing.T, rt string, h *hub.Hub, o api.Options) string {
	t.Helper()
	r := api.NewRouter()
	r.Handle("/chat/{room}", func(ws api.Conn) {
		room := ws.Request().PathValue("room")
		m := h.Attach(ws).Join(room)
		if u := ws.Request().URL.Query().Get("user"); u != "" {
			m.SetUser(u)
		}
		ws.SendText("id:" + m.ID())
		ws.OnMessage(func(msg api.Message) { h.To(room).Send(msg) })
	})
	r.Handle("/silent/{room}", func(ws api.Conn) { // joins and never sends
		h.Attach(ws).Join(ws.Request().PathValue("room"))
		ws.SendText("joined")
		ws.OnClose(func(*api.CloseError) {})
	})
	o.Logger = quietLogger(t)
	s, err := runtime.New(rt, r, o)
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return "ws://" + a.String()
}

// client reads in the background, so that "nothing arrives" can be
// checked without a read deadline (gorilla's connection does not survive
// one).
type client struct {
	t    *testing.T
	c    *websocket.Conn
	id   string
	in   chan string
	done chan error // the read error that ended the reader
}

func join(t *testing.T, base, path string) *client {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	cl := &client{t: t, c: c, in: make(chan string, 10000), done: make(chan error, 1)}
	cl.startReading()
	t.Cleanup(func() {
		c.Close()
		for range cl.in {
		}
	})
	if first := cl.read(); len(first) > 3 && first[:3] == "id:" {
		cl.id = first[3:]
	}
	return cl
}

// joinNotReading connects and reads nothing until startReading.
func joinNotReading(t *testing.T, base, path string) *client {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{t: t, c: c, in: make(chan string, 10000), done: make(chan error, 1)}
}

func (cl *client) startReading() {
	c := cl.c
	go func() {
		for {
			_, p, err := c.ReadMessage()
			if err != nil {
				cl.done <- err
				close(cl.in)
				return
			}
			select {
			case cl.in <- string(p):
			default: // the test stopped taking: keep draining
			}
		}
	}()
}

func (c *client) read() string {
	c.t.Helper()
	select {
	case m, ok := <-c.in:
		if !ok {
			c.t.Fatalf("read: %v", <-c.done)
		}
		return m
	case <-time.After(10 * time.Second):
		c.t.Fatal("read: nothing for 10 s")
	}
	return ""
}

// none checks that nothing arrives for a moment.
func (c *client) none() {
	c.t.Helper()
	select {
	case m, ok := <-c.in:
		if ok {
			c.t.Fatalf("unexpected message %q", m)
		}
	case <-time.After(150 * time.Millisecond):
	}
}

// closed waits for the end of the connection and returns its error.
func (c *client) closed() error {
	c.t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case _, ok := <-c.in:
			if !ok {
				return <-c.done
			}
		case <-deadline:
			c.t.Fatal("still open after 20 s")
		}
	}
}

func (c *client) say(s string) {
	c.t.Helper()
	if err := c.c.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRoomsIDsUsersEveryRuntime(t *testing.T) {
	for _, rt := range []string{"stdhttp", "fasthttp", "gnet"} {
		t.Run(rt, func(t *testing.T) {
			h := hub.New(hub.Options{Logger: quietLogger(t)})
			defer h.Close()
			base := chatServer(t, rt, h, api.Options{})
			a := join(t, base, "/chat/red?user=alice")
			b := join(t, base, "/chat/red?user=bob")
			c := join(t, base, "/chat/blue?user=alice") // alice's second tab
			waitFor(t, "three members", func() bool { return h.LocalCount("") == 3 })

			a.say("hello red")
			if a.read() != "hello red" || b.read() != "hello red" {
				t.Fatal("room red: sender and member should both get it")
			}
			c.none()

			h.ToUser("alice").SendText("for alice")
			if a.read() != "for alice" || c.read() != "for alice" {
				t.Fatal("user alice: both tabs should get it")
			}
			b.none()

			h.ToID(b.id).SendText("for b")
			if b.read() != "for b" {
				t.Fatal("id")
			}
			h.To("red").Except(a.id).SendText("not for a")
			if b.read() != "not for a" {
				t.Fatal("except")
			}
			a.none()

			// A union reaches each connection once.
			h.To("red", "blue").ToUser("alice").ToID(a.id).SendText("once")
			for _, cl := range []*client{a, b, c} {
				if cl.read() != "once" {
					t.Fatal("union")
				}
			}
			a.none()

			h.Everyone().SendBinary([]byte{1, 2, 3})
			for _, cl := range []*client{a, b, c} {
				if cl.read() != "\x01\x02\x03" {
					t.Fatal("everyone")
				}
			}

			// Join and leave from anywhere: the member by id, or targets.
			h.Member(c.id).Join("red")
			if got := h.LocalMembers("red"); len(got) != 3 {
				t.Fatalf("red: %v", got)
			}
			h.To("red").SendText("red with c")
			for _, cl := range []*client{a, b, c} {
				if cl.read() != "red with c" {
					t.Fatal("joined")
				}
			}
			h.ToID(c.id).Leave("red")
			waitFor(t, "c leaves red", func() bool { return h.LocalCount("red") == 2 })
			h.ToUser("bob").Join("green")
			waitFor(t, "bob joins green", func() bool { return h.LocalCount("green") == 1 })
			if rooms := h.Member(b.id).Rooms(); !slices.Equal(rooms, []string{"red", "green"}) {
				t.Fatalf("bob's rooms: %v", rooms)
			}

			// A connection that ends leaves everything.
			b.c.Close()
			waitFor(t, "bob gone", func() bool { return h.LocalCount("green") == 0 && h.LocalCount("") == 2 })
			if h.Member(b.id) != nil || slices.Contains(h.LocalRooms(), "green") {
				t.Fatal("bob still known")
			}
			h.ToID(a.id, c.id).Disconnect()
			waitFor(t, "all gone", func() bool { return h.LocalCount("") == 0 })
			s := h.Stats()
			if s.Delivered < 14 || s.Dropped != 0 || s.Rooms != 0 {
				t.Fatalf("stats: %+v", s)
			}
		})
	}
}

// TestOrderAcrossSenders: messages sent at once by several members reach
// every member of the room in one and the same order.
func TestOrderAcrossSenders(t *testing.T) {
	h := hub.New(hub.Options{Logger: quietLogger(t)})
	defer h.Close()
	base := chatServer(t, "gnet", h, api.Options{})
	const members, each = 5, 200
	var cs []*client
	for range members {
		cs = append(cs, join(t, base, "/chat/r"))
	}
	waitFor(t, "members", func() bool { return h.LocalCount("r") == members })
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Go(func() {
			for j := range each {
				c.c.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf("%d-%d", i, j)))
			}
		})
	}
	wg.Wait()
	var first []string
	for i, c := range cs {
		var got []string
		for range members * each {
			got = append(got, c.read())
		}
		if i == 0 {
			first = got
			continue
		}
		if !slices.Equal(got, first) {
			t.Fatalf("member %d saw another order", i)
		}
	}
	// And each sender's own messages in the order sent.
	next := make([]int, members)
	for _, m := range first {
		var i, j int
		fmt.Sscanf(m, "%d-%d", &i, &j)
		if j != next[i] {
			t.Fatalf("sender %d: message %d before %d", i, j, next[i])
		}
		next[i]++
	}
}

// TestSlowMember: a member that never reads while 3,000 messages flow to
// its room: the others get every one in order, the slow one is closed with
// 1008 (CloseSlow) or skipped (DropSlow).
func TestSlowMember(t *testing.T) {
	for _, policy := range []hub.SlowPolicy{hub.CloseSlow, hub.DropSlow} {
		for _, rt := range []string{"stdhttp", "gnet"} {
			t.Run(fmt.Sprintf("%s/policy%d", rt, policy), func(t *testing.T) {
				h := hub.New(hub.Options{SlowMember: policy, Logger: quietLogger(t)})
				defer h.Close()
				base := chatServer(t, rt, h, api.Options{SendQueueBytes: 64 << 10})
				slow := joinNotReading(t, base, "/silent/r") // its socket buffers fill, then its queue
				var fast []*client
				for range 3 {
					fast = append(fast, join(t, base, "/silent/r")) // "joined" read
				}
				waitFor(t, "members", func() bool { return h.LocalCount("r") == 4 })
				const n = 3000
				// 12 MB to each member: more than the slow one's socket
				// buffers (a receive buffer that its reader never lets grow
				// past 128 KiB; a send buffer of at most 4 MiB here) and its
				// queue.
				payload := string(make([]byte, 4000))
				done := make(chan error, len(fast))
				got := make([]atomic.Int64, len(fast))
				for k, c := range fast {
					go func() {
						for i := range n {
							got[k].Store(int64(i))
							var p string
							select {
							case p = <-c.in:
							case <-time.After(10 * time.Second):
								done <- fmt.Errorf("message %d: nothing for 10 s", i)
								return
							}
							if want := strconv.Itoa(i) + payload; p != want {
								done <- fmt.Errorf("message %d: got %.10q", i, p)
								return
							}
						}
						done <- nil
					}()
				}
				// Paced by the readers (at most 8 messages ahead of the
				// slowest of them), so that only the one that never reads
				// falls behind.
				for i := range n {
					for k := range got {
						for int(got[k].Load()) < i-8 {
							time.Sleep(50 * time.Microsecond)
						}
					}
					h.To("r").SendText(strconv.Itoa(i) + payload)
				}
				for range fast {
					if err := <-done; err != nil {
						t.Fatal(err)
					}
				}
				s := h.Stats()
				if s.Dropped == 0 {
					t.Fatalf("the slow member took everything: %+v", s)
				}
				if policy == hub.CloseSlow {
					waitFor(t, "slow member closed", func() bool { return h.LocalCount("r") == 3 })
					// Its buffered messages, then the 1008.
					slow.startReading()
					if err := slow.closed(); !websocket.IsCloseError(err, websocket.ClosePolicyViolation) {
						t.Fatalf("slow member: %v, want 1008", err)
					}
				} else if h.LocalCount("r") != 4 {
					t.Fatal("DropSlow closed the slow member")
				}
				t.Logf("%+v", s)
			})
		}
	}
}

// TestRedisAcrossHubs: hubs on three runtimes joined by one real
// redis-server share rooms, ids and users; a member list spans them; an
// emitter with no server reaches them.
func TestRedisAcrossHubs(t *testing.T) {
	rs := redistest.Start(t)
	var hubs []*hub.Hub
	var bases []string
	for _, rt := range []string{"stdhttp", "fasthttp", "gnet"} {
		h := redisHub(t, rs.URL())
		hubs = append(hubs, h)
		bases = append(bases, chatServer(t, rt, h, api.Options{}))
	}
	a := join(t, bases[0], "/chat/r?user=ann")
	b := join(t, bases[1], "/chat/r")
	c := join(t, bases[2], "/chat/r?user=ann")
	a.say("from stdhttp")
	for _, cl := range []*client{a, b, c} {
		if got := cl.read(); got != "from stdhttp" {
			t.Fatalf("got %q", got)
		}
	}
	c.say("from gnet")
	for _, cl := range []*client{a, b, c} {
		if got := cl.read(); got != "from gnet" {
			t.Fatalf("got %q", got)
		}
	}
	hubs[1].ToUser("ann").SendText("ann everywhere")
	if a.read() != "ann everywhere" || c.read() != "ann everywhere" {
		t.Fatal("user across processes")
	}
	hubs[0].ToID(c.id).SendText("to c")
	if c.read() != "to c" {
		t.Fatal("id across processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ids, err := hubs[2].Members(ctx, "r")
	if err != nil || len(ids) != 3 || !slices.Contains(ids, a.id) || !slices.Contains(ids, b.id) {
		t.Fatalf("members: %v %v", ids, err)
	}
	hubs[0].ToID(b.id).Join("extra") // b lives on the fasthttp hub
	waitFor(t, "remote join", func() bool { return hubs[1].LocalCount("extra") == 1 })

	bp, err := hub.NewRedis(rs.URL(), hub.RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e := hub.NewEmitter(bp)
	defer e.Close()
	if err := e.To("r").SendText("from a cron job"); err != nil {
		t.Fatal(err)
	}
	for _, cl := range []*client{a, b, c} {
		if got := cl.read(); got != "from a cron job" {
			t.Fatalf("emitter: got %q", got)
		}
	}
	b.none()
}

// TestRedisRestart: Redis dies mid-conversation: each hub goes on
// delivering to its own members, counts what could not cross, resubscribes
// by itself when Redis is back, and the room spans processes again.
func TestRedisRestart(t *testing.T) {
	rs := redistest.Start(t)
	var hubs []*hub.Hub
	var cs []*client
	for _, rt := range []string{"stdhttp", "gnet"} {
		h := redisHub(t, rs.URL())
		hubs = append(hubs, h)
		base := chatServer(t, rt, h, api.Options{})
		cs = append(cs, join(t, base, "/chat/r"), join(t, base, "/chat/r"))
	}
	cs[0].say("before")
	for _, c := range cs {
		if c.read() != "before" {
			t.Fatal("before")
		}
	}
	rs.Stop()
	waitFor(t, "both hubs see Redis gone", func() bool { return !hubs[0].Stats().BackplaneUp && !hubs[1].Stats().BackplaneUp })
	start := time.Now()
	cs[0].say("during")
	if got0, got1 := cs[0].read(), cs[1].read(); got0 != "during" || got1 != "during" {
		// Seen once under a loaded CI run (not reproduced in 100 runs
		// since): say what came instead, and what each hub counted.
		t.Fatalf("local delivery stopped with Redis: got %q and %q; hub stats %+v, %+v", got0, got1, hubs[0].Stats(), hubs[1].Stats())
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("local delivery took %v while Redis was down", d)
	}
	cs[2].none()
	if hubs[0].Stats().Uncrossed == 0 {
		t.Fatal("uncrossed not counted")
	}
	rs.Restart()
	waitFor(t, "both hubs resubscribed", func() bool { return hubs[0].Stats().BackplaneUp && hubs[1].Stats().BackplaneUp })
	cs[3].say("after")
	for _, c := range cs {
		if got := c.read(); got != "after" {
			t.Fatalf("after restart: %q", got)
		}
	}
	if s := hubs[1].Stats(); s.Reconnects == 0 {
		t.Fatalf("reconnects not counted: %+v", s)
	}
}

// heldPublish is the Redis backplane with a pause after each publish
// that succeeded, until release: what the hub's publisher sees when its
// subscription is lost right after the broker took (and fanned out) an
// envelope, before the publisher read the broker's answer.
type heldPublish struct {
	hub.Backplane
	release chan struct{}
}

func (b *heldPublish) Publish(ctx context.Context, envelope []byte) error {
	err := b.Backplane.Publish(ctx, envelope)
	if err == nil {
		<-b.release
	}
	return err
}

// TestNoDuplicateWhenTheSubscriptionDropsDuringAPublish: the hub's own
// subscription brought the envelope back, then went down before the
// publisher saw the publish succeed. The publisher took that for a
// publish made while its subscription was down and delivered the envelope
// in this process a second time (TestRedisRestart's rare failure: each
// member got "before" twice).
func TestNoDuplicateWhenTheSubscriptionDropsDuringAPublish(t *testing.T) {
	rs := redistest.Start(t)
	rb, err := hub.NewRedis(rs.URL(), hub.RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bp := &heldPublish{Backplane: rb, release: make(chan struct{})}
	h := hub.New(hub.Options{Backplane: bp, Logger: quietLogger(t)})
	t.Cleanup(func() { h.Close() })
	waitFor(t, "subscribed", func() bool { return h.Stats().BackplaneUp })
	base := chatServer(t, "stdhttp", h, api.Options{})
	a, b := join(t, base, "/chat/r"), join(t, base, "/chat/r")
	a.say("before")
	for _, c := range []*client{a, b} {
		if got := c.read(); got != "before" {
			t.Fatalf("got %q, want before", got)
		}
	}
	rs.Stop()
	waitFor(t, "the subscription seen down", func() bool { return !h.Stats().BackplaneUp })
	close(bp.release) // the publisher learns now that "before" was published
	a.say("during")
	for _, c := range []*client{a, b} {
		if got := c.read(); got != "during" {
			t.Fatalf("got %q, want during (an envelope the subscription had delivered came again)", got)
		}
	}
}

func quietLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// TestRedisUnreachableAtStartIsLogged: a hub whose Redis is not there when
// it starts says so (once) at warn level, as it does when a subscription
// it had is lost; it goes on delivering in its own process.
func TestRedisUnreachableAtStartIsLogged(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "redis://" + l.Addr().String()
	l.Close() // nothing listens there now
	bp, err := hub.NewRedis(url, hub.RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	h := hub.New(hub.Options{Backplane: bp, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	defer h.Close()
	waitFor(t, "the warning", func() bool { return strings.Contains(logs.String(), "level=WARN") })
	time.Sleep(500 * time.Millisecond) // more failed attempts: still one line
	if n := strings.Count(logs.String(), "unreachable"); n != 1 {
		t.Fatalf("%d warnings:\n%s", n, logs.String())
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestCloseDeliversWhatSendAccepted: what Send accepted before Close
// reaches the members; a Send after Close always fails.
func TestCloseDeliversWhatSendAccepted(t *testing.T) {
	h := hub.New(hub.Options{Logger: quietLogger(t)})
	base := chatServer(t, "stdhttp", h, api.Options{})
	c := join(t, base, "/chat/r") // it has its id: it joined
	const n = 500
	for i := range n {
		if err := h.To("r").SendText(strconv.Itoa(i)); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	h.Close()
	for i := range n {
		if got := c.read(); got != strconv.Itoa(i) {
			t.Fatalf("message %d: %q", i, got)
		}
	}
	for i := range 100 {
		if err := h.To("r").SendText("late"); err == nil {
			t.Fatalf("send %d after Close: nil", i)
		}
	}
	c.none()
}

// TestRedisURLErrorHidesThePassword: a bad Redis URL is quoted in the
// error (logs, emit's stderr) with its password masked.
func TestRedisURLErrorHidesThePassword(t *testing.T) {
	_, err := hub.NewRedis("redis://app:s3cr3t@redis.internal:6379/notadb", hub.RedisOptions{})
	if err == nil || strings.Contains(err.Error(), "s3cr3t") || !strings.Contains(err.Error(), "redis.internal") {
		t.Fatalf("error %v", err)
	}
}

// TestRedisStallLosesNothingHere: Redis stalls (stopped, not dead) while a
// member talks: what the hub could not publish is delivered here, and what
// it publishes once Redis answers again, while its own subscription is
// still down, is delivered here too — it would never come back. All of
// it was lost to the sender's own room (196 of 486 messages in the
// adversarial run).
func TestRedisStallLosesNothingHere(t *testing.T) {
	rs := redistest.Start(t)
	h := redisHub(t, rs.URL())
	base := chatServer(t, "stdhttp", h, api.Options{})
	a, b := join(t, base, "/chat/r"), join(t, base, "/chat/r")
	rs.Pause()
	const n = 20
	for i := range n {
		a.say("m" + strconv.Itoa(i))
	}
	waitFor(t, "the subscription seen down", func() bool { return !h.Stats().BackplaneUp })
	rs.Resume()
	for i := range n {
		if got, want := b.read(), "m"+strconv.Itoa(i); got != want {
			t.Fatalf("message %d: %q, want %q", i, got, want)
		}
	}
}

// redisHub is a hub on the Redis at url, subscribed, closed at the end of
// the test.
func redisHub(t *testing.T, url string) *hub.Hub {
	t.Helper()
	bp, err := hub.NewRedis(url, hub.RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h := hub.New(hub.Options{Backplane: bp, Logger: quietLogger(t)})
	t.Cleanup(func() { h.Close() })
	waitFor(t, "subscribed", func() bool { return h.Stats().BackplaneUp })
	return h
}
