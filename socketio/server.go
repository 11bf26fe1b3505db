// Package socketio is a Socket.IO server (protocol v5 over Engine.IO v4)
// on wsmatrix: the clients Flask-SocketIO's front-ends use
// (socket.io-client 4.x, python-socketio 5) talk to it unchanged, over
// HTTP long-polling and WebSocket, on every runtime. Rooms, broadcast and
// emit from anywhere go through the hub, so a Redis backplane, user keys
// and `wsmatrix emit --event` reach Socket.IO clients too.
//
//	io := socketio.New(socketio.Options{Hub: h})
//	io.Mount(router, "/socket.io/")
//	io.Of("/").OnConnection(func(s *socketio.Socket) {
//		s.On("my event", func(e *socketio.Event) {
//			s.Emit("my response", e.Values()...) // emit('my response', json): what came, if anything
//		})
//	})
package socketio

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/hub"
)

// Options configure a Server. Zero fields take the documented defaults.
type Options struct {
	// Hub carries rooms and emits; default: a new in-process hub.
	Hub *hub.Hub
	// PingInterval and PingTimeout: the Engine.IO heartbeat (25 s, 20 s).
	PingInterval, PingTimeout time.Duration
	// MaxHTTPBufferSize bounds a POST body and a message (1,000,000 bytes,
	// as the Node.js server).
	MaxHTTPBufferSize int
	// MaxBufferedBytes bounds what waits for a long-polling client's next
	// poll (1 MiB); past it the session closes (or, for hub messages under
	// DropSlow, the message is dropped).
	MaxBufferedBytes int
	// MaxSessions bounds open sessions (0: no bound); past it the
	// handshake gets 503.
	MaxSessions int
	// MaxAttachments bounds the binary attachments of one packet (10).
	MaxAttachments int
	// UpgradeTimeout bounds how long a WebSocket opened to upgrade a
	// session may wait before it upgrades (10 s, as the Node.js server);
	// past it, it is closed and polling goes on.
	UpgradeTimeout time.Duration
	// ConnectTimeout bounds how long a session may stay without a
	// connected namespace (45 s, as the Node.js server): past it, it is
	// closed.
	ConnectTimeout time.Duration
	// Logger: default slog.Default().
	Logger *slog.Logger
}

// Server is a Socket.IO server. Mount it on a router.
type Server struct {
	opts Options
	hub  *hub.Hub
	own  bool // the hub is ours to close

	mu       sync.Mutex
	closed   bool
	sessions map[string]*session
	nsps     map[string]*Namespace
}

