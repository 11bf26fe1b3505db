package socketio

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/wsmatrix/wsmatrix/api"
)

// Engine.IO v4 packet types.
const (
	eOpen    = '0'
	eClose   = '1'
	ePing    = '2'
	ePong    = '3'
	eMessage = '4'
	eUpgrade = '5'
	eNoop    = '6'
)

// recordSeparator joins packets in a long-polling payload.
const recordSeparator = '\x1e'

// epacket is one Engine.IO packet waiting for a poll: text (type + data)
// or a binary message.
type epacket struct {
	text   []byte // with its type byte
	binary []byte
}

// size is what p costs queued for a poll: its bytes, and the packet that
// holds them (its place in the queue, its allocation), so that a flood of
// one-byte packets (pongs to a client's pings) is bounded by
// MaxBufferedBytes as surely as large ones.
func (p epacket) size() int { return len(p.text) + len(p.binary) + packetOverhead }

// packetOverhead is a queued packet's cost besides its bytes.
const packetOverhead = 64

// sendOn sends p as one WebSocket message (Send copies nothing it keeps:
// no conversion to a string on the way).
func (p epacket) sendOn(ws api.Conn) error {
	if p.binary != nil {
		return ws.Send(api.Message{Type: api.Binary, Data: p.binary})
	}
	return ws.Send(api.Message{Type: api.Text, Data: p.text})
}

// trySendOn is sendOn without waiting for room: with the queue full the
// WebSocket closes (1008). The upgrade's hand-over uses it, under sendMu,
// which the hub's delivery to this session waits for.
func (p epacket) trySendOn(ws api.Conn) error {
	m := api.Message{Type: api.Text, Data: p.text}
	if p.binary != nil {
		m = api.Message{Type: api.Binary, Data: p.binary}
	}
	return ws.TrySendPrepared(api.NewPreparedMessage(m), true)
}

// session is one Engine.IO connection: long-polling until (and unless)
// it upgrades to WebSocket.
type session struct {
	srv *Server
	sid string
	req *http.Request

	mu       sync.Mutex
	ws       api.Conn  // the WebSocket transport, once active
	queue    []epacket // for the next poll
	queued   int
	poll     chan struct{} // closed to wake the waiting poll; nil when none waits
	polling  bool
	posting  bool // a POST is being served
	probing  int  // WebSockets that answered a probe and have not upgraded: polls return at once
	closed   bool
	reason   string
	timer    *time.Timer
	waitPong bool
	sockets  map[string]*Socket
	pending  *packet // a binary packet waiting for its attachments
	atts     [][]byte
	sendMu   sync.Mutex // keeps a packet and its attachments together

	connectTimer *time.Timer
	// probes are the WebSockets opened to upgrade that have not yet, each
	// with its UpgradeTimeout.
	probes map[api.Conn]*time.Timer
}

var errClosed = errors.New("socketio: session closed")

func newSID() string {
	var b [15]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// openPacket is the handshake's answer.
func (s *Server) openPacket(sid string, upgrades []string) []byte {
	b, _ := json.Marshal(map[string]any{
		"sid": sid, "upgrades": upgrades,
		"pingInterval": s.opts.PingInterval.Milliseconds(),
		"pingTimeout":  s.opts.PingTimeout.Milliseconds(),
		"maxPayload":   s.opts.MaxHTTPBufferSize,
	})
	return append([]byte{eOpen}, b...)
}

func (s *Server) newSession(r *http.Request) (*session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed
	}
	if s.opts.MaxSessions > 0 && len(s.sessions) >= s.opts.MaxSessions {
		return nil, errors.New("too many sessions")
	}
	sess := &session{srv: s, sid: newSID(), req: r, sockets: map[string]*Socket{}}
	s.sessions[sess.sid] = sess
	sess.timer = time.AfterFunc(s.opts.PingInterval, sess.heartbeat)
	sess.connectTimer = time.AfterFunc(s.opts.ConnectTimeout, sess.connectDeadline)
	return sess, nil
}

// connectDeadline closes a session that has no namespace connected
// ConnectTimeout after its handshake.
func (sess *session) connectDeadline() {
	sess.mu.Lock()
	none := len(sess.sockets) == 0
	sess.mu.Unlock()
	if none {
		sess.close("connect timeout")
	}
}

