package socketio

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
)

// Socket.IO v5 packet types.
const (
	pConnect = iota
	pDisconnect
	pEvent
	pAck
	pConnectError
	pBinaryEvent
	pBinaryAck
)

// packet is one Socket.IO packet: type, namespace, ack id (-1: none),
// JSON data and, for binary packets, the number of attachments that
// follow it as separate Engine.IO messages.
type packet struct {
	typ         int
	nsp         string
	id          int64
	data        json.RawMessage
	attachments int
}

var errPacket = errors.New("socketio: malformed packet")

// maxAttachmentsLimit bounds what a packet may announce, whatever the
// options say.
const maxAttachmentsLimit = 1000

// decodePacket parses the text of an Engine.IO message as a Socket.IO
// packet: <type>[<attachments>-][<namespace>,][<id>][<JSON>].
func decodePacket(s []byte) (packet, error) {
	p := packet{id: -1, nsp: "/"}
	if len(s) == 0 || s[0] < '0' || s[0] > '6' {
		return p, errPacket
	}
	p.typ = int(s[0] - '0')
	s = s[1:]
	if p.typ == pBinaryEvent || p.typ == pBinaryAck {
		i := bytes.IndexByte(s, '-')
		if i <= 0 || i > 4 {
			return p, errPacket
		}
		n, err := strconv.Atoi(string(s[:i]))
		if err != nil || n < 0 || n > maxAttachmentsLimit {
			return p, errPacket
		}
		p.attachments = n
		s = s[i+1:]
	}
	if len(s) > 0 && s[0] == '/' {
		i := bytes.IndexByte(s, ',')
		if i < 0 {
			p.nsp, s = string(s), nil
		} else {
			p.nsp, s = string(s[:i]), s[i+1:]
		}
	}
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i > 0 {
		if i > 15 {
			return p, errPacket
		}
		p.id, _ = strconv.ParseInt(string(s[:i]), 10, 64)
		s = s[i:]
	}
	if len(s) > 0 {
		if !json.Valid(s) {
			return p, errPacket
		}
		p.data = json.RawMessage(s)
	}
	switch p.typ {
	case pEvent, pBinaryEvent:
		var args []json.RawMessage
		if json.Unmarshal(p.data, &args) != nil || len(args) == 0 {
			return p, errPacket
		}
		var name string
		if json.Unmarshal(args[0], &name) != nil {
			return p, errPacket
		}
	case pAck, pBinaryAck:
		if p.id < 0 || len(p.data) == 0 || p.data[0] != '[' {
			return p, errPacket
		}
	case pConnect:
		if len(p.data) > 0 && p.data[0] != '{' {
			return p, errPacket
		}
	case pDisconnect:
		if len(p.data) > 0 {
			return p, errPacket
		}
	case pConnectError:
		// only servers send it
		return p, errPacket
	}
	return p, nil
}

// appendPacket encodes p.
func appendPacket(b []byte, p packet) []byte {
	b = append(b, byte('0'+p.typ))
	if p.typ == pBinaryEvent || p.typ == pBinaryAck {
		b = strconv.AppendInt(b, int64(p.attachments), 10)
		b = append(b, '-')
	}
	if p.nsp != "" && p.nsp != "/" {
		b = append(b, p.nsp...)
		b = append(b, ',')
	}
	if p.id >= 0 {
		b = strconv.AppendInt(b, p.id, 10)
	}
	return append(b, p.data...)
}

// placeholder is how a binary attachment appears in a packet's JSON.
type placeholder struct {
	Placeholder bool `json:"_placeholder"`
	Num         int  `json:"num"`
}

// encodeArgs encodes args as a JSON array; []byte values (at the top
// level) become attachments, returned in order.
func encodeArgs(prefix []any, args []any) (json.RawMessage, [][]byte, error) {
	all := append(prefix[:len(prefix):len(prefix)], args...)
	var atts [][]byte
	for i, a := range all {
		if b, ok := a.([]byte); ok {
			all[i] = placeholder{true, len(atts)}
			atts = append(atts, b)
		}
	}
	data, err := json.Marshal(all)
	return data, atts, err
}

// isPlaceholder reports the attachment number of a placeholder argument.
func isPlaceholder(raw json.RawMessage) (int, bool) {
	if len(raw) == 0 || raw[0] != '{' || !bytes.Contains(raw, []byte(`"_placeholder"`)) {
		return 0, false
	}
	var ph placeholder
	if json.Unmarshal(raw, &ph) != nil || !ph.Placeholder {
		return 0, false
	}
	return ph.Num, true
}
