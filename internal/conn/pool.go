package conn

import "sync"

// pool runs the event-style callbacks of all connections of a server on at
// most max goroutines. A connection is queued at most once at a time, so
// its messages run in order and one at a time; workers exit when there is
// nothing to do, so an idle server holds no worker.
type pool struct {
	max int

	mu      sync.Mutex
	ready   []*Conn
	head    int
	running int
	wg      sync.WaitGroup
}

func (p *pool) schedule(c *Conn) {
	p.mu.Lock()
	p.ready = append(p.ready, c)
	if p.running < p.max {
		p.running++
		p.wg.Add(1)
		go p.work()
	}
	p.mu.Unlock()
}

func (p *pool) work() {
	defer p.wg.Done()
	for {
		p.mu.Lock()
		if p.head == len(p.ready) {
			p.ready, p.head = p.ready[:0], 0
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
		if c.runEvents() {
			p.mu.Lock()
			p.ready = append(p.ready, c) // behind the others: fairness
			p.mu.Unlock()
		}
	}
}

func (p *pool) wait() { p.wg.Wait() }