// heartbeat sends a ping every PingInterval and closes the session when
// the pong does not come within PingTimeout.
func (sess *session) heartbeat() {
	sess.mu.Lock()
	if sess.closed {
		sess.mu.Unlock()
		return
	}
	if sess.waitPong {
		sess.mu.Unlock()
		sess.close("ping timeout")
		return
	}
	sess.waitPong = true
	sess.timer.Reset(sess.srv.opts.PingTimeout)
	sess.mu.Unlock()
	// Without sendMu: an Engine.IO ping between a packet and its
	// attachments never reaches the client's Socket.IO decoder, and holding
	// sendMu while a peer that reads nothing makes Send wait would hold
	// the hub's delivery to this session, and so to everyone.
	sess.send(epacket{text: []byte{ePing}}, false)
}

func (sess *session) pong() {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.waitPong && !sess.closed {
		sess.waitPong = false
		sess.timer.Reset(sess.srv.opts.PingInterval)
	}
}

// sendAlone is send for a packet that is not part of another: it waits
// for a packet being sent with its attachments, which it may not come
// between, and for the upgrade's hand-over of what was queued.
func (sess *session) sendAlone(p epacket) error {
	sess.sendMu.Lock()
	defer sess.sendMu.Unlock()
	return sess.send(p, false)
}

// send sends one Engine.IO packet on the active transport, with sendMu
// held (a packet and its attachments stay together, and nothing overtakes
// what polling had queued when the session upgrades). Past
// MaxBufferedBytes waiting for a poll, the session closes (fail says to
// return ErrQueueFull instead and leave it open, for the hub's DropSlow).
func (sess *session) send(p epacket, dropIfFull bool) error {
	sess.mu.Lock()
	if sess.closed {
		sess.mu.Unlock()
		return errClosed
	}
	if ws := sess.ws; ws != nil {
		sess.mu.Unlock()
		return p.sendOn(ws)
	}
	if sess.queued+p.size() > sess.srv.opts.MaxBufferedBytes && sess.queued > 0 {
		sess.mu.Unlock()
		if dropIfFull {
			return api.ErrQueueFull
		}
		// Not on this stack: the sender may hold sendMu, and OnDisconnect,
		// which close runs, may emit on this session.
		go sess.close("transport error")
		return fmt.Errorf("socketio: %w: %d bytes wait for a poll", api.ErrQueueFull, sess.queued)
	}
	sess.queue = append(sess.queue, p)
	sess.queued += p.size()
	sess.wakeLocked()
	sess.mu.Unlock()
	return nil
}

func (sess *session) wakeLocked() {
	if sess.poll != nil {
		close(sess.poll)
		sess.poll = nil
	}
}

// close ends the session and its sockets once.
func (sess *session) close(reason string) { sess.closeWith(reason, api.StatusNormalClosure, "") }

// closeWith is close, closing the WebSocket (if any) with code and text.
func (sess *session) closeWith(reason string, code api.StatusCode, text string) {
	sess.mu.Lock()
	if sess.closed {
		sess.mu.Unlock()
		return
	}
	sess.closed, sess.reason = true, reason
	sess.timer.Stop()
	sess.connectTimer.Stop()
	ws := sess.ws
	probes := make([]api.Conn, 0, len(sess.probes))
	for p, t := range sess.probes {
		t.Stop()
		probes = append(probes, p)
	}
	sess.probes = nil
	sockets := make([]*Socket, 0, len(sess.sockets))
	for _, s := range sess.sockets {
		sockets = append(sockets, s)
	}
	sess.sockets = map[string]*Socket{}
	sess.wakeLocked()
	sess.mu.Unlock()
	sess.srv.mu.Lock()
	delete(sess.srv.sessions, sess.sid)
	sess.srv.mu.Unlock()
	for _, s := range sockets {
		s.ended(reason)
	}
	if ws != nil {
		go ws.Close(code, text)
	}
	for _, p := range probes {
		go p.Close(api.StatusNormalClosure, "")
	}
}

// servePolling is the HTTP side of /socket.io/: the handshake, polls
// (GET) and posted packets (POST).
func (s *Server) servePolling(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("EIO") != "4" {
		engineError(w, 5, "Unsupported protocol version")
		return
	}
	if q.Get("transport") != "polling" {
		engineError(w, 0, "Transport unknown")
		return
	}
	sid := q.Get("sid")
	if sid == "" {
		if r.Method != http.MethodGet {
			engineError(w, 2, "Bad handshake method")
			return
		}
		sess, err := s.newSession(r)
		if err != nil {
			w.Header().Set("Retry-After", "1")
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		writePayload(w, []epacket{{text: s.openPacket(sess.sid, []string{"websocket"})}})
		return
	}
	sess := s.session(sid)
	if sess == nil {
		engineError(w, 1, "Session ID unknown")
		return
	}
	switch r.Method {
	case http.MethodGet:
		sess.servePoll(w, r)
	case http.MethodPost:
		sess.servePost(w, r)
	default:
		engineError(w, 3, "Bad request")
	}
}

func (s *Server) session(sid string) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[sid]
}

