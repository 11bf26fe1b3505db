package socketio_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/socketio"
)

// TestPollingWithAnotherUpgradeHeader: a polling handshake that carries
// an Upgrade header other than websocket (Java's HttpClient sends
// "Upgrade: h2c" on every cleartext request; curl --http2 too) is a plain
// request to the router, but Mount's checkHandshake takes any Upgrade
// header for a WebSocket handshake and answers 400 "Transport unknown".
func TestPollingWithAnotherUpgradeHeader(t *testing.T) {
	sio := socketio.New(socketio.Options{Logger: quiet})
	defer sio.Close()
	r := api.NewRouter()
	sio.Mount(r, "/socket.io/")
	for _, up := range []string{"", "h2c"} {
		req := httptest.NewRequest(http.MethodGet, "/socket.io/?EIO=4&transport=polling", nil)
		if up != "" {
			req.Header.Set("Connection", "Upgrade, HTTP2-Settings")
			req.Header.Set("Upgrade", up)
			req.Header.Set("HTTP2-Settings", "AAMAAABkAAQCAAAAAAIAAAAA")
		}
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		if w.Code != 200 || !strings.HasPrefix(w.Body.String(), "0{") {
			t.Errorf("polling handshake with Upgrade %q: %d %s", up, w.Code, w.Body)
		}
	}
}
