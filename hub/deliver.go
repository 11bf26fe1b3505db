package hub

import (
	"errors"
	"time"

	"github.com/wsmatrix/wsmatrix/api"
)

// publish sends e: straight to the delivery loop without a backplane;
// through the backplane while its subscription is live (and delivered
// here when it comes back); here only, counted, when it is down or behind.
// It never waits on the network.
func (h *Hub) publish(e *envelope) error {
	h.closeMu.RLock() // Close waits for a Send under way: what it queues is delivered
	defer h.closeMu.RUnlock()
	if h.ctx.Err() != nil {
		return errClosed
	}
	e.origin = h.node
	h.st.published.Add(1)
	if h.out != nil {
		if h.up.Load() {
			select {
			case h.out <- e:
				return nil
			default: // the publisher is behind: this one stays here
			}
		}
		h.st.uncrossed.Add(1)
	}
	return h.toInbox(e)
}

// toInbox queues e for the delivery loop, waiting while the loop is
// behind (it never waits on a connection, so it catches up at CPU speed).
func (h *Hub) toInbox(e *envelope) error {
	select {
	case h.inbox <- e: // room: queued even while Close stops the loops, which delivers it
		return nil
	default:
	}
	select {
	case h.inbox <- e:
		return nil
	case <-h.ctx.Done():
		return errClosed
	}
}

var errClosed = errors.New("hub: closed")

// publishLoop hands envelopes to the backplane, one at a time; what the
// backplane refuses is delivered here only.
func (h *Hub) publishLoop() {
	var buf []byte
	var failed time.Time
	var sent uint64 // envelopes published, to compare with ownBack
	for {
		select {
		case <-h.ctx.Done():
			return
		case e := <-h.out:
			buf = appendEnvelope(buf[:0], e)
			if err := h.opts.Backplane.Publish(h.ctx, buf); err != nil {
				h.st.uncrossed.Add(1)
				if time.Since(failed) > time.Second {
					failed = time.Now()
					h.log.Warn("hub: backplane publish failed: delivering in this process only", "err", err)
				}
				h.toInbox(e)
			} else if sent++; !h.up.Load() {
				// The subscription is down: it brought back all it ever
				// will (it counts before it reports the loss), and the
				// next one only what is published once it is up. An
				// envelope it did not bring back (a broker that stalled,
				// then answered) reaches the others, never this hub: it
				// is delivered here. One it did bring back before it went
				// down is not delivered twice.
				if back := h.ownBack.Load(); back < sent {
					h.st.uncrossed.Add(1)
					h.toInbox(e)
				}
				sent = h.ownBack.Load() // what the lost subscription missed is not waited for again
			}
		}
	}
}

// fromBackplane takes an envelope from the backplane's subscription.
func (h *Hub) fromBackplane(b []byte) {
	e, err := decodeEnvelope(b)
	if err != nil {
		if h.st.bad.Add(1) == 1 { // the first says so; the rest are counted (Stats.Malformed)
			h.log.Warn("hub: dropped a malformed envelope from the backplane (text that is not UTF-8, another version, or not a hub's); later ones are only counted", "err", err, "bytes", len(b))
		}
		return
	}
	if e.origin == h.node && e.kind != kindQuery { // publishLoop's (a query is published by Query itself)
		h.ownBack.Add(1)
	}
	if e.kind == kindEmit {
		h.st.lag.Store(int64(time.Since(e.sent)))
	}
	h.toInbox(e)
}

// backplaneState is told when the subscription goes up or down.
func (h *Hub) backplaneState(up bool, err error) {
	was := h.up.Swap(up)
	switch {
	case up && !was:
		if h.subscribedOnce.Swap(true) {
			h.log.Info("hub: backplane subscription restored")
		} else {
			h.log.Debug("hub: backplane subscribed")
		}
	case !up && was:
		h.st.reconnects.Add(1)
		h.log.Warn("hub: backplane subscription lost: delivering in this process only until it is back", "err", err)
	case !up && !h.subscribedOnce.Load() && h.unreachedOnce.CompareAndSwap(false, true):
		h.log.Warn("hub: backplane unreachable: delivering in this process only until it is reached", "err", err)
	}
}

// deliverLoop delivers envelopes in the order they arrive.
func (h *Hub) deliverLoop() {
	for {
		select {
		case <-h.ctx.Done():
			return
		case e := <-h.inbox:
			h.deliver(e)
		}
	}
}

func (h *Hub) deliver(e *envelope) {
	defer clear(h.scratch) // the loop keeps no member alive between envelopes
	switch e.kind {
	case kindEmit:
		ms := h.collect(&e.to)
		if len(ms) == 0 {
			return
		}
		pm := api.NewPreparedMessage(e.msg)
		closeSlow := h.opts.SlowMember == CloseSlow
		var delivered, dropped, gone uint64
		for _, m := range ms {
			switch err := m.conn.TrySendPrepared(pm, closeSlow); {
			case err == nil:
				delivered++
			case errors.Is(err, api.ErrQueueFull):
				dropped++
			default:
				gone++
			}
		}
		h.st.delivered.Add(delivered)
		h.st.dropped.Add(dropped)
		h.st.gone.Add(gone)
	case kindJoin, kindLeave:
		ms := h.collect(&e.to)
		h.mu.Lock()
		for _, m := range ms {
			if e.kind == kindJoin {
				m.joinLocked(e.rooms)
			} else {
				m.leaveLocked(e.rooms)
			}
		}
		h.mu.Unlock()
	case kindDisconnect:
		for _, m := range h.collect(&e.to) {
			go m.conn.Close(api.StatusNormalClosure, "")
		}
	case kindQuery:
		h.mu.RLock()
		ids := h.localIDsLocked(e.room)
		h.mu.RUnlock()
		a := &envelope{kind: kindAnswer, origin: h.node, sent: time.Now(), query: e.query, replyTo: e.replyTo, ids: ids}
		if e.replyTo == h.node {
			h.answer(a)
			return
		}
		select {
		case h.out <- a:
		default: // the asker gives up at its deadline
		}
	case kindAnswer:
		if e.replyTo == h.node {
			h.answer(e)
		}
	}
}

func (h *Hub) answer(a *envelope) {
	h.qmu.Lock()
	ch := h.queries[a.query]
	h.qmu.Unlock()
	if ch != nil {
		select {
		case ch <- a.ids:
		default:
		}
	}
}

// collect returns the members of this process that t targets, each once,
// in the loop's scratch slice. Only the delivery loop calls it.
func (h *Hub) collect(t *target) []*Member {
	h.mark++
	mark := h.mark
	ms := h.scratch[:0]
	h.mu.RLock()
	for _, id := range t.except {
		if m := h.members[id]; m != nil {
			m.mark = mark
		}
	}
	if t.all {
		for _, m := range h.members {
			if m.mark != mark {
				m.mark = mark
				ms = append(ms, m)
			}
		}
	} else {
		for _, r := range t.rooms {
			for m := range h.rooms[r] {
				if m.mark != mark {
					m.mark = mark
					ms = append(ms, m)
				}
			}
		}
		for _, id := range t.ids {
			if m := h.members[id]; m != nil && m.mark != mark {
				m.mark = mark
				ms = append(ms, m)
			}
		}
		for _, u := range t.users {
			for m := range h.users[u] {
				if m.mark != mark {
					m.mark = mark
					ms = append(ms, m)
				}
			}
		}
	}
	h.mu.RUnlock()
	h.scratch = ms
	return ms
}
