package socketio

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestDecodePacket(t *testing.T) {
	for _, c := range []struct {
		in   string
		want packet
	}{
		{"0", packet{typ: pConnect, nsp: "/", id: -1}},
		{`0/admin,{"token":"x"}`, packet{typ: pConnect, nsp: "/admin", id: -1, data: json.RawMessage(`{"token":"x"}`)}},
		{"1/admin,", packet{typ: pDisconnect, nsp: "/admin", id: -1}},
		{`2["hello",1]`, packet{typ: pEvent, nsp: "/", id: -1, data: json.RawMessage(`["hello",1]`)}},
		{`2/chat,12["hello"]`, packet{typ: pEvent, nsp: "/chat", id: 12, data: json.RawMessage(`["hello"]`)}},
		{`312["ok"]`, packet{typ: pAck, nsp: "/", id: 12, data: json.RawMessage(`["ok"]`)}},
		{`51-["b",{"_placeholder":true,"num":0}]`, packet{typ: pBinaryEvent, nsp: "/", id: -1, attachments: 1, data: json.RawMessage(`["b",{"_placeholder":true,"num":0}]`)}},
		{`62-/x,7[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`, packet{typ: pBinaryAck, nsp: "/x", id: 7, attachments: 2, data: json.RawMessage(`[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`)}},
	} {
		got, err := decodePacket([]byte(c.in))
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: %+v %v, want %+v", c.in, got, err, c.want)
		}
		if back := string(appendPacket(nil, got)); back != c.in && !(c.in == "1/admin," && back == "1/admin,") {
			t.Errorf("%q encodes back as %q", c.in, back)
		}
	}
	for _, bad := range []string{"", "7", "2", "2{}", "2[]", "2[1]", "3[1]", `3["no id"]`, "5-[]", "51[]", "5x-[]", "59999-[]", `4{"message":"x"}`, "1{}", "0[1]", `2["a"`, "21234567890123456[\"a\"]"} {
		if p, err := decodePacket([]byte(bad)); err == nil {
			t.Errorf("%q decoded: %+v", bad, p)
		}
	}
}

// FuzzDecodePacket: any text decodes or fails without panic; what
// decodes encodes to a packet that decodes the same.
func FuzzDecodePacket(f *testing.F) {
	for _, s := range []string{"0", `0/admin,{"token":"x"}`, `2/chat,12["hello",{"a":[1]}]`, `312["ok"]`, `51-["b",{"_placeholder":true,"num":0}]`, "1/x,"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodePacket(b)
		if err != nil {
			return
		}
		again, err := decodePacket(appendPacket(nil, p))
		if err != nil || again.typ != p.typ || again.nsp != p.nsp || again.id != p.id || again.attachments != p.attachments || string(again.data) != string(p.data) {
			t.Fatalf("%q: re-encoded as %q: %+v %v", b, appendPacket(nil, p), again, err)
		}
	})
}
