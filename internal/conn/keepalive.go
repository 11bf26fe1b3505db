package conn

import (
	"time"

	"github.com/wsmatrix/wsmatrix/api"
)

// One clock ticks the keepalive of all connections of a server, while any
// is open: no timer per connection. A tick never waits on a connection:
// pings are queued (sendPing), idle connections get a queued close frame,
// dead ones are cut, and none of these touches the socket in a way that
// blocks.

// clockPeriod is the keepalive clock's resolution: a quarter of the
// shortest keepalive duration, between 5 ms and 1 s.
func clockPeriod(o *api.Options) time.Duration {
	shortest := time.Duration(0)
	for _, d := range []time.Duration{o.PingInterval, o.IdleTimeout} {
		if d > 0 && (shortest == 0 || d < shortest) {
			shortest = d
		}
	}
	if shortest == 0 {
		return 0
	}
	if o.PingInterval > 0 && o.PongTimeout < shortest {
		shortest = o.PongTimeout
	}
	return min(max(shortest/4, 5*time.Millisecond), time.Second)
}

// runClock ticks the connections whose keepalive is due, until stop.
func (s *Server) runClock(stop chan struct{}) {
	defer s.clockWG.Done()
	t := time.NewTicker(s.tickEvery)
	defer t.Stop()
	var due []*Conn
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			n := now.UnixNano()
			s.mu.Lock()
			for c := range s.conns {
				if c.due.Load() <= n {
					due = append(due, c)
				}
			}
			s.mu.Unlock()
			for _, c := range due {
				c.tick(now)
			}
			clear(due)
			due = due[:0]
		}
	}
}

// nextTick is how long until the keepalive state of c can change.
func (c *Conn) nextTick(now time.Time) time.Duration {
	last := time.Unix(0, c.lastRead.Load())
	next := time.Duration(1<<63 - 1)
	if c.srv.opts.PingInterval > 0 {
		if c.pingSent != 0 {
			// Dead at PongTimeout, or, once an answer came, due for the next
			// ping PingInterval after this one.
			sent := time.Unix(0, c.pingSent)
			next = min(next, sent.Add(c.srv.opts.PongTimeout).Sub(now), sent.Add(c.srv.opts.PingInterval).Sub(now))
		} else {
			next = min(next, last.Add(c.srv.opts.PingInterval).Sub(now))
		}
	}
	if c.srv.opts.IdleTimeout > 0 {
		next = min(next, time.Unix(0, c.lastData.Load()).Add(c.srv.opts.IdleTimeout).Sub(now))
	}
	return max(next, time.Millisecond)
}

// tick sends pings, drops peers that stopped answering and closes idle
// connections. The server's clock calls it once c.due has passed.
func (c *Conn) tick(now time.Time) {
	last := c.lastRead.Load()
	c.mu.Lock()
	if c.state >= stClosing {
		c.mu.Unlock()
		return
	}
	if c.pingSent != 0 && last > c.pingSent {
		c.pingSent = 0
	}
	idle := now.Sub(time.Unix(0, last))
	var ping, dead, idleOut bool
	switch {
	case c.srv.opts.IdleTimeout > 0 && now.Sub(time.Unix(0, c.lastData.Load())) >= c.srv.opts.IdleTimeout:
		idleOut = true
	case c.pingSent != 0 && now.Sub(time.Unix(0, c.pingSent)) >= c.srv.opts.PongTimeout:
		dead = true
	case c.srv.opts.PingInterval > 0 && c.pingSent == 0 && idle >= c.srv.opts.PingInterval:
		ping = true
		c.pingSent = now.UnixNano()
	}
	c.due.Store(now.Add(c.nextTick(now)).UnixNano())
	c.mu.Unlock()
	switch {
	case idleOut:
		c.closeWith(api.StatusGoingAway, "idle timeout")
	case dead:
		c.abort("no answer to ping")
	case ping:
		c.sendPing()
	}
}
