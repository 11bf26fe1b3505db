package main

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/hub"
)

// metrics exports a runtime's events to Prometheus, labelled by runtime.
type metrics struct {
	open       prometheus.Gauge
	handshakes *prometheus.CounterVec
	messages   *prometheus.CounterVec
	bytes      *prometheus.CounterVec
	closes     *prometheus.CounterVec
	queueFull  prometheus.Counter
	refused    *prometheus.CounterVec
	panics     prometheus.Counter

	// Resolved once: Received and Sent run per message.
	msgIn, msgOut, bytesIn, bytesOut prometheus.Counter
}

// observer returns the api.Observer that reports to m.
func (m *metrics) observer() *api.Observer {
	return &api.Observer{
		Handshake: m.Handshake,
		Opened:    m.Opened,
		Closed:    m.Closed,
		Received:  m.Received,
		Sent:      m.Sent,
		QueueFull: m.QueueFull,
		Refused:   m.Refused,
		Panicked:  m.Panicked,
	}
}

func newMetrics(reg prometheus.Registerer, runtime string) *metrics {
	l := prometheus.Labels{"runtime": runtime}
	m := &metrics{
		open: prometheus.NewGauge(prometheus.GaugeOpts{Name: "wsmatrix_connections_open",
			Help: "WebSocket connections open now.", ConstLabels: l}),
		handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wsmatrix_handshakes_total",
			Help: "Upgrade requests decided by the runtime, by HTTP status: 101 accepted, else the refusal.", ConstLabels: l}, []string{"status"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wsmatrix_messages_total",
			Help: "Whole WebSocket messages, by direction.", ConstLabels: l}, []string{"direction"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wsmatrix_message_bytes_total",
			Help: "Payload bytes of whole messages, by direction.", ConstLabels: l}, []string{"direction"}),
		closes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wsmatrix_closes_total",
			Help: "Connections ended, by close code (1006: without a close frame).", ConstLabels: l}, []string{"code"}),
		queueFull: prometheus.NewCounter(prometheus.CounterOpts{Name: "wsmatrix_send_queue_full_total",
			Help: "Sends refused or timed out on a full send queue.", ConstLabels: l}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wsmatrix_refused_total",
			Help: "Upgrades refused and connections failed because of what the peer sent, by reason (origin, handshake, capacity, protocol, utf8, too_big, flood).", ConstLabels: l}, []string{"reason"}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{Name: "wsmatrix_panics_total",
			Help: "Panics recovered in middleware, origin checks, handlers and callbacks.", ConstLabels: l}),
	}
	reg.MustRegister(m.open, m.handshakes, m.messages, m.bytes, m.closes, m.queueFull, m.refused, m.panics)
	m.msgIn, m.msgOut = m.messages.WithLabelValues("in"), m.messages.WithLabelValues("out")
	m.bytesIn, m.bytesOut = m.bytes.WithLabelValues("in"), m.bytes.WithLabelValues("out")
	return m
}

func (m *metrics) Handshake(status int) { m.handshakes.WithLabelValues(strconv.Itoa(status)).Inc() }
func (m *metrics) Opened()              { m.open.Inc() }
func (m *metrics) Closed(code api.StatusCode) {
	m.open.Dec()
	m.closes.WithLabelValues(strconv.Itoa(int(code))).Inc()
}
func (m *metrics) Received(n int) {
	m.msgIn.Inc()
	m.bytesIn.Add(float64(n))
}
func (m *metrics) Sent(n int) {
	m.msgOut.Inc()
	m.bytesOut.Add(float64(n))
}
func (m *metrics) QueueFull()            { m.queueFull.Inc() }
func (m *metrics) Refused(reason string) { m.refused.WithLabelValues(reason).Inc() }
func (m *metrics) Panicked()             { m.panics.Inc() }

// registerHub exports the hub's counters, read at each scrape.
func registerHub(reg prometheus.Registerer, runtime string, h *hub.Hub) {
	l := prometheus.Labels{"runtime": runtime}
	gauge := func(name, help string, f func(hub.Stats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: l}, func() float64 { return f(h.Stats()) })
	}
	counter := func(name, help string, f func(hub.Stats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: l}, func() float64 { return float64(f(h.Stats())) })
	}
	reg.MustRegister(
		gauge("wsmatrix_hub_rooms", "Rooms with members in this process.", func(s hub.Stats) float64 { return float64(s.Rooms) }),
		gauge("wsmatrix_hub_members", "Hub members (connections) in this process.", func(s hub.Stats) float64 { return float64(s.Members) }),
		counter("wsmatrix_hub_published_total", "Messages and room changes sent through this process's hub.", func(s hub.Stats) uint64 { return s.Published }),
		counter("wsmatrix_hub_delivered_total", "Messages written or queued to a member in this process.", func(s hub.Stats) uint64 { return s.Delivered }),
		counter("wsmatrix_hub_dropped_total", "Messages a member's full send queue refused (the member closed with 1008 under --slow-member=close).", func(s hub.Stats) uint64 { return s.Dropped }),
		counter("wsmatrix_hub_uncrossed_total", "Messages delivered in this process only because the backplane was down or behind.", func(s hub.Stats) uint64 { return s.Uncrossed }),
		counter("wsmatrix_hub_malformed_total", "Envelopes from the backplane dropped as malformed (text that is not UTF-8, another version, or not a hub's).", func(s hub.Stats) uint64 { return s.Malformed }),
		counter("wsmatrix_hub_backplane_reconnects_total", "Backplane subscriptions lost (each one is then restored by itself).", func(s hub.Stats) uint64 { return s.Reconnects }),
		gauge("wsmatrix_hub_backplane_up", "1 while the backplane subscription is live (always 1 without one).", func(s hub.Stats) float64 {
			if s.BackplaneUp {
				return 1
			}
			return 0
		}),
		gauge("wsmatrix_hub_backplane_lag_seconds", "Time the last message from the backplane took from its publisher to this hub.", func(s hub.Stats) float64 { return s.Lag.Seconds() }),
	)
}

// memoryReturned exports what runtime.ReturnMemory gave back, and returns
// the func it reports to.
func memoryReturned(reg prometheus.Registerer, runtime string) func(uint64) {
	l := prometheus.Labels{"runtime": runtime}
	returns := prometheus.NewCounter(prometheus.CounterOpts{Name: "wsmatrix_memory_returns_total", ConstLabels: l,
		Help: "Times the memory a burst left free was given back to the system (--return-memory), each after one garbage collection."})
	bytes := prometheus.NewCounter(prometheus.CounterOpts{Name: "wsmatrix_memory_returned_bytes_total", ConstLabels: l,
		Help: "Heap bytes given back to the system by --return-memory."})
	reg.MustRegister(returns, bytes)
	return func(n uint64) {
		returns.Inc()
		bytes.Add(float64(n))
	}
}
