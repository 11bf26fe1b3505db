// Package hub addresses WebSocket connections from anywhere: each
// connection gets an id, the app may give it a user key and rooms, and any
// goroutine — or, through a Backplane such as Redis, any process, with or
// without a server — sends to a room, several rooms, an id, a user or
// everyone. It is Flask-SocketIO's rooms, emit and message queue for
// api.Conn, on every runtime.
//
//	h := hub.New(hub.Options{})
//	r.Handle("/chat/{room}", func(ws api.Conn) {
//		room := ws.Request().PathValue("room")
//		h.Attach(ws).Join(room)
//		ws.OnMessage(func(m api.Message) { h.To(room).Send(m) })
//	})
//	// from anywhere: a ticker, a webhook, another connection
//	h.To("lobby").Except(id).SendText("hello")
//
// A message is framed once (and compressed once per way of compressing it,
// api.PreparedMessage) and the same bytes go to every member. No lock is
// held while anything is written, and no send waits: a member whose send
// queue is full is closed with 1008 (CloseSlow, the default) or skipped for
// that message (DropSlow), counted either way, and the others never notice.
//
// Delivery: one goroutine per hub delivers every message, in one order, so
// all members of a room see the room's messages in the same order. With a
// backplane, every message — this process's too — is delivered when it
// comes back from the broker, so every process delivers in the broker's
// order. What can be lost, and when, is said at Backplane.
package hub

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsmatrix/wsmatrix/api"
)

// SlowPolicy says what happens to a member whose send queue is full (see
// api.Options.SendQueueBytes) when a message is sent to it.
type SlowPolicy uint8

const (
	// CloseSlow closes the member with 1008 (policy violation): it missed
	// a message, and a client that reconnects knows it.
	CloseSlow SlowPolicy = iota
	// DropSlow skips the message for that member, which stays connected.
	DropSlow
)

// Options configure a Hub. The zero value is an in-process hub.
type Options struct {
	// Backplane joins this hub to the hubs of other processes and to
	// emitters; nil: this process only.
	Backplane Backplane
	// SlowMember is what happens to a member whose send queue is full.
	SlowMember SlowPolicy
	// Logger receives the backplane's state changes and losses. Default
	// slog.Default().
	Logger *slog.Logger
	// Node names this process among the backplane's. Default: random.
	Node string
}

// Hub is a registry of connections, their rooms and users, and a delivery
// loop. It is safe for concurrent use.
type Hub struct {
	opts   Options
	node   string
	log    *slog.Logger
	nextID atomic.Uint64

	mu      sync.RWMutex
	byConn  map[api.Conn]*Member
	members map[string]*Member
	rooms   map[string]map[*Member]struct{}
	users   map[string]map[*Member]struct{}

	inbox          chan *envelope // to the delivery loop, in delivery order
	out            chan *envelope // to the publisher (with a backplane)
	up             atomic.Bool    // the backplane's subscription is live
	ownBack        atomic.Uint64  // envelopes of publishLoop's that the subscription brought back
	subscribedOnce atomic.Bool
	closeMu        sync.RWMutex // held for reading while Send queues, for writing while Close cancels ctx
	unreachedOnce  atomic.Bool  // the backplane could not be reached before it ever was: said once
	ctx            context.Context
	cancel         context.CancelFunc
	wg             sync.WaitGroup

	qmu     sync.Mutex
	qseq    uint64
	queries map[uint64]chan []string

	// Owned by the delivery loop.
	mark    uint64
	scratch []*Member

	st counters
}

type counters struct {
	published, delivered, dropped, gone atomic.Uint64
	uncrossed, reconnects, bad          atomic.Uint64
	lag                                 atomic.Int64
}

// Member is one connection in a hub.
type Member struct {
	h    *Hub
	conn api.Conn
	id   string
	mark uint64 // owned by the delivery loop

	// Guarded by h.mu.
	user  string
	rooms []string
	gone  bool
}

const (
	inboxSize = 4096
	outSize   = 4096
)

// New starts a hub: its delivery loop and, with a backplane, its
// subscription and publisher. Close stops them.
func New(o Options) *Hub {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Node == "" {
		var b [10]byte
		rand.Read(b[:])
		o.Node = base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])
	}
	h := &Hub{
		opts: o, node: o.Node, log: o.Logger.With("hub", o.Node),
		byConn: map[api.Conn]*Member{}, members: map[string]*Member{},
		rooms: map[string]map[*Member]struct{}{}, users: map[string]map[*Member]struct{}{},
		inbox: make(chan *envelope, inboxSize), queries: map[uint64]chan []string{},
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.wg.Go(h.deliverLoop)
	if bp := o.Backplane; bp != nil {
		h.out = make(chan *envelope, outSize)
		h.wg.Go(h.publishLoop)
		h.wg.Go(func() { bp.Subscribe(h.ctx, h.fromBackplane, h.backplaneState) })
	}
	return h
}

