// Command flasksock is Flask-Sock's own demo on wsmatrix: a page at / and
// an echo at /echo, on one port. The Python original:
//
//	@app.route('/')
//	def index():
//	    return render_template('index.html')
//
//	@sock.route('/echo')
//	def echo(ws):
//	    while True:
//	        data = ws.receive()
//	        ws.send(data)
//
// The runtime is one word: go run ./examples/flasksock --runtime=gnet.
package main

import (
	"context"
	"flag"
	"log"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/handlers"
	"github.com/wsmatrix/wsmatrix/runtime"
	_ "github.com/wsmatrix/wsmatrix/runtime/all"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:5000", "address to listen on")
	name := flag.String("runtime", "stdhttp", "stdhttp, fasthttp or gnet: the only word that changes")
	flag.Parse()

	app := api.NewRouter()
	app.HandleHTTP("GET /{$}", handlers.Demo) // index.html: an input and a log, over /echo
	app.Handle("/echo", func(ws api.Conn) {
		for {
			data, err := ws.Receive()
			if err != nil {
				return
			}
			ws.Send(data)
		}
	})

	rt, err := runtime.New(*name, app, api.Options{})
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("serving http://%s/ on %s", *addr, rt.Name())
	if err := runtime.Serve(context.Background(), rt, *addr); err != nil { // Ctrl-C or SIGTERM: nil, exit 0
		log.Fatal(err)
	}
}