func engineError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	json.NewEncoder(w).Encode(map[string]any{"code": code, "message": msg})
}

// refusedLocked answers, with mu held (which it then releases), a
// polling request the session cannot take, and reports whether it did: one
// left from before the upgrade gets 400 and the session goes on (as
// Node.js's TRANSPORT_MISMATCH); one that overlaps another of its kind
// (the protocol allows one GET and one POST at a time) gets 400 and ends
// the session.
func (sess *session) refusedLocked(w http.ResponseWriter, overlaps bool) bool {
	if sess.ws == nil && !overlaps {
		return false
	}
	upgraded := sess.ws != nil
	sess.mu.Unlock()
	engineError(w, 3, "Bad request")
	if !upgraded {
		sess.close("transport error")
	}
	return true
}

// servePoll answers a GET with what is queued, waiting for something for
// at most PingInterval + PingTimeout. A second concurrent poll ends the
// session (the protocol allows one).
func (sess *session) servePoll(w http.ResponseWriter, r *http.Request) {
	sess.mu.Lock()
	if sess.refusedLocked(w, sess.polling) {
		return
	}
	if len(sess.queue) == 0 && !sess.closed && sess.probing == 0 {
		// (While a WebSocket probes, a poll returns a noop at once: the
		// client pauses polling before it upgrades.)
		wake := make(chan struct{})
		sess.poll, sess.polling = wake, true
		sess.mu.Unlock()
		t := time.NewTimer(sess.srv.opts.PingInterval + sess.srv.opts.PingTimeout)
		select {
		case <-wake:
		case <-r.Context().Done():
		case <-t.C:
		}
		t.Stop()
		sess.mu.Lock()
		sess.polling = false
		if sess.poll == wake {
			sess.poll = nil
		}
	}
	out := sess.queue
	sess.queue, sess.queued = nil, 0
	switch {
	case len(out) == 0 && sess.closed:
		out = []epacket{{text: []byte{eClose}}}
	case len(out) == 0:
		out = []epacket{{text: []byte{eNoop}}}
	}
	sess.mu.Unlock()
	writePayload(w, out)
}

