package api

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/wsmatrix/wsmatrix/internal/msgbuf"
)

// Handler serves one WebSocket connection. See the package documentation
// for the blocking and the event style.
type Handler func(ws Conn)

// Conn is one WebSocket connection as a handler sees it. All methods are
// safe for concurrent use.
type Conn interface {
	// Receive blocks until the next whole message arrives. Once the
	// connection has ended it returns the messages that were already
	// received, then a *CloseError. Receive fails with ErrEventStyle after
	// OnMessage has been called.
	Receive() (Message, error)

	// ReceiveTimeout is Receive with a time limit. When d passes first it
	// returns ErrTimeout and the connection stays open and usable
	// (Flask-Sock's receive(timeout)). A d <= 0 polls: it returns a message
	// only when one is already waiting.
	ReceiveTimeout(d time.Duration) (Message, error)

	// ReceiveContext is Receive that gives up with ctx.Err() when ctx is
	// done; the connection stays open.
	ReceiveContext(ctx context.Context) (Message, error)

	// Send sends one message. Messages from concurrent Sends never
	// interleave on the wire and keep the order in which Send was called.
	// Send does not keep m.Data after it returns. When the send queue is
	// full, Send waits or fails as Options.SendQueueFull says. While the
	// handler works through messages that arrived together (more wait to
	// be received), what is sent meanwhile may be held, about 1 ms at
	// most, to go out in one write with the answers that follow.
	Send(m Message) error
	// SendText sends a text message; s must be valid UTF-8.
	SendText(s string) error
	// SendBinary sends a binary message.
	SendBinary(p []byte) error
	// SendPrepared sends a message prepared once for many connections: the
	// frame is built once per way of framing it and shared, so a broadcast
	// frames (and compresses) once, not once per member.
	SendPrepared(pm *PreparedMessage) error
	// TrySendPrepared is SendPrepared that never waits for room: when the
	// send queue is full it returns ErrQueueFull at once, closing the
	// connection with 1008 if closeIfFull, or leaving it as it was (this
	// message dropped) if not. Fan-out uses it, so that one peer that
	// stops reading never holds back the others.
	TrySendPrepared(pm *PreparedMessage, closeIfFull bool) error

	// Close starts the closing handshake with code and reason (at most 123
	// bytes, valid UTF-8), waits for the peer's answer for a bounded time
	// and closes the connection. Messages sent before Close are delivered
	// first. Closing an already closed connection returns nil.
	Close(code StatusCode, reason string) error

	// Context is done when the connection has ended, however it ended.
	Context() context.Context
	// Request is the HTTP upgrade request: URL variables (PathValue),
	// headers, query, cookies and the values middleware put in its
	// context. Its body is empty, and the headers that only carried the
	// handshake (Upgrade, Connection, Sec-WebSocket-Key, -Version and
	// -Extensions) are gone: a connection keeps the rest for its life,
	// packed while its handler waits for messages, and rebuilds the
	// request on the first call after that (the same values; a request
	// obtained earlier stays valid). As net/http's handlers, a handler
	// must not modify the request: the connection reads it to pack it
	// once the handler first waits, and what is changed is not kept
	// (nor path values set with SetPathValue for names outside the
	// route's pattern).
	Request() *http.Request
	// Subprotocol is the negotiated subprotocol, or "".
	Subprotocol() string
	// RemoteAddr is the peer's network address.
	RemoteAddr() net.Addr

	// OnMessage switches the connection to event style: every message
	// received from now on, and any already waiting, is passed to fn, in
	// order, one at a time, on a bounded pool shared by all connections.
	// fn must not block for long: it holds back this connection's next
	// message and one worker of the pool. Calling it again replaces fn.
	OnMessage(fn func(Message))
	// OnClose registers fn to run once when the connection ends, after the
	// last message has been passed to OnMessage. A handler that registers
	// OnMessage or OnClose and returns keeps the connection open.
	OnClose(fn func(*CloseError))
}

// MessageType tells text from binary messages; the values are the RFC 6455
// opcodes.
type MessageType uint8

const (
	// Text messages hold UTF-8 text.
	Text MessageType = 1
	// Binary messages hold any bytes.
	Binary MessageType = 2
)

// String returns "text" or "binary".
func (t MessageType) String() string {
	switch t {
	case Text:
		return "text"
	case Binary:
		return "binary"
	}
	return "MessageType(" + strconv.Itoa(int(t)) + ")"
}

// Message is one whole WebSocket message. A received message's Data belongs
// to the receiver.
type Message struct {
	Type MessageType
	Data []byte
}

