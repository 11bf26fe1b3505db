package socketio

import (
	"bytes"
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
		args, name := got.args, got.name
		got.args, got.name = nil, ""
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: %+v %v, want %+v", c.in, got, err, c.want)
		}
		if back := string(appendPacket(nil, got)); back != c.in {
			t.Errorf("%q encodes back as %q", c.in, back)
		}
		if c.want.typ == pEvent || c.want.typ == pBinaryEvent {
			var all []json.RawMessage
			json.Unmarshal(c.want.data, &all)
			var wantName string
			json.Unmarshal(all[0], &wantName)
			if name != wantName || !reflect.DeepEqual(args, all[1:]) {
				t.Errorf("%q: event %q %q, want %q %q", c.in, name, args, wantName, all[1:])
			}
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
		// What the hub's delivery reads of a packet, without decoding it.
		if nsp := string(packetNamespace(append([]byte{'4'}, b...))); nsp != p.nsp {
			t.Fatalf("%q: packetNamespace %q, decodePacket %q", b, nsp, p.nsp)
		}
	})
}

// FuzzSplitArray: on any valid JSON, splitArray agrees with
// encoding/json about whether it is an array and what its elements are.
func FuzzSplitArray(f *testing.F) {
	for _, s := range []string{`[]`, `[1]`, ` [ "a" , {"b":[1,"]"]} , "\\\"]" ] `, `{"a":1}`, `"x"`, `[[],[[]],{}]`, `[1 , 2]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) {
			return
		}
		got, ok := splitArray(b)
		var want []json.RawMessage
		err := json.Unmarshal(b, &want)
		if ok != (err == nil) {
			t.Fatalf("%q: split %v, encoding/json %v", b, ok, err)
		}
		if !ok {
			return
		}
		if len(got) != len(want) {
			t.Fatalf("%q: %d elements, want %d", b, len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(bytes.TrimSpace(got[i]), bytes.TrimSpace(want[i])) {
				t.Fatalf("%q: element %d %q, want %q", b, i, got[i], want[i])
			}
		}
	})
}