func writePayload(w http.ResponseWriter, ps []epacket) {
	var b bytes.Buffer
	for i, p := range ps {
		if i > 0 {
			b.WriteByte(recordSeparator)
		}
		if p.binary != nil {
			b.WriteByte('b')
			b.WriteString(base64.StdEncoding.EncodeToString(p.binary))
		} else {
			b.Write(p.text)
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(b.Bytes())
}

// servePost takes the packets of a POST body of at most
// MaxHTTPBufferSize bytes. A second POST while one is served ends the
// session (the protocol allows one: the handlers of a socket run one at a
// time); one after the upgrade is refused and the session goes on.
func (sess *session) servePost(w http.ResponseWriter, r *http.Request) {
	sess.mu.Lock()
	if sess.refusedLocked(w, sess.posting) {
		return
	}
	sess.posting = true
	sess.mu.Unlock()
	defer func() {
		sess.mu.Lock()
		sess.posting = false
		sess.mu.Unlock()
	}()
	limit := int64(sess.srv.opts.MaxHTTPBufferSize)
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		engineError(w, 3, "Bad request")
		sess.close("transport error")
		return
	}
	if int64(len(body)) > limit {
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		sess.close("transport error")
		return
	}
	for part := range bytes.SplitSeq(body, []byte{recordSeparator}) {
		if len(part) == 0 {
			continue
		}
		if part[0] == 'b' {
			bin, err := base64.StdEncoding.DecodeString(string(part[1:]))
			if err != nil {
				sess.parseError(w)
				return
			}
			sess.onBinary(bin)
			continue
		}
		if !sess.onText(part) {
			sess.parseError(w)
			return
		}
	}
	w.Header().Set("Content-Type", "text/html")
	io.WriteString(w, "ok")
}

func (sess *session) parseError(w http.ResponseWriter) {
	engineError(w, 3, "Bad request")
	sess.close("parse error")
}

// onText handles a text Engine.IO packet; false: it was malformed.
func (sess *session) onText(p []byte) bool {
	if len(p) == 0 {
		return false
	}
	switch p[0] {
	case eClose:
		sess.close("client namespace disconnect")
	case ePong:
		sess.pong()
	case ePing: // a v3 client's, or a probe outside an upgrade
		sess.send(epacket{text: append([]byte{ePong}, p[1:]...)}, false) // without sendMu, as the heartbeat's ping
	case eMessage:
		return sess.onMessage(p[1:])
	case eNoop, eUpgrade:
	default:
		return false
	}
	return true
}

// serveWebSocket is the WebSocket side of /socket.io/: a session that
// starts on WebSocket, or the upgrade of a polling session.
func (s *Server) serveWebSocket(ws api.Conn) {
	q := ws.Request().URL.Query()
	if q.Get("EIO") != "4" || q.Get("transport") != "websocket" {
		ws.Close(api.StatusPolicyViolation, "Engine.IO v4 over websocket expected")
		return
	}
	sid := q.Get("sid")
	if sid == "" {
		sess, err := s.newSession(ws.Request())
		if err != nil {
			ws.Close(api.StatusTryAgainLater, err.Error())
			return
		}
		sess.mu.Lock()
		sess.ws = ws
		sess.mu.Unlock()
		epacket{text: s.openPacket(sess.sid, []string{})}.sendOn(ws)
		sess.readWebSocket(ws)
		return
	}
	sess := s.session(sid)
	if sess == nil {
		ws.Close(api.StatusPolicyViolation, "Session ID unknown")
		return
	}
	sess.mu.Lock()
	if sess.closed || sess.ws != nil { // one WebSocket a session
		sess.mu.Unlock()
		ws.Close(api.StatusPolicyViolation, "the session is already on WebSocket")
		return
	}
	if sess.probes == nil {
		sess.probes = map[api.Conn]*time.Timer{}
	}
	sess.probes[ws] = time.AfterFunc(s.opts.UpgradeTimeout, func() {
		if sess.dropProbe(ws) {
			ws.Close(api.StatusPolicyViolation, "no upgrade within "+s.opts.UpgradeTimeout.String())
		}
	})
	sess.mu.Unlock()
	upgraded, probed := false, false
	ws.OnClose(func(*api.CloseError) {
		if upgraded {
			sess.close("transport close")
			return
		}
		sess.dropProbe(ws)
		if probed { // the upgrade was given up: polling goes on as before
			sess.mu.Lock()
			sess.probing--
			sess.mu.Unlock()
		}
	})
	ws.OnMessage(func(m api.Message) {
		if upgraded {
			sess.onWebSocket(m)
			return
		}
		switch string(m.Data) {
		case "2probe":
			ws.SendText("3probe")
			sess.mu.Lock()
			if !probed {
				probed = true
				sess.probing++
			}
			sess.wakeLocked() // the pending poll, or the next one, returns (a noop) so the client can pause polling
			sess.mu.Unlock()
		case "5":
			// What polling had queued goes out first: senders wait on
			// sendMu until it has, then find the WebSocket.
			sess.sendMu.Lock()
			sess.mu.Lock()
			if sess.closed || sess.ws != nil || !sess.dropProbeLocked(ws) { // not a probe any more: its UpgradeTimeout passed
				sess.mu.Unlock()
				sess.sendMu.Unlock()
				ws.Close(api.StatusPolicyViolation, "bad upgrade")
				return
			}
			queued := sess.queue
			sess.queue, sess.queued = nil, 0
			sess.ws = ws
			upgraded = true
			if probed {
				sess.probing--
			}
			sess.wakeLocked()
			sess.mu.Unlock()
			for _, p := range queued {
				if p.trySendOn(ws) != nil {
					break // the WebSocket closes: a client that does not read what it asked for
				}
			}
			sess.sendMu.Unlock()
		default:
			ws.Close(api.StatusPolicyViolation, "probe expected")
		}
	})
}

// dropProbe forgets a WebSocket opened to upgrade, and reports whether it
// was still waiting to.
func (sess *session) dropProbe(ws api.Conn) bool {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.dropProbeLocked(ws)
}

func (sess *session) dropProbeLocked(ws api.Conn) bool {
	t, ok := sess.probes[ws]
	if ok {
		t.Stop()
		delete(sess.probes, ws)
	}
	return ok
}

func (sess *session) readWebSocket(ws api.Conn) {
	ws.OnClose(func(*api.CloseError) { sess.close("transport close") })
	ws.OnMessage(sess.onWebSocket)
}

func (sess *session) onWebSocket(m api.Message) {
	if len(m.Data) > sess.srv.opts.MaxHTTPBufferSize { // as the Node.js server: one bound for any message
		sess.closeWith("transport error", api.StatusMessageTooBig, "message over maxPayload")
		return
	}
	if m.Type == api.Binary {
		sess.onBinary(m.Data)
		return
	}
	if !sess.onText(m.Data) {
		sess.close("parse error")
	}
}

// wsConn returns the session's WebSocket once it is the transport.
func (sess *session) wsConn() api.Conn {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.ws
}
