//go:build !linux

package conn

import (
	"net"
	"time"
)

// Without epoll, event-style connections of blocking sockets keep their
// reading helper goroutine (poll_linux.go says what Linux does instead).

func (c *Conn) adopt() bool { return false }

// polled is never made here.
type polled struct{}

func (p *polled) tryWrite(a, b []byte) (int, error)               { return 0, net.ErrClosed }
func (p *polled) write(b []byte, deadline time.Time) (int, error) { return 0, net.ErrClosed }
func (p *polled) close()                                          {}
func (p *polled) closeWrite() error                               { return net.ErrClosed }
func (p *polled) askResume()                                      {}