// Node is this hub's name among the backplane's nodes.
func (h *Hub) Node() string { return h.node }

// Close stops the hub's goroutines and closes its backplane. What Send
// accepted before is delivered to this process's members first (with a
// backplane, what was still queued for it reaches this process only);
// Send fails afterwards. Members stay connected.
func (h *Hub) Close() error {
	h.closeMu.Lock()
	h.cancel()
	h.closeMu.Unlock()
	h.wg.Wait()
	for { // no loop runs any more: what they left, here
		select {
		case e := <-h.inbox:
			h.deliver(e)
			continue
		default:
		}
		if h.out == nil {
			break
		}
		select {
		case e := <-h.out:
			h.deliver(e)
			continue
		default:
		}
		break
	}
	if h.opts.Backplane != nil {
		return h.opts.Backplane.Close()
	}
	return nil
}

// Attach makes ws a member (with no room yet) and returns it; attaching
// the same connection again returns the same member. The member leaves
// every room and the hub when the connection ends.
func (h *Hub) Attach(ws api.Conn) *Member {
	h.mu.Lock()
	if m := h.byConn[ws]; m != nil {
		h.mu.Unlock()
		return m
	}
	m := &Member{h: h, conn: ws, id: h.node + "-" + strconv.FormatUint(h.nextID.Add(1), 36)}
	h.byConn[ws] = m
	h.members[m.id] = m
	h.mu.Unlock()
	context.AfterFunc(ws.Context(), m.detach)
	return m
}

// Member returns the member with id in this process, or nil.
func (h *Hub) Member(id string) *Member {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.members[id]
}

// ID is the member's id, unique across processes: send to it from
// anywhere with ToID (Flask-SocketIO's request.sid).
func (m *Member) ID() string { return m.id }

// Conn is the member's connection.
func (m *Member) Conn() api.Conn { return m.conn }

// SetUser gives the member a user key (typically the authenticated user's
// id, known in middleware): ToUser reaches every connection of that user
// — tabs, devices — in every process. "" removes it.
func (m *Member) SetUser(key string) *Member {
	h := m.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if m.gone || m.user == key {
		return m
	}
	if m.user != "" {
		removeFrom(h.users, m.user, m)
	}
	m.user = key
	if key != "" {
		addTo(h.users, key, m)
	}
	return m
}

// User is the member's user key, or "".
func (m *Member) User() string {
	m.h.mu.RLock()
	defer m.h.mu.RUnlock()
	return m.user
}

// Join adds the member to rooms.
func (m *Member) Join(rooms ...string) *Member {
	h := m.h
	h.mu.Lock()
	defer h.mu.Unlock()
	m.joinLocked(rooms)
	return m
}

func (m *Member) joinLocked(rooms []string) {
	if m.gone {
		return
	}
	for _, r := range rooms {
		if _, in := m.h.rooms[r][m]; !in { // the room's set, not m.rooms: a join costs the same at any number of rooms
			m.rooms = append(m.rooms, r)
			addTo(m.h.rooms, r, m)
		}
	}
}

// Leave removes the member from rooms.
func (m *Member) Leave(rooms ...string) *Member {
	h := m.h
	h.mu.Lock()
	defer h.mu.Unlock()
	m.leaveLocked(rooms)
	return m
}

func (m *Member) leaveLocked(rooms []string) {
	for _, r := range rooms {
		if _, in := m.h.rooms[r][m]; !in {
			continue
		}
		if i := slices.Index(m.rooms, r); i >= 0 {
			m.rooms = slices.Delete(m.rooms, i, i+1)
		}
		removeFrom(m.h.rooms, r, m)
	}
}

// Rooms are the rooms the member is in.
func (m *Member) Rooms() []string {
	m.h.mu.RLock()
	defer m.h.mu.RUnlock()
	return slices.Clone(m.rooms)
}

// detach removes the member from the hub: its connection ended.
func (m *Member) detach() {
	h := m.h
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range m.rooms { // all of them: no search in m.rooms (quadratic in its rooms, under h.mu)
		removeFrom(h.rooms, r, m)
	}
	m.rooms = nil
	if m.user != "" {
		removeFrom(h.users, m.user, m)
	}
	m.gone = true
	delete(h.members, m.id)
	delete(h.byConn, m.conn)
}

