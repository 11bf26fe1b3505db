package api

import (
	"sync"
	"sync/atomic"

	"github.com/wsmatrix/wsmatrix/internal/hook"
)

// PreparedMessage is a message encoded once for many connections, for
// broadcast: each way a connection frames it — plain, or compressed for
// connections that negotiated permessage-deflate without context takeover
// at a given level and window — is built on the first send that needs it
// and shared by all later ones. Send it with Conn.SendPrepared.
type PreparedMessage struct {
	msg    Message
	mu     sync.Mutex                      // serializes building
	frames atomic.Pointer[[]preparedFrame] // read without a lock
}

type preparedFrame struct {
	key   uint32
	frame []byte
}

// NewPreparedMessage prepares m; its data is copied.
func NewPreparedMessage(m Message) *PreparedMessage {
	return &PreparedMessage{msg: Message{Type: m.Type, Data: append([]byte(nil), m.Data...)}}
}

// Message returns the prepared message. Its data must not be changed.
func (p *PreparedMessage) Message() Message { return p.msg }

func init() {
	hook.PreparedFrame = func(pm any, key uint32, build func(typ uint8, data []byte, key uint32) []byte) []byte {
		return pm.(*PreparedMessage).frame(key, build)
	}
}

// frame returns the frame for key, building it once.
func (p *PreparedMessage) frame(key uint32, build func(uint8, []byte, uint32) []byte) []byte {
	if fs := p.frames.Load(); fs != nil {
		for _, f := range *fs {
			if f.key == key {
				return f.frame
			}
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var fs []preparedFrame
	if old := p.frames.Load(); old != nil {
		for _, f := range *old {
			if f.key == key {
				return f.frame
			}
		}
		fs = append(fs, *old...)
	}
	b := build(uint8(p.msg.Type), p.msg.Data, key)
	fs = append(fs, preparedFrame{key, b})
	p.frames.Store(&fs)
	return b
}
