package api

// Observer receives a runtime's events, for metrics (see the Prometheus
// exporter of cmd/wsmatrix). Every field is optional: a nil func is not
// called, so fields can be added without breaking anyone (as
// net/http/httptrace.ClientTrace does). The funcs are called on hot paths:
// they must be fast and safe for concurrent use. A panic in one of them is
// recovered, logged with its stack and counted by Panicked; the connection
// and the server go on.
type Observer struct {
	// Handshake reports an upgrade the runtime decided: 101, or the status
	// of its refusal (400, 403, 405, 426, 503). Answers of the router and
	// middleware (404, 401, ...) are not upgrades and are not reported.
	Handshake func(status int)
	// Opened and Closed report a connection's start and end, with the code
	// it ended with (1006 when it ended without a close frame).
	Opened func()
	Closed func(code StatusCode)
	// Received and Sent report one whole message and its size: Received
	// as the handler takes it (Receive returns it, or OnMessage is called),
	// Sent as the send queue takes it.
	Received func(bytes int)
	Sent     func(bytes int)
	// QueueFull reports a Send refused or timed out on a full send queue.
	QueueFull func()
	// Refused reports an upgrade the runtime refused, or a connection it
	// ended because of what the peer sent, by one of the Reason values.
	Refused func(reason string)
	// Panicked reports a panic recovered in middleware, CheckOrigin, a
	// handler or a callback; the rest of the server went on serving.
	Panicked func()
}

// Reasons reported to Observer.Refused, and logged with the refusal.
const (
	// ReasonOrigin: 403, the Origin is not allowed.
	ReasonOrigin = "origin"
	// ReasonHandshake: 400, 405 or 426, not a valid upgrade request.
	ReasonHandshake = "handshake"
	// ReasonCapacity: 503, MaxConnections reached or shutting down.
	ReasonCapacity = "capacity"
	// ReasonProtocol: close 1002, a frame broke RFC 6455.
	ReasonProtocol = "protocol"
	// ReasonUTF8: close 1007, text that is not UTF-8.
	ReasonUTF8 = "utf8"
	// ReasonTooBig: close 1009, a message over ReadLimit.
	ReasonTooBig = "too_big"
	// ReasonFlood: close 1008, an event-loop peer sent more than its
	// handler's budget, max(ReadLimit, InboxBytes), while the handler was
	// busy.
	ReasonFlood = "flood"
)