// New returns a server with the namespace "/" ready.
func New(o Options) *Server {
	if o.PingInterval <= 0 {
		o.PingInterval = 25 * time.Second
	}
	if o.PingTimeout <= 0 {
		o.PingTimeout = 20 * time.Second
	}
	if o.MaxHTTPBufferSize <= 0 {
		o.MaxHTTPBufferSize = 1_000_000
	}
	if o.MaxBufferedBytes <= 0 {
		o.MaxBufferedBytes = 1 << 20
	}
	if o.MaxAttachments <= 0 {
		o.MaxAttachments = 10
	}
	if o.UpgradeTimeout <= 0 {
		o.UpgradeTimeout = 10 * time.Second
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 45 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s := &Server{opts: o, hub: o.Hub, sessions: map[string]*session{}, nsps: map[string]*Namespace{}}
	if s.hub == nil {
		s.hub, s.own = hub.New(hub.Options{Logger: o.Logger}), true
	}
	s.Of("/")
	return s
}

// Mount serves Engine.IO at path (typically "/socket.io/"): long-polling
// as a plain HTTP route, WebSocket as a WebSocket route, on one path. A
// WebSocket handshake that cannot become a session (another Engine.IO
// version, an unknown sid) is answered 400 with the Engine.IO error, as
// on the Node.js server, when path is a subtree other than "/".
func (s *Server) Mount(r *api.Router, path string) {
	if len(path) > 1 && strings.HasPrefix(path, "/") && strings.HasSuffix(path, "/") {
		r = r.Group(strings.TrimSuffix(path, "/"))
		r.Use(s.checkHandshake)
		path = "/"
	}
	r.HandleHTTPFunc(path, s.servePolling)
	r.Handle(path, s.serveWebSocket)
}

// checkHandshake answers an Engine.IO WebSocket handshake that cannot
// become a session before the upgrade: 400, with the error the polling
// handshake gives. serveWebSocket still checks (a mount on "/" has no
// middleware of its own).
func (s *Server) checkHandshake(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !api.IsUpgrade(r) { // Upgrade: h2c and the like are plain requests to the router too
			next.ServeHTTP(w, r)
			return
		}
		q := r.URL.Query()
		switch sid := q.Get("sid"); {
		case q.Get("EIO") != "4":
			engineError(w, 5, "Unsupported protocol version")
		case q.Get("transport") != "websocket":
			engineError(w, 0, "Transport unknown")
		case sid != "" && s.session(sid) == nil:
			engineError(w, 1, "Session ID unknown")
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// Close ends every session ("server shutting down" for their sockets) and
// closes the hub if the server made it.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	sessions := make([]*session, 0, len(s.sessions))
	for _, sess := range s.sessions {
		sessions = append(sessions, sess)
	}
	s.mu.Unlock()
	for _, sess := range sessions {
		sess.close("server shutting down")
	}
	if s.own {
		return s.hub.Close()
	}
	return nil
}

// Of returns the namespace name, creating it.
func (s *Server) Of(name string) *Namespace {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.nsps[name]; n != nil {
		return n
	}
	n := &Namespace{srv: s, name: name}
	s.nsps[name] = n
	return n
}

func (s *Server) namespace(name string) *Namespace {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nsps[name]
}

// Namespace is a Socket.IO namespace: its middleware, its connection
// handler and its rooms.
type Namespace struct {
	srv  *Server
	name string

	mu         sync.Mutex
	middleware []func(s *Socket, auth json.RawMessage) error
	onConnect  func(*Socket)
}

// Use adds a middleware run on each connection to the namespace with the
// client's auth payload; an error refuses the connection, and the client
// sees its message (connect_error). An error with a Data() method also
// sends that data.
func (n *Namespace) Use(fn func(s *Socket, auth json.RawMessage) error) {
	n.mu.Lock()
	n.middleware = append(n.middleware, fn)
	n.mu.Unlock()
}

// OnConnection registers the handler run for each socket that connects;
// it registers the socket's event handlers before any event is read.
func (n *Namespace) OnConnection(fn func(*Socket)) {
	n.mu.Lock()
	n.onConnect = fn
	n.mu.Unlock()
}

// HubRoom is the hub room that holds the sockets of Socket.IO room room
// of namespace nsp ("": every socket of the namespace), for emitters that
// reach Socket.IO clients through the hub.
func HubRoom(nsp, room string) string {
	if room == "" {
		return "socket.io:" + nsp
	}
	return "socket.io:" + nsp + "#" + room
}

func (n *Namespace) room(name string) string { return HubRoom(n.name, name) }

func (n *Namespace) everyone() string { return HubRoom(n.name, "") }

// To targets the sockets of rooms, in every process on the hub's
// backplane.
func (n *Namespace) To(rooms ...string) Broadcast { return Broadcast{ns: n}.To(rooms...) }

// Emit sends an event to every socket of the namespace.
func (n *Namespace) Emit(event string, args ...any) error {
	return Broadcast{ns: n, t: n.srv.hub.To(n.everyone()), set: true}.Emit(event, args...)
}

// Broadcast is a set of sockets to emit to: rooms, ids, users, less the
// excepted, through the hub. Its arguments must be JSON (no []byte).
type Broadcast struct {
	ns  *Namespace
	t   hub.Target
	set bool
}

func (b Broadcast) target() hub.Target {
	if !b.set {
		return b.ns.srv.hub.To()
	}
	return b.t
}

// To adds the sockets of rooms.
func (b Broadcast) To(rooms ...string) Broadcast {
	hr := make([]string, len(rooms))
	for i, r := range rooms {
		hr[i] = b.ns.room(r)
	}
	b.t, b.set = b.target().To(hr...), true
	return b
}

// ToID adds sockets by id.
func (b Broadcast) ToID(ids ...string) Broadcast {
	b.t, b.set = b.target().ToID(ids...), true
	return b
}

// Except leaves sockets out by id.
func (b Broadcast) Except(ids ...string) Broadcast {
	b.t, b.set = b.target().Except(ids...), true
	return b
}

// Emit sends event with args to every targeted socket.
func (b Broadcast) Emit(event string, args ...any) error {
	text, err := EventPacket(b.ns.name, event, args...)
	if err != nil {
		return err
	}
	return b.target().SendText(text)
}

// EventPacket is the Engine.IO message of a Socket.IO event, as the hub
// carries it: what `wsmatrix emit --event` publishes.
func EventPacket(nsp, event string, args ...any) (string, error) {
	data, atts, err := encodeArgs([]any{event}, args)
	if err != nil {
		return "", err
	}
	if len(atts) > 0 {
		return "", errors.New("socketio: binary arguments cannot be broadcast")
	}
	return string(appendPacket([]byte{eMessage}, packet{typ: pEvent, nsp: nsp, id: -1, data: data})), nil
}

// Socket is one client's connection to one namespace.
type Socket struct {
	ns     *Namespace
	sess   *session
	member *hub.Member
	conn   *sockConn

	mu           sync.Mutex
	handlers     map[string]func(*Event)
	onDisconnect func(reason string)
	acks         map[int64]chan *Event
	nextAck      int64
	gone         bool
}

// ID is the socket's id, unique across processes (Flask-SocketIO's
// request.sid): address it with Namespace.To(...).ToID(id).
func (s *Socket) ID() string { return s.member.ID() }

// Namespace is the socket's namespace.
func (s *Socket) Namespace() *Namespace { return s.ns }

// Request is the request that opened the Engine.IO session.
func (s *Socket) Request() *http.Request { return s.sess.req }

// On registers the handler of event. Handlers of one socket run one at a
// time, in the order the events arrive.
func (s *Socket) On(event string, fn func(*Event)) {
	s.mu.Lock()
	s.handlers[event] = fn
	s.mu.Unlock()
}

// OnDisconnect registers fn, called once with the protocol's reason
// ("client namespace disconnect", "server namespace disconnect",
// "transport close", "transport error", "ping timeout", "parse error",
// "server shutting down").
func (s *Socket) OnDisconnect(fn func(reason string)) {
	s.mu.Lock()
	s.onDisconnect = fn
	s.mu.Unlock()
}

// Join adds the socket to rooms; Leave removes it.
func (s *Socket) Join(rooms ...string) {
	for _, r := range rooms {
		s.member.Join(s.ns.room(r))
	}
}

// Leave removes the socket from rooms.
func (s *Socket) Leave(rooms ...string) {
	for _, r := range rooms {
		s.member.Leave(s.ns.room(r))
	}
}

// SetUser gives the socket a user key (hub.Member.SetUser).
func (s *Socket) SetUser(key string) { s.member.SetUser(key) }

// To targets the other sockets of rooms (Socket.IO's socket.to(room):
// the sender left out).
func (s *Socket) To(rooms ...string) Broadcast { return s.ns.To(rooms...).Except(s.ID()) }

// Emit sends an event to this socket. []byte arguments are sent as binary
// attachments.
func (s *Socket) Emit(event string, args ...any) error {
	data, atts, err := encodeArgs([]any{event}, args)
	if err != nil {
		return err
	}
	return s.sendPacket(packet{typ: pEvent, id: -1, data: data}, atts)
}

// EmitWithAck sends an event and waits for the client's acknowledgement
// until ctx is done. The answer's arguments are an Event's (its Name
// empty): Args as JSON, Value and Values with a binary answer's bytes in
// place.
func (s *Socket) EmitWithAck(ctx context.Context, event string, args ...any) (*Event, error) {
	data, atts, err := encodeArgs([]any{event}, args)
	if err != nil {
		return nil, err
	}
	ch := make(chan *Event, 1)
	s.mu.Lock()
	if s.gone {
		s.mu.Unlock()
		return nil, errClosed
	}
	id := s.nextAck
	s.nextAck++
	s.acks[id] = ch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.acks, id)
		s.mu.Unlock()
	}()
	if err := s.sendPacket(packet{typ: pEvent, id: id, data: data}, atts); err != nil {
		return nil, err
	}
	select {
	case answer, ok := <-ch:
		if !ok {
			return nil, errClosed
		}
		return answer, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Disconnect disconnects the socket from its namespace.
func (s *Socket) Disconnect() {
	s.sendPacket(packet{typ: pDisconnect, id: -1}, nil)
	s.sess.mu.Lock()
	if s.sess.sockets[s.ns.name] == s {
		delete(s.sess.sockets, s.ns.name)
	}
	s.sess.mu.Unlock()
	s.ended("server namespace disconnect")
}

// sendPacket sends p (in the socket's namespace) and its attachments.
func (s *Socket) sendPacket(p packet, atts [][]byte) error {
	p.nsp = s.ns.name
	if len(atts) > 0 {
		p.attachments = len(atts)
		switch p.typ {
		case pEvent:
			p.typ = pBinaryEvent
		case pAck:
			p.typ = pBinaryAck
		}
	}
	sess := s.sess
	sess.sendMu.Lock()
	defer sess.sendMu.Unlock()
	if err := sess.send(epacket{text: appendPacket([]byte{eMessage}, p)}, false); err != nil {
		return err
	}
	for _, a := range atts {
		if err := sess.send(epacket{binary: a}, false); err != nil {
			return err
		}
	}
	return nil
}

// ended runs once when the socket leaves: the hub forgets it, pending
// acknowledgements fail, OnDisconnect runs.
func (s *Socket) ended(reason string) {
	s.mu.Lock()
	if s.gone {
		s.mu.Unlock()
		return
	}
	s.gone = true
	fn := s.onDisconnect
	for id, ch := range s.acks {
		close(ch)
		delete(s.acks, id)
	}
	s.mu.Unlock()
	s.conn.cancel()
	if fn != nil {
		fn(reason)
	}
}

// Event is an event a client sent.
type Event struct {
	Socket *Socket
	Name   string
	// Args are the event's arguments as JSON; a binary attachment is a
	// placeholder here, its bytes in Value.
	Args  []json.RawMessage
	atts  [][]byte
	ackID int64
}

// Bind decodes argument i into v.
func (e *Event) Bind(i int, v any) error {
	if i >= len(e.Args) {
		return fmt.Errorf("socketio: no argument %d (the event has %d)", i, len(e.Args))
	}
	return json.Unmarshal(e.Args[i], v)
}

// Value is argument i: the bytes of a binary attachment, or its JSON; an
// argument with attachments inside (a Buffer in an object) is decoded,
// maps and slices with the bytes in place (numbers as json.Number), so
// that it goes out again as it came.
func (e *Event) Value(i int) any { return e.value(i, make([]bool, len(e.atts))) }

// value is Value with used, the attachments already placed: each is
// placed once (withBytes).
func (e *Event) value(i int, used []bool) any {
	if n, ok := isPlaceholder(e.Args[i]); ok && n >= 0 && n < len(e.atts) && !used[n] {
		used[n] = true
		return e.atts[n]
	}
	if len(e.atts) > 0 && bytes.Contains(e.Args[i], []byte(`"_placeholder"`)) {
		if v, ok := withBytes(e.Args[i], e.atts, used); ok {
			return v
		}
	}
	return e.Args[i]
}

// Values are all arguments as Value gives them: Ack(e.Values()...)
// echoes an event, attachments included (each once: an echo sends no
// more attachments than came).
func (e *Event) Values() []any {
	vs := make([]any, len(e.Args))
	used := make([]bool, len(e.atts))
	for i := range e.Args {
		vs[i] = e.value(i, used)
	}
	return vs
}

// WantsAck reports whether the client asked for an acknowledgement.
func (e *Event) WantsAck() bool { return e.ackID >= 0 }

// Ack answers the client's acknowledgement callback with args; without
// one asked it does nothing.
func (e *Event) Ack(args ...any) error {
	if e.ackID < 0 {
		return nil
	}
	data, atts, err := encodeArgs(nil, args)
	if err != nil {
		return err
	}
	id := e.ackID
	e.ackID = -1 // once
	return e.Socket.sendPacket(packet{typ: pAck, id: id, data: data}, atts)
}

// onMessage handles a Socket.IO packet; false: malformed.
func (sess *session) onMessage(text []byte) bool {
	sess.mu.Lock()
	waiting := sess.pending != nil
	sess.mu.Unlock()
	if waiting {
		return false // a text packet while attachments were due
	}
	p, err := decodePacket(text)
	if err != nil {
		return false
	}
	if p.attachments > 0 {
		if p.attachments > sess.srv.opts.MaxAttachments {
			return false
		}
		sess.mu.Lock()
		sess.pending, sess.atts = &p, nil
		sess.mu.Unlock()
		return true
	}
	sess.dispatch(p, nil)
	return true
}

// onBinary takes an attachment of the pending binary packet.
func (sess *session) onBinary(b []byte) {
	sess.mu.Lock()
	p := sess.pending
	if p == nil {
		sess.mu.Unlock()
		sess.close("parse error")
		return
	}
	sess.atts = append(sess.atts, b)
	total := 0
	for _, a := range sess.atts {
		total += len(a)
	}
	if total > sess.srv.opts.MaxHTTPBufferSize { // a packet's attachments together
		sess.mu.Unlock()
		sess.close("parse error")
		return
	}
	if len(sess.atts) < p.attachments {
		sess.mu.Unlock()
		return
	}
	atts := sess.atts
	sess.pending, sess.atts = nil, nil
	sess.mu.Unlock()
	sess.dispatch(*p, atts)
}

func (sess *session) socket(nsp string) *Socket {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.sockets[nsp]
}

func (sess *session) dispatch(p packet, atts [][]byte) {
	switch p.typ {
	case pConnect:
		sess.connect(p)
	case pDisconnect:
		if s := sess.socket(p.nsp); s != nil {
			sess.mu.Lock()
			delete(sess.sockets, p.nsp)
			sess.mu.Unlock()
			s.ended("client namespace disconnect")
		}
	case pEvent, pBinaryEvent:
		s := sess.socket(p.nsp)
		if s == nil {
			return
		}
		s.mu.Lock()
		fn := s.handlers[p.name]
		s.mu.Unlock()
		if fn == nil {
			return
		}
		e := &Event{Socket: s, Name: p.name, Args: p.args, atts: atts, ackID: p.id}
		s.protect(func() { fn(e) })
	case pAck, pBinaryAck:
		s := sess.socket(p.nsp)
		if s == nil {
			return
		}
		s.mu.Lock()
		ch := s.acks[p.id]
		delete(s.acks, p.id)
		s.mu.Unlock()
		if ch != nil {
			ch <- &Event{Socket: s, Args: p.args, atts: atts, ackID: -1}
		}
	}
}

// protect runs a user handler; a panic is logged and disconnects the
// socket, never the process.
func (s *Socket) protect(fn func()) {
	defer func() {
		if v := recover(); v != nil {
			s.ns.srv.opts.Logger.Error("socketio: handler panicked", "namespace", s.ns.name, "socket", s.ID(), "panic", v)
			go s.Disconnect()
		}
	}()
	fn()
}

// connectError is what a refused connection tells the client.
type connectError struct {
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

func (sess *session) connect(p packet) {
	ns := sess.srv.namespace(p.nsp)
	refuse := func(msg string, data any) {
		b, _ := json.Marshal(connectError{msg, data})
		sess.sendAlone(epacket{text: appendPacket([]byte{eMessage}, packet{typ: pConnectError, nsp: p.nsp, id: -1, data: b})})
	}
	if ns == nil {
		refuse("Invalid namespace", nil)
		return
	}
	if sess.socket(p.nsp) != nil {
		return // already connected: ignored, as the Node.js server does
	}
	s := &Socket{ns: ns, sess: sess, handlers: map[string]func(*Event){}, acks: map[int64]chan *Event{}}
	s.conn = newSockConn(s)
	s.member = sess.srv.hub.Attach(s.conn)
	ns.mu.Lock()
	mws := slices.Clone(ns.middleware)
	onConnect := ns.onConnect
	ns.mu.Unlock()
	auth := p.data
	if len(auth) == 0 {
		auth = json.RawMessage("{}")
	}
	for _, mw := range mws {
		var err error
		s.protect(func() { err = mw(s, auth) })
		if err != nil {
			var data any
			if d, ok := err.(interface{ Data() any }); ok {
				data = d.Data()
			}
			s.conn.cancel()
			refuse(err.Error(), data)
			return
		}
	}
	sess.mu.Lock()
	if sess.closed || sess.sockets[p.nsp] != nil { // ended, or connected meanwhile: this one would never leave the hub
		sess.mu.Unlock()
		s.conn.cancel()
		return
	}
	sess.sockets[p.nsp] = s
	sess.mu.Unlock()
	s.member.Join(ns.everyone())
	b, _ := json.Marshal(map[string]string{"sid": s.ID()})
	s.sendPacket(packet{typ: pConnect, id: -1, data: b}, nil)
	if onConnect != nil {
		s.protect(func() { onConnect(s) })
	}
}

// sockConn is a socket as the hub sees it: an api.Conn whose messages
// are Engine.IO text messages, sent on whichever transport is active.
// Only what the hub uses does anything.
type sockConn struct {
	s      *Socket
	ctx    context.Context
	cancel context.CancelFunc
}

func newSockConn(s *Socket) *sockConn {
	c := &sockConn{s: s}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c
}

var errNotAConn = errors.New("socketio: a socket's hub connection only sends")

func (c *sockConn) Receive() (api.Message, error) { return api.Message{}, errNotAConn }
func (c *sockConn) ReceiveTimeout(time.Duration) (api.Message, error) {
	return api.Message{}, errNotAConn
}
func (c *sockConn) ReceiveContext(context.Context) (api.Message, error) {
	return api.Message{}, errNotAConn
}
func (c *sockConn) Send(m api.Message) error {
	return c.TrySendPrepared(api.NewPreparedMessage(m), false)
}
func (c *sockConn) SendText(s string) error {
	return c.Send(api.Message{Type: api.Text, Data: []byte(s)})
}
func (c *sockConn) SendBinary(p []byte) error {
	return c.Send(api.Message{Type: api.Binary, Data: p})
}
func (c *sockConn) SendPrepared(pm *api.PreparedMessage) error { return c.TrySendPrepared(pm, false) }

// TrySendPrepared sends a hub message: on WebSocket the prepared frame
// itself (framed once for every socket), on long-polling a queued packet.
func (c *sockConn) TrySendPrepared(pm *api.PreparedMessage, closeIfFull bool) error {
	sess := c.s.sess
	m := pm.Message()
	if m.Type != api.Text || len(m.Data) == 0 || m.Data[0] != eMessage {
		return nil // not an Engine.IO message: not for Socket.IO clients
	}
	if string(packetNamespace(m.Data)) != c.s.ns.name {
		return nil // another namespace's (an id targets one socket of a client's)
	}
	sess.sendMu.Lock()
	defer sess.sendMu.Unlock()
	if ws := sess.wsConn(); ws != nil {
		return ws.TrySendPrepared(pm, closeIfFull)
	}
	return sess.send(epacket{text: m.Data}, !closeIfFull)
}
func (c *sockConn) Close(api.StatusCode, string) error {
	go c.s.Disconnect()
	return nil
}
func (c *sockConn) Context() context.Context { return c.ctx }
func (c *sockConn) Request() *http.Request   { return c.s.sess.req }
func (c *sockConn) Subprotocol() string      { return "" }
func (c *sockConn) RemoteAddr() net.Addr {
	if a, err := net.ResolveTCPAddr("tcp", c.s.sess.req.RemoteAddr); err == nil {
		return a
	}
	return nil
}
func (c *sockConn) OnMessage(func(api.Message))   {}
func (c *sockConn) OnClose(func(*api.CloseError)) {}

var _ api.Conn = (*sockConn)(nil)
