package hub

import (
	"encoding/binary"
	"errors"
	"time"
	"unicode/utf8"

	"github.com/wsmatrix/wsmatrix/api"
)

// An envelope is what hubs and emitters publish to one another: a message
// for a set of connections, a change of rooms for a set of connections, or
// a question about members and its answer. Its encoding is binary and
// versioned; decoding is bounded by the bytes given (fuzzed).
type envelope struct {
	kind   kind
	origin string    // the node that published it
	sent   time.Time // when, for the backplane's lag

	// kindEmit, kindJoin, kindLeave, kindDisconnect: the connections.
	to target
	// kindEmit: the message.
	msg api.Message
	// kindJoin, kindLeave: the rooms to join or leave.
	rooms []string

	// kindQuery, kindAnswer: a question about the members of a room ("":
	// every connection) from node origin, numbered by query; the answer
	// goes back to replyTo with the ids.
	query   uint64
	room    string
	replyTo string
	ids     []string
}

type kind uint8

const (
	kindEmit kind = iota + 1
	kindJoin
	kindLeave
	kindDisconnect
	kindQuery
	kindAnswer
)

// target is a set of connections: the members of rooms, the connections
// with ids, the connections of users, or everyone; less those in except.
type target struct {
	all    bool
	rooms  []string
	ids    []string
	users  []string
	except []string
}

const envelopeVersion = 1

var errEnvelope = errors.New("hub: malformed envelope")

// appendEnvelope appends e's encoding to b.
func appendEnvelope(b []byte, e *envelope) []byte {
	b = append(b, envelopeVersion, byte(e.kind))
	b = appendString(b, e.origin)
	b = binary.BigEndian.AppendUint64(b, uint64(e.sent.UnixNano()))
	switch e.kind {
	case kindEmit, kindJoin, kindLeave, kindDisconnect:
		all := byte(0)
		if e.to.all {
			all = 1
		}
		b = append(b, all)
		b = appendStrings(b, e.to.rooms)
		b = appendStrings(b, e.to.ids)
		b = appendStrings(b, e.to.users)
		b = appendStrings(b, e.to.except)
		switch e.kind {
		case kindEmit:
			b = append(b, byte(e.msg.Type))
			b = binary.AppendUvarint(b, uint64(len(e.msg.Data)))
			b = append(b, e.msg.Data...)
		case kindJoin, kindLeave:
			b = appendStrings(b, e.rooms)
		}
	case kindQuery, kindAnswer:
		b = binary.AppendUvarint(b, e.query)
		b = appendString(b, e.room)
		b = appendString(b, e.replyTo)
		b = appendStrings(b, e.ids)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendStrings(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = appendString(b, s)
	}
	return b
}

// decodeEnvelope decodes b. The message data aliases b; strings are
// copied. Every count and length is checked against what is left of b,
// so a hostile envelope costs at most about its own size.
func decodeEnvelope(b []byte) (*envelope, error) {
	d := decoder{b: b}
	if d.byte() != envelopeVersion {
		return nil, errors.New("hub: envelope of an unknown version")
	}
	e := &envelope{kind: kind(d.byte())}
	e.origin = d.string()
	e.sent = time.Unix(0, int64(d.uint64()))
	switch e.kind {
	case kindEmit, kindJoin, kindLeave, kindDisconnect:
		switch d.byte() {
		case 0:
		case 1:
			e.to.all = true
		default:
			d.fail()
		}
		e.to.rooms = d.strings()
		e.to.ids = d.strings()
		e.to.users = d.strings()
		e.to.except = d.strings()
		switch e.kind {
		case kindEmit:
			e.msg.Type = api.MessageType(d.byte())
			if e.msg.Type != api.Text && e.msg.Type != api.Binary {
				d.fail()
			}
			e.msg.Data = d.bytes()
			if e.msg.Type == api.Text && !utf8.Valid(e.msg.Data) {
				d.fail() // every client would fail its connection with 1007
			}
		case kindJoin, kindLeave:
			e.rooms = d.strings()
		}
	case kindQuery, kindAnswer:
		e.query = d.uvarint()
		e.room = d.string()
		e.replyTo = d.string()
		e.ids = d.strings()
	default:
		d.fail()
	}
	if d.err || len(d.b) != 0 {
		return nil, errEnvelope
	}
	return e, nil
}

// decoder reads an envelope; after the first error it reads zeros.
type decoder struct {
	b   []byte
	err bool
}

func (d *decoder) fail() { d.err, d.b = true, nil }

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uint64() uint64 {
	if len(d.b) < 8 {
		d.fail()
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) string() string { return string(d.bytes()) }

func (d *decoder) strings() []string {
	n := d.uvarint()
	if n > uint64(len(d.b)) { // each takes at least one byte
		d.fail()
		return nil
	}
	if n == 0 {
		return nil
	}
	ss := make([]string, 0, n)
	for range n {
		ss = append(ss, d.string())
		if d.err {
			return nil
		}
	}
	return ss
}
