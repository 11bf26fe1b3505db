package api

// Observer receives a runtime's events, for metrics (see the Prometheus
// exporter of cmd/wsmatrix). Its methods are called on hot paths: they
// must be fast and safe for concurrent use.
type Observer interface {
	// Handshake reports an upgrade the runtime decided: 101, or the status
	// of its refusal (400, 403, 405, 426, 503). Answers of the router and
	// middleware (404, 401, ...) are not upgrades and are not reported.
	Handshake(status int)
	// Opened and Closed report a connection's start and end, with the code
	// it ended with (1006 when it ended without a close frame).
	Opened()
	Closed(code StatusCode)
	// Received and Sent report one whole message and its size.
	Received(bytes int)
	Sent(bytes int)
	// QueueFull reports a Send refused or timed out on a full send queue.
	QueueFull()
}
