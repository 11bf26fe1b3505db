package conn

import (
	"sync"
	"time"
)

// pool runs the event-style callbacks of all connections of a server on at
// most max goroutines. A connection is queued at most once at a time, so
// its messages run in order and one at a time. A worker with nothing to do
// waits a moment for more (so a steady load does not start a goroutine per
// message) and then exits: an idle server holds no worker.
type pool struct {
	max int

	mu      sync.Mutex
	ready   []*Conn
	head    int
	running int
	blocked int           // workers whose callback waits in Send: they do not count toward max
	idle    int           // workers waiting in linger
	wake    chan struct{} // one token per woken idle worker
	wg      sync.WaitGroup
}

// linger is how long an idle worker waits for work before it exits.
const linger = 20 * time.Millisecond

func (p *pool) schedule(c *Conn) {
	p.mu.Lock()
	p.ready = append(p.ready, c)
	switch {
	case p.idle > 0:
		p.idle--
		p.wake <- struct{}{} // buffered for every worker: never blocks
	case p.running-p.blocked < p.max:
		p.startLocked()
	}
	p.mu.Unlock()
}

func (p *pool) startLocked() {
	if p.wake == nil {
		p.wake = make(chan struct{}, p.max)
	}
	p.running++
	p.wg.Add(1)
	go p.work()
}

// block marks a worker as waiting in Send (for room a peer may never
// make): while it waits, it does not count toward max, and connections
// that wait to be run get a new worker. So peers that read nothing hold
// the goroutines of their own callbacks, not everyone's.
func (p *pool) block() {
	p.mu.Lock()
	p.blocked++
	if p.head < len(p.ready) && p.idle == 0 && p.running-p.blocked < p.max {
		p.startLocked()
	}
	p.mu.Unlock()
}

// unblock ends block; a worker over max exits once idle (linger).
func (p *pool) unblock() {
	p.mu.Lock()
	p.blocked--
	p.mu.Unlock()
}

func (p *pool) work() {
	defer p.wg.Done()
	t := time.NewTimer(linger)
	defer t.Stop()
	p.mu.Lock()
	for {
		if p.head == len(p.ready) {
			p.ready, p.head = p.ready[:0], 0
			p.idle++
			p.mu.Unlock()
			t.Reset(linger)
			select {
			case <-p.wake:
				p.mu.Lock()
				continue
			case <-t.C:
			}
			p.mu.Lock()
			if p.idle == 0 { // a token was sent for us just as we timed out
				p.mu.Unlock()
				<-p.wake
				p.mu.Lock()
				continue
			}
			p.idle--
			p.running--
			p.mu.Unlock()
			return
		}
		c := p.ready[p.head]
		p.ready[p.head] = nil
		p.head++
		if p.head >= 1024 && 2*p.head >= len(p.ready) {
			n := copy(p.ready, p.ready[p.head:])
			clear(p.ready[n:])
			p.ready, p.head = p.ready[:n], 0
		}
		p.mu.Unlock()
		again := c.runEvents()
		p.mu.Lock()
		if again {
			p.ready = append(p.ready, c) // behind the others: fairness
		}
	}
}

func (p *pool) wait() { p.wg.Wait() }