func addTo(set map[string]map[*Member]struct{}, key string, m *Member) {
	s := set[key]
	if s == nil {
		s = map[*Member]struct{}{}
		set[key] = s
	}
	s[m] = struct{}{}
}

func removeFrom(set map[string]map[*Member]struct{}, key string, m *Member) {
	if s := set[key]; s != nil {
		delete(s, m)
		if len(s) == 0 {
			delete(set, key)
		}
	}
}

// LocalRooms are the rooms with members in this process.
func (h *Hub) LocalRooms() []string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return slices.Sorted(maps.Keys(h.rooms))
}

// LocalMembers are the ids of the members of room in this process; ""
// lists every member.
func (h *Hub) LocalMembers(room string) []string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.localIDsLocked(room)
}

func (h *Hub) localIDsLocked(room string) []string {
	var ids []string
	if room == "" {
		ids = slices.Collect(maps.Keys(h.members))
	} else {
		for m := range h.rooms[room] {
			ids = append(ids, m.id)
		}
	}
	slices.Sort(ids)
	return ids
}

// LocalCount is the number of members of room in this process; "" counts
// every member.
func (h *Hub) LocalCount(room string) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if room == "" {
		return len(h.members)
	}
	return len(h.rooms[room])
}

// Members are the ids of the members of room ("": every member) in every
// process on the backplane, asked of each and gathered until all have
// answered or ctx is done (then what came, with ctx's error). Without a
// backplane it is LocalMembers.
func (h *Hub) Members(ctx context.Context, room string) ([]string, error) {
	bp := h.opts.Backplane
	if bp == nil {
		return h.LocalMembers(room), nil
	}
	if !h.up.Load() {
		return h.LocalMembers(room), errors.New("hub: the backplane is down: members of this process only")
	}
	n, err := bp.Peers(ctx)
	if err != nil {
		return h.LocalMembers(room), err
	}
	answers := make(chan []string, n+1)
	h.qmu.Lock()
	h.qseq++
	q := h.qseq
	h.queries[q] = answers
	h.qmu.Unlock()
	defer func() {
		h.qmu.Lock()
		delete(h.queries, q)
		h.qmu.Unlock()
	}()
	e := &envelope{kind: kindQuery, origin: h.node, sent: time.Now(), query: q, room: room, replyTo: h.node}
	if err := bp.Publish(ctx, appendEnvelope(nil, e)); err != nil {
		return h.LocalMembers(room), err
	}
	var ids []string
	for range n {
		select {
		case a := <-answers:
			ids = append(ids, a...)
		case <-ctx.Done():
			slices.Sort(ids)
			return ids, ctx.Err()
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// Count is len(Members(ctx, room)).
func (h *Hub) Count(ctx context.Context, room string) (int, error) {
	ids, err := h.Members(ctx, room)
	return len(ids), err
}

// Stats are a hub's counters since New.
type Stats struct {
	Rooms   int // rooms with members in this process
	Members int // members in this process
	// Published counts the messages (and room changes) sent through this
	// hub; Delivered the messages written to, or queued for, a member;
	// Dropped those a full send queue refused (the member was closed
	// under CloseSlow); Gone those for members whose connection had ended.
	Published, Delivered, Dropped, Gone uint64
	// Uncrossed counts what was delivered in this process only because
	// the backplane was down or behind; Reconnects the backplane's
	// subscriptions after the first; Malformed the envelopes from the
	// backplane that did not decode.
	Uncrossed, Reconnects, Malformed uint64
	// BackplaneUp is true while the subscription is live (and always
	// without a backplane); Lag is how long the last message from the
	// backplane took from its publisher to this hub.
	BackplaneUp bool
	Lag         time.Duration
}

// Stats returns the hub's counters.
func (h *Hub) Stats() Stats {
	h.mu.RLock()
	s := Stats{Rooms: len(h.rooms), Members: len(h.members)}
	h.mu.RUnlock()
	s.Published, s.Delivered, s.Dropped, s.Gone = h.st.published.Load(), h.st.delivered.Load(), h.st.dropped.Load(), h.st.gone.Load()
	s.Uncrossed, s.Reconnects, s.Malformed = h.st.uncrossed.Load(), h.st.reconnects.Load(), h.st.bad.Load()
	s.BackplaneUp = h.opts.Backplane == nil || h.up.Load()
	s.Lag = time.Duration(h.st.lag.Load())
	return s
}
