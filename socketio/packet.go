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
	args        []json.RawMessage // events and acks: data's elements
	name        string            // events: the event's name
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
		args, ok := splitArray(p.data)
		if !ok || len(args) == 0 {
			return p, errPacket
		}
		name, ok := jsonString(args[0])
		if !ok {
			return p, errPacket
		}
		p.name, p.args = name, args[1:]
	case pAck, pBinaryAck:
		args, ok := splitArray(p.data)
		if p.id < 0 || !ok {
			return p, errPacket
		}
		p.args = args
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
// level) become attachments, returned in order. json.RawMessage values
// are taken as they are (a client's arguments, already checked); other
// values go through encoding/json.
func encodeArgs(prefix []any, args []any) (json.RawMessage, [][]byte, error) {
	var atts [][]byte
	b := make([]byte, 0, 64)
	b = append(b, '[')
	n := 0
	add := func(a any) error {
		if n > 0 {
			b = append(b, ',')
		}
		n++
		switch v := a.(type) {
		case []byte:
			b = append(b, `{"_placeholder":true,"num":`...)
			b = strconv.AppendInt(b, int64(len(atts)), 10)
			b = append(b, '}')
			atts = append(atts, attachment(v))
		case json.RawMessage:
			if len(v) == 0 {
				b = append(b, "null"...)
			} else {
				b = append(b, v...)
			}
		case string:
			if plainString(v) {
				b = append(append(append(b, '"'), v...), '"')
				return nil
			}
			enc, err := json.Marshal(v)
			if err != nil {
				return err
			}
			b = append(b, enc...)
		default:
			if hasBytes(v, 0) { // []byte inside maps and slices, as socket.io-client sends Buffers in objects
				v = withPlaceholders(v, &atts, 0)
			}
			enc, err := json.Marshal(v)
			if err != nil {
				return err
			}
			b = append(b, enc...)
		}
		return nil
	}
	for _, a := range prefix {
		if err := add(a); err != nil {
			return nil, nil, err
		}
	}
	for _, a := range args {
		if err := add(a); err != nil {
			return nil, nil, err
		}
	}
	return append(b, ']'), atts, nil
}

// plainString reports whether s needs no JSON escaping (encoding/json
// also escapes <, > and &).
func plainString(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c >= 0x80 {
			return false
		}
	}
	return true
}

// jsonString decodes a JSON string, without allocating more than the
// result when it holds no escape.
func jsonString(raw json.RawMessage) (string, bool) {
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' && bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1]), true
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// splitArray returns the elements of a JSON array that json.Valid has
// accepted, in one pass over its bytes.
func splitArray(b []byte) ([]json.RawMessage, bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '[' {
		return nil, false
	}
	var out []json.RawMessage
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return out, true
	}
	for i < len(b) {
		start := i
		depth := 0
		inString := false
	scan:
		for ; i < len(b); i++ {
			c := b[i]
			switch {
			case inString:
				// Jump to the next quote or backslash (vectorized).
				j := bytes.IndexAny(b[i:], `"\\`)
				if j < 0 {
					return nil, false
				}
				i += j
				if b[i] == '\\' {
					i++
				} else {
					inString = false
				}
			case c == '"':
				inString = true
			case c == '[' || c == '{':
				depth++
			case c == ']' || c == '}':
				if depth == 0 {
					break scan
				}
				depth--
			case c == ',' && depth == 0:
				break scan
			}
		}
		if i >= len(b) {
			return nil, false
		}
		out = append(out, json.RawMessage(bytes.TrimRight(b[start:i], " \t\r\n")))
		if b[i] == ']' {
			return out, true
		}
		i = skipSpace(b, i+1)
	}
	return nil, false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
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

// maxBinaryDepth is how deep hasBytes and withPlaceholders look: past it
// a value goes to json.Marshal as it is, which refuses a cycle with an
// error instead of the stack overflow an unbounded walk would be.
const maxBinaryDepth = 1000

// hasBytes reports whether v, a value of maps ([string]any) and slices
// ([]any), holds a []byte.
func hasBytes(v any, depth int) bool {
	if depth > maxBinaryDepth {
		return false
	}
	switch v := v.(type) {
	case []byte:
		return true
	case []any:
		for _, e := range v {
			if hasBytes(e, depth+1) {
				return true
			}
		}
	case map[string]any:
		for _, e := range v {
			if hasBytes(e, depth+1) {
				return true
			}
		}
	}
	return false
}

// attachment is b as an attachment: never nil, which a packet takes for
// text (a nil []byte, as bytes.Buffer{}.Bytes() returns, is an empty
// Buffer to the client).
func attachment(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// withPlaceholders returns a copy of v with each []byte replaced by a
// placeholder and appended to atts.
func withPlaceholders(v any, atts *[][]byte, depth int) any {
	if depth > maxBinaryDepth {
		return v
	}
	switch v := v.(type) {
	case []byte:
		*atts = append(*atts, attachment(v))
		return placeholder{Placeholder: true, Num: len(*atts) - 1}
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = withPlaceholders(e, atts, depth+1)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = withPlaceholders(e, atts, depth+1)
		}
		return out
	}
	return v
}

// withBytes decodes raw, an argument that holds placeholders below its
// top level, with each placeholder replaced by its attachment: maps and
// slices, numbers as json.Number. used marks the attachments already
// placed (by this argument or another): a second reference to one is left
// as JSON, so that an echo sends no more attachments than came. It
// reports false when raw holds none it could place.
func withBytes(raw json.RawMessage, atts [][]byte, used []bool) (any, bool) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if d.Decode(&v) != nil {
		return nil, false
	}
	found := false
	var walk func(any) any
	walk = func(v any) any {
		switch v := v.(type) {
		case []any:
			for i, e := range v {
				v[i] = walk(e)
			}
		case map[string]any:
			if ph, _ := v["_placeholder"].(bool); ph && len(v) == 2 {
				if num, ok := v["num"].(json.Number); ok {
					if n, err := num.Int64(); err == nil && n >= 0 && n < int64(len(atts)) && !used[n] {
						used[n], found = true, true
						return atts[n]
					}
				}
			}
			for k, e := range v {
				v[k] = walk(e)
			}
		}
		return v
	}
	v = walk(v)
	return v, found
}

// packetNamespace returns the namespace of an Engine.IO message that
// carries a Socket.IO packet: '4', the packet's type, attachments and '-'
// if any, then "/nsp," unless it is "/".
func packetNamespace(m []byte) []byte {
	i := 2 // past '4' and the type
	j := i
	for j < len(m) && m[j] >= '0' && m[j] <= '9' {
		j++
	}
	if j < len(m) && m[j] == '-' && j > i {
		i = j + 1
	}
	if i >= len(m) || m[i] != '/' {
		return []byte("/")
	}
	if k := bytes.IndexByte(m[i:], ','); k >= 0 {
		return m[i : i+k]
	}
	return m[i:]
}
