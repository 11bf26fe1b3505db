// Command socketio is the server side of Flask-SocketIO's quickstart on
// wsmatrix, line for line; its page (templates/index.html) is the
// quickstart's client, unchanged. The Python original:
//
//	app = Flask(__name__)
//	socketio = SocketIO(app)
//
//	@app.route('/')
//	def index():
//	    return render_template('index.html')
//
//	@socketio.on('my event')
//	def handle_my_custom_event(json):
//	    emit('my response', json)
//
//	if __name__ == '__main__':
//	    socketio.run(app)
//
// The runtime is one word: go run ./examples/socketio --runtime=gnet.
package main

import (
	"context"
	"embed"
	"flag"
	"log"
	"net/http"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/runtime"
	_ "github.com/wsmatrix/wsmatrix/runtime/all"
	"github.com/wsmatrix/wsmatrix/socketio"
)

//go:embed templates
var templates embed.FS

func main() {
	addr := flag.String("addr", "127.0.0.1:5000", "address to listen on")
	name := flag.String("runtime", "stdhttp", "stdhttp, fasthttp or gnet: the only word that changes")
	flag.Parse()

	app := api.NewRouter()                                                        // app = Flask(__name__)
	sio := socketio.New(socketio.Options{})                                       // socketio = SocketIO(app)
	sio.Mount(app, "/socket.io/")                                                 //
	app.HandleHTTPFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { // @app.route('/')
		http.ServeFileFS(w, r, templates, "templates/index.html") // return render_template('index.html')
	})
	sio.Of("/").OnConnection(func(s *socketio.Socket) {
		s.On("my event", func(e *socketio.Event) { // @socketio.on('my event')
			s.Emit("my response", e.Values()...) // emit('my response', json): what came, if anything
		})
	})

	rt, err := runtime.New(*name, app, api.Options{})
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("serving http://%s/ on %s", *addr, rt.Name())
	if err := runtime.Serve(context.Background(), rt, *addr); err != nil { // socketio.run(app); Ctrl-C: nil, exit 0
		log.Fatal(err)
	}
}
