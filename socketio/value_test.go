package socketio

import (
	"encoding/json"
	"strings"
	"testing"
)

func valuePanics(e *Event, i int) (v any, p any) {
	defer func() { p = recover() }()
	return e.Value(i), nil
}

// A nested object with "_placeholder": true and two keys, the second not a
// number "num": the single-value type assertion panics.
func TestValueNestedPlaceholderWithoutNum(t *testing.T) {
	for _, arg := range []string{
		`{"a":{"_placeholder":true,"n":0}}`,
		`{"a":{"_placeholder":true,"num":"0"}}`,
		`{"a":{"_placeholder":true,"num":null}}`,
		`[{"_placeholder":true,"label":"x"}]`,
	} {
		e := &Event{Args: []json.RawMessage{json.RawMessage(arg)}, atts: [][]byte{{1}}, ackID: -1}
		if _, p := valuePanics(e, 0); p != nil {
			t.Errorf("Value(%s) with one attachment panicked: %v", arg, p)
		}
	}
}

// Pre-existing: a top-level placeholder with a negative num, no attachment
// needed (a plain event).
func TestValueNegativeNum(t *testing.T) {
	p, err := decodePacket([]byte(`2["echo",{"_placeholder":true,"num":-1}]`))
	if err != nil {
		t.Fatal(err)
	}
	e := &Event{Args: p.args, ackID: -1}
	if _, p := valuePanics(e, 0); p != nil {
		t.Errorf("Value of a plain event's {\"_placeholder\":true,\"num\":-1} panicked: %v", p)
	}
}

// One attachment referenced n times comes back as n attachments: the
// inbound packet obeys MaxAttachments (10), the echo does not.
func TestValueDoesNotAmplifyAttachments(t *testing.T) {
	const n = 5000
	ref := `{"_placeholder":true,"num":0}`
	arg := "[" + strings.TrimSuffix(strings.Repeat(ref+",", n), ",") + "]"
	att := make([]byte, 1<<20)
	e := &Event{Args: []json.RawMessage{json.RawMessage(arg)}, atts: [][]byte{att}, ackID: -1}
	_, atts, err := encodeArgs(nil, e.Values())
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, a := range atts {
		total += len(a)
	}
	t.Logf("in: %d bytes of JSON + 1 attachment of %d; out: %d attachments, %d bytes", len(arg), len(att), len(atts), total)
	if len(atts) > 10 {
		t.Fatalf("an echo of 1 attachment announces %d (MaxAttachments is 10 inbound)", len(atts))
	}
}
