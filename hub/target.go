package hub

import (
	"errors"
	"slices"
	"time"

	"github.com/wsmatrix/wsmatrix/api"
)

// Target is a set of connections in every process: the members of rooms,
// connections by id, the connections of users, or everyone, less those
// excepted. Build one from a Hub (or an Emitter) and send to it:
//
//	h.To("room").Except(m.ID()).SendText("hi")     // emit('msg', 'hi', to='room', skip_sid=sid)
//	h.ToUser("alice").Send(msg)                     // every tab of alice, every process
//	h.To("a", "b").ToID(id).SendText("x")           // a union, each connection once
//
// Targets are values: each method returns a new one.
type Target struct {
	p publisher
	t target
}

// publisher is what a Target sends through: a Hub or an Emitter.
type publisher interface {
	publish(e *envelope) error
}

// To targets the members of rooms.
func (h *Hub) To(rooms ...string) Target { return Target{p: h}.To(rooms...) }

// ToID targets connections by id (Member.ID).
func (h *Hub) ToID(ids ...string) Target { return Target{p: h}.ToID(ids...) }

// ToUser targets every connection of users (Member.SetUser).
func (h *Hub) ToUser(users ...string) Target { return Target{p: h}.ToUser(users...) }

// Everyone targets every connection.
func (h *Hub) Everyone() Target { return Target{p: h, t: target{all: true}} }

// To adds the members of rooms.
func (t Target) To(rooms ...string) Target {
	t.t.rooms = append(t.t.rooms[:len(t.t.rooms):len(t.t.rooms)], rooms...)
	return t
}

// ToID adds connections by id.
func (t Target) ToID(ids ...string) Target {
	t.t.ids = append(t.t.ids[:len(t.t.ids):len(t.t.ids)], ids...)
	return t
}

// ToUser adds every connection of users.
func (t Target) ToUser(users ...string) Target {
	t.t.users = append(t.t.users[:len(t.t.users):len(t.t.users)], users...)
	return t
}

// Except leaves out connections by id (typically the sender's).
func (t Target) Except(ids ...string) Target {
	t.t.except = append(t.t.except[:len(t.t.except):len(t.t.except)], ids...)
	return t
}

var errNoHub = errors.New("hub: target of no hub")

// Send sends m to every targeted connection, once each. It does not wait
// for any connection, nor for the backplane: it returns once the message
// is queued for delivery. m.Data is copied.
func (t Target) Send(m api.Message) error {
	if m.Type != api.Text && m.Type != api.Binary {
		return errors.New("hub: send: invalid message type")
	}
	return t.do(&envelope{kind: kindEmit, msg: api.Message{Type: m.Type, Data: append([]byte(nil), m.Data...)}})
}

// SendText sends a text message; s must be valid UTF-8.
func (t Target) SendText(s string) error {
	return t.do(&envelope{kind: kindEmit, msg: api.Message{Type: api.Text, Data: []byte(s)}})
}

// SendBinary sends a binary message.
func (t Target) SendBinary(p []byte) error {
	return t.Send(api.Message{Type: api.Binary, Data: p})
}

// Join makes every targeted connection join rooms, in whatever process it
// is (Socket.IO's socketsJoin).
func (t Target) Join(rooms ...string) error {
	return t.do(&envelope{kind: kindJoin, rooms: slices.Clone(rooms)})
}

// Leave makes every targeted connection leave rooms.
func (t Target) Leave(rooms ...string) error {
	return t.do(&envelope{kind: kindLeave, rooms: slices.Clone(rooms)})
}

// Disconnect closes every targeted connection with 1000.
func (t Target) Disconnect() error {
	return t.do(&envelope{kind: kindDisconnect})
}

func (t Target) do(e *envelope) error {
	if t.p == nil {
		return errNoHub
	}
	e.to = t.t
	e.sent = time.Now()
	return t.p.publish(e)
}