// Release gives the storage of a received message's Data back, for the
// messages received after it on any connection: a handler that releases
// what it is done with spares the server an allocation per message, and
// its heap the garbage a burst of messages leaves until the next
// collection. Call it once done with a message that Receive or OnMessage
// gave: after Send (which keeps nothing of Data), or after copying what is
// to be kept. Nothing may use Data, or any slice of it, afterwards, and a
// message is released at most once: otherwise two messages share their
// bytes. Releasing is never required: a message not released is collected
// as usual.
func (m Message) Release() { msgbuf.Put(m.Data) }

// TextMessage returns a text message holding s.
func TextMessage(s string) Message { return Message{Type: Text, Data: []byte(s)} }

// BinaryMessage returns a binary message holding p.
func BinaryMessage(p []byte) Message { return Message{Type: Binary, Data: p} }

// String returns the message data as a string.
func (m Message) String() string { return string(m.Data) }

// ErrTimeout is returned by ReceiveTimeout when no message arrived in time;
// the connection is still open.
var ErrTimeout error = timeoutError{}

type timeoutError struct{}

func (timeoutError) Error() string   { return "wsmatrix: receive timed out" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// ErrEventStyle is returned by Receive once OnMessage has been registered:
// messages then go to the callback.
var ErrEventStyle = errors.New("wsmatrix: Receive called on a connection in event style (OnMessage)")

// ErrQueueFull is wrapped in the error Send returns when the send queue
// is full (Options.SendQueueFull = QueueClose) or stayed full for the
// write timeout (QueueBlock); the connection is then closed with 1008.
var ErrQueueFull = errors.New("wsmatrix: send queue full")

// CloseError reports how a connection ended. Code 1006 (AbnormalClosure)
// means it ended without a close frame: the peer vanished, a timeout cut it,
// or the server shut down hard.
type CloseError struct {
	Code   StatusCode
	Reason string
}

func (e *CloseError) Error() string {
	if e.Reason == "" {
		return "wsmatrix: connection closed: " + e.Code.String()
	}
	return "wsmatrix: connection closed: " + e.Code.String() + ": " + e.Reason
}

// StatusCode is a close code from RFC 6455 section 7.4 or the IANA registry.
type StatusCode uint16

// Close codes. 1005, 1006 and 1015 are never sent on the wire: they only
// describe how a connection ended.
const (
	StatusNormalClosure           StatusCode = 1000
	StatusGoingAway               StatusCode = 1001
	StatusProtocolError           StatusCode = 1002
	StatusUnsupportedData         StatusCode = 1003
	StatusNoStatusReceived        StatusCode = 1005
	StatusAbnormalClosure         StatusCode = 1006
	StatusInvalidFramePayloadData StatusCode = 1007
	StatusPolicyViolation         StatusCode = 1008
	StatusMessageTooBig           StatusCode = 1009
	StatusMandatoryExtension      StatusCode = 1010
	StatusInternalError           StatusCode = 1011
	StatusServiceRestart          StatusCode = 1012
	StatusTryAgainLater           StatusCode = 1013
	StatusBadGateway              StatusCode = 1014
	StatusTLSHandshake            StatusCode = 1015
)

var statusNames = map[StatusCode]string{
	StatusNormalClosure:           "normal closure",
	StatusGoingAway:               "going away",
	StatusProtocolError:           "protocol error",
	StatusUnsupportedData:         "unsupported data",
	StatusNoStatusReceived:        "no status received",
	StatusAbnormalClosure:         "abnormal closure",
	StatusInvalidFramePayloadData: "invalid frame payload data",
	StatusPolicyViolation:         "policy violation",
	StatusMessageTooBig:           "message too big",
	StatusMandatoryExtension:      "mandatory extension",
	StatusInternalError:           "internal error",
	StatusServiceRestart:          "service restart",
	StatusTryAgainLater:           "try again later",
	StatusBadGateway:              "bad gateway",
	StatusTLSHandshake:            "TLS handshake",
}

// String returns the code and its name, such as "1000 (normal closure)".
func (c StatusCode) String() string {
	if n, ok := statusNames[c]; ok {
		return strconv.Itoa(int(c)) + " (" + n + ")"
	}
	return strconv.Itoa(int(c))
}

// Sendable reports whether the code may be sent in a close frame:
// 1000-1003, 1007-1014 and 3000-4999.
func (c StatusCode) Sendable() bool {
	switch {
	case c >= 1000 && c <= 1003, c >= 1007 && c <= 1014:
		return true
	case c >= 3000 && c <= 4999:
		return true
	}
	return false
}
