package runtimetest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/wsmatrix/wsmatrix/api"
)

type ctxKey struct{}

func requestCases() []testCase {
	// info sends back what the handler sees of the upgrade request.
	info := func(f func(r *http.Request) string) api.Handler {
		return func(ws api.Conn) { ws.SendText(f(ws.Request())) }
	}
	type rc struct {
		name    string
		setup   func(r *api.Router)
		path    string
		headers []string
		status  int
		body    string // response body (refused) or first message (accepted)
	}
	rcs := []rc{
		{name: "url variable", setup: func(r *api.Router) {
			r.Handle("/chat/{room}", info(func(r *http.Request) string { return r.PathValue("room") }))
		}, path: "/chat/lobby", status: 101, body: "lobby"},
		{name: "url wildcard rest", setup: func(r *api.Router) {
			r.Handle("/files/{rest...}", info(func(r *http.Request) string { return r.PathValue("rest") }))
		}, path: "/files/a/b/c", status: 101, body: "a/b/c"},
		{name: "query", setup: func(r *api.Router) {
			r.Handle("/q", info(func(r *http.Request) string { return r.URL.Query().Get("token") }))
		}, path: "/q?token=s3cr%C3%A9t", status: 101, body: "s3crét"},
		{name: "header", setup: func(r *api.Router) {
			r.Handle("/h", info(func(r *http.Request) string { return r.Header.Get("X-User") }))
		}, path: "/h", headers: []string{"X-User: ada"}, status: 101, body: "ada"},
		{name: "cookie", setup: func(r *api.Router) {
			r.Handle("/c", info(func(r *http.Request) string {
				ck, err := r.Cookie("session")
				if err != nil {
					return err.Error()
				}
				return ck.Value
			}))
		}, path: "/c", headers: []string{"Cookie: a=1; session=xyz"}, status: 101, body: "xyz"},
		{name: "group prefix", setup: func(r *api.Router) {
			g := r.Group("/api").Group("/v1")
			g.Handle("/room/{id}", info(func(r *http.Request) string { return r.URL.Path + " " + r.PathValue("id") }))
		}, path: "/api/v1/room/7", status: 101, body: "/api/v1/room/7 7"},
		{name: "middleware rejects with 401 and its body", setup: func(r *api.Router) {
			r.Use(func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
					if req.Header.Get("Authorization") != "Bearer good" {
						w.Header().Set("WWW-Authenticate", "Bearer")
						http.Error(w, "who are you", http.StatusUnauthorized)
						return
					}
					next.ServeHTTP(w, req)
				})
			})
			r.Handle("/secure", echo)
		}, path: "/secure", headers: []string{"Authorization: Bearer bad"}, status: 401, body: "who are you"},
		{name: "middleware accepts", setup: func(r *api.Router) {
			r.Use(func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
					if req.Header.Get("Authorization") != "Bearer good" {
						http.Error(w, "no", http.StatusUnauthorized)
						return
					}
					next.ServeHTTP(w, req.WithContext(context.WithValue(req.Context(), ctxKey{}, "user-42")))
				})
			})
			r.Handle("/secure", info(func(r *http.Request) string { s, _ := r.Context().Value(ctxKey{}).(string); return s }))
		}, path: "/secure", headers: []string{"Authorization: Bearer good"}, status: 101, body: "user-42"},
		{name: "middleware rate limit 429", setup: func(r *api.Router) {
			r.Use(func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
					w.Header().Set("Retry-After", "30")
					http.Error(w, "slow down", http.StatusTooManyRequests)
				})
			})
			r.Handle("/x", echo)
		}, path: "/x", status: 429, body: "slow down"},
		{name: "middleware order and group middleware", setup: func(r *api.Router) {
			tag := func(s string) func(http.Handler) http.Handler {
				return func(next http.Handler) http.Handler {
					return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
						req.Header.Add("X-Trace", s)
						next.ServeHTTP(w, req)
					})
				}
			}
			r.Use(tag("root1"), tag("root2"))
			g := r.Group("/g")
			g.Use(tag("group"))
			g.Handle("/x", info(func(r *http.Request) string { return strings.Join(r.Header.Values("X-Trace"), ",") }))
		}, path: "/g/x", status: 101, body: "root1,root2,group"},
		{name: "group middleware does not run for root routes", setup: func(r *api.Router) {
			g := r.Group("/g")
			g.Use(func(http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "group only", http.StatusForbidden) })
			})
			g.Handle("/x", echo)
			r.Handle("/y", info(func(*http.Request) string { return "root" }))
		}, path: "/y", status: 101, body: "root"},
		{name: "method in pattern", setup: func(r *api.Router) {
			r.Handle("GET /m", info(func(*http.Request) string { return "m" }))
		}, path: "/m", status: 101, body: "m"},
	}
	var cases []testCase
	for _, c := range rcs {
		cases = append(cases, testCase{name: "request/" + strings.ReplaceAll(c.name, " ", "_"), run: func(t *testing.T, k *kit) {
			s := k.serve(testOptions(), c.setup)
			cl, resp := rawDial(t, s.addr, upgradeHead(s.addr, c.path, c.headers...))
			if resp.StatusCode != c.status {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, b)
			}
			if c.status != 101 {
				b, _ := io.ReadAll(resp.Body)
				if strings.TrimSpace(string(b)) != c.body {
					t.Fatalf("body %q, want %q", b, c.body)
				}
				return
			}
			cl.conn.SetDeadline(time.Time{})
			cl.expectMessage(ws.OpText, []byte(c.body))
			cl.finishClose(api.StatusNormalClosure)
		}})
	}
	cases = append(cases, testCase{name: "request/remote_address", run: func(t *testing.T, k *kit) {
		s := k.serve(testOptions(), func(r *api.Router) {
			r.Handle("/a", func(ws api.Conn) { ws.SendText(ws.RemoteAddr().String() + " " + ws.Request().RemoteAddr) })
		})
		c := dial(t, s.addr, "/a")
		local := c.conn.LocalAddr().String()
		c.expectMessage(ws.OpText, []byte(local+" "+local))
	}})
	cases = append(cases, testCase{name: "request/survives_the_connection", run: func(t *testing.T, k *kit) {
		s := k.serve(testOptions(), func(r *api.Router) {
			r.Handle("/chat/{room}", func(ws api.Conn) {
				for {
					if _, err := ws.Receive(); err != nil {
						return
					}
					r := ws.Request()
					ws.SendText(r.PathValue("room") + "|" + r.URL.Query().Get("u") + "|" + r.Header.Get("X-A"))
				}
			})
		})
		c := dial(t, s.addr, "/chat/r1?u=bob", "X-A: b")
		for range 3 {
			time.Sleep(50 * time.Millisecond)
			c.text("?")
			c.expectMessage(ws.OpText, []byte("r1|bob|b"))
		}
	}})
	// Both styles keep the request packed once the handler waits for a
	// message (event style: once its handler returned; blocking style: from
	// its first wait) and rebuild it on first use.
	for _, style := range []string{"event", "blocking"} {
		name := "request/" + style + "_style_keeps_all_but_the_handshake_headers"
		cases = append(cases, testCase{name: name, run: func(t *testing.T, k *kit) {
			s := k.serve(testOptions(), func(r *api.Router) {
				r.Use(func(next http.Handler) http.Handler {
					return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
						next.ServeHTTP(w, req.WithContext(context.WithValue(req.Context(), ctxKey{}, "user-7")))
					})
				})
				r.Handle("/chat/{room}", func(ws api.Conn) {
					reply := func() {
						r := ws.Request()
						user, _ := r.Context().Value(ctxKey{}).(string)
						ck, _ := r.Cookie("session")
						var gone []string
						for _, h := range []string{"Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Extensions"} {
							if r.Header.Get(h) != "" {
								gone = append(gone, h)
							}
						}
						r.Header.Add("X-Later", "ok") // the header stays an ordinary, writable map
						ws.SendText(strings.Join([]string{r.PathValue("room"), r.URL.Query().Get("u"), user, ck.Value,
							strings.Join(r.Header.Values("X-Multi"), ","), r.Header.Get("Sec-WebSocket-Protocol"),
							r.Header.Get("User-Agent"), r.Header.Get("X-Later"), r.Host, strings.Join(gone, ","),
							r.Pattern, fmt.Sprint(r.RemoteAddr == ws.RemoteAddr().String()), r.Method + " " + r.RequestURI}, "|"))
					}
					if style == "event" {
						ws.OnMessage(func(api.Message) { reply() })
						return
					}
					for {
						if _, err := ws.Receive(); err != nil {
							return
						}
						reply()
					}
				})
			})
			c := dial(t, s.addr, "/chat/r2?u=ann", "X-Multi: a", "Cookie: session=s1", "X-Multi: b, c",
				"User-Agent: kit/1", "Sec-WebSocket-Protocol: chat, superchat", "Sec-WebSocket-Extensions: x-unknown")
			for range 2 {
				time.Sleep(20 * time.Millisecond)
				c.text("?")
				c.expectMessage(ws.OpText, []byte("r2|ann|user-7|s1|a,b, c|chat, superchat|kit/1|ok|"+s.addr+"||GET /chat/{room}|true|GET /chat/r2?u=ann"))
			}
		}})
	}
	return cases
}
