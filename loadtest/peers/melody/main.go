// Command melody is the hub Go users pick on gorilla/websocket:
// olahol/melody. /broadcast relays every message to every connection
// (melody's Broadcast), /echo sends every message back.
//
// gorilla does not check that text messages are UTF-8, so the handlers do
// (1007), as the gorilla peer does.
//
// melody writes each session through its own goroutine and a buffered
// channel (MessageBufferSize, 256 messages): a session whose buffer is
// full gets an error and is closed ("message buffer is full").
package main

import (
	"flag"
	"net/http"
	"unicode/utf8"

	"github.com/olahol/melody"

	"github.com/wsmatrix/wsmatrix/loadtest/peers"
)

func newMelody() *melody.Melody {
	m := melody.New()
	m.Config.MaxMessageSize = peers.ReadLimit
	m.Upgrader.CheckOrigin = func(*http.Request) bool { return true }
	return m
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "TCP address to listen on")
	flag.Parse()
	room, echo := newMelody(), newMelody()
	room.HandleMessage(func(s *melody.Session, msg []byte) {
		if valid(s, msg) {
			room.Broadcast(msg)
		}
	})
	room.HandleMessageBinary(func(_ *melody.Session, msg []byte) { room.BroadcastBinary(msg) })
	echo.HandleMessage(func(s *melody.Session, msg []byte) {
		if valid(s, msg) {
			s.Write(msg)
		}
	})
	echo.HandleMessageBinary(func(s *melody.Session, msg []byte) { s.WriteBinary(msg) })
	mux := http.NewServeMux()
	mux.HandleFunc("/broadcast", func(w http.ResponseWriter, r *http.Request) { room.HandleRequest(w, r) })
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) { echo.HandleRequest(w, r) })
	peers.Serve(*addr, mux)
}

// valid closes s with 1007 unless text msg is UTF-8.
func valid(s *melody.Session, msg []byte) bool {
	if utf8.Valid(msg) {
		return true
	}
	s.CloseWithMsg(melody.FormatCloseMessage(1007, "invalid UTF-8"))
	return false
}
