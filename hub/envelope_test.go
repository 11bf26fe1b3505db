package hub

import (
	"reflect"
	"testing"
	"time"

	"github.com/wsmatrix/wsmatrix/api"
)

func sampleEnvelopes() []*envelope {
	at := time.Unix(0, 1732000000123456789)
	return []*envelope{
		{kind: kindEmit, origin: "n1", sent: at, to: target{rooms: []string{"a", "b"}, except: []string{"n1-1"}}, msg: api.Message{Type: api.Text, Data: []byte("hello")}},
		{kind: kindEmit, origin: "n2", sent: at, to: target{all: true}, msg: api.Message{Type: api.Binary, Data: []byte{0, 1, 2}}},
		{kind: kindJoin, origin: "e", sent: at, to: target{ids: []string{"x-1"}, users: []string{"ann"}}, rooms: []string{"r"}},
		{kind: kindLeave, origin: "e", sent: at, to: target{users: []string{"ann"}}, rooms: []string{"r", "s"}},
		{kind: kindDisconnect, origin: "e", sent: at, to: target{ids: []string{"x-2"}}},
		{kind: kindQuery, origin: "n1", sent: at, query: 7, room: "r", replyTo: "n1"},
		{kind: kindAnswer, origin: "n2", sent: at, query: 7, replyTo: "n1", ids: []string{"n2-1", "n2-9"}},
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	for _, e := range sampleEnvelopes() {
		b := appendEnvelope(nil, e)
		got, err := decodeEnvelope(b)
		if err != nil {
			t.Fatalf("%+v: %v", e, err)
		}
		if !got.sent.Equal(e.sent) {
			t.Fatalf("time: %v", got.sent)
		}
		got.sent = e.sent
		if !reflect.DeepEqual(got, e) {
			t.Fatalf("got %+v, want %+v", got, e)
		}
		for i := range b { // every truncation is refused
			if _, err := decodeEnvelope(b[:i]); err == nil {
				t.Fatalf("%d of %d bytes decoded", i, len(b))
			}
		}
	}
}

// FuzzDecodeEnvelope: any bytes from the backplane decode or fail, without
// panic, and what decodes, encoded again, decodes to the same envelope.
func FuzzDecodeEnvelope(f *testing.F) {
	for _, e := range sampleEnvelopes() {
		f.Add(appendEnvelope(nil, e))
	}
	f.Add([]byte{1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEnvelope(b)
		if err != nil {
			return
		}
		again := appendEnvelope(nil, e)
		e2, err := decodeEnvelope(again)
		if err != nil || !reflect.DeepEqual(e, e2) {
			t.Fatalf("re-encoding changed the envelope: %v", err)
		}
	})
}

// TestTextThatIsNotUTF8IsMalformed: a text message from the backplane
// that is not UTF-8 (another publisher's, or `wsmatrix emit` of bytes)
// is refused as malformed: delivered, it made every client fail its
// connection with 1007. The same bytes as a binary message are fine.
func TestTextThatIsNotUTF8IsMalformed(t *testing.T) {
	at := time.Unix(1700000000, 0)
	bad := &envelope{kind: kindEmit, origin: "n1", sent: at, to: target{rooms: []string{"r"}}, msg: api.Message{Type: api.Text, Data: []byte("caf\xe9 \xff")}}
	if _, err := decodeEnvelope(appendEnvelope(nil, bad)); err == nil {
		t.Fatal("text that is not UTF-8 decoded")
	}
	bad.msg.Type = api.Binary
	if _, err := decodeEnvelope(appendEnvelope(nil, bad)); err != nil {
		t.Fatalf("the same bytes as binary: %v", err)
	}
}
