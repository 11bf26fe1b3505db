package stdhttp_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/handlers"
	"github.com/wsmatrix/wsmatrix/runtime"
	"github.com/wsmatrix/wsmatrix/runtime/runtimetest"
	"github.com/wsmatrix/wsmatrix/runtime/stdhttp"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConformance(t *testing.T) {
	runtimetest.Run(t, func(r *api.Router, o api.Options) (runtime.Runtime, error) {
		return stdhttp.New(r, o)
	}, runtimetest.Config{IdleBlocking: 1, IdleEvent: 0, TLS: true}) // as the package documents
}

func TestRegistered(t *testing.T) {
	rt, err := runtime.New("stdhttp", api.NewRouter(), api.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rt.Name() != "stdhttp" {
		t.Fatalf("Name() = %q", rt.Name())
	}
}

func TestBadOptionsRefused(t *testing.T) {
	if _, err := stdhttp.New(api.NewRouter(), api.Options{ReadLimit: -1}); err == nil {
		t.Fatal("negative ReadLimit accepted")
	}
}

// TestMountedInMux serves WebSocket routes inside an existing ServeMux,
// beside an ordinary route, on a server the user owns.
func TestMountedInMux(t *testing.T) {
	router := api.NewRouter()
	router.Handle("/ws/echo", handlers.Echo)
	wsrv, err := stdhttp.New(router, api.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/ws/", wsrv)
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })
	hs := httptest.NewServer(mux)
	defer hs.Close()
	defer wsrv.Shutdown(t.Context())

	resp, err := http.Get(hs.URL + "/hello")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "hello" {
		t.Fatalf("ordinary route: %q", b)
	}

	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	c, _, err := d.Dial("ws"+hs.URL[len("http"):]+"/ws/echo", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.WriteMessage(websocket.TextMessage, []byte("mounted"))
	typ, p, err := c.ReadMessage()
	if err != nil || typ != websocket.TextMessage || string(p) != "mounted" {
		t.Fatalf("echo: %v %d %q", err, typ, p)
	}

	resp, err = http.Get(hs.URL + "/ws/nothing")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("unknown WebSocket path: %d, want 404", resp.StatusCode)
	}
	c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second))
	c.ReadMessage()
}
