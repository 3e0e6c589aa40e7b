package gateway_test

import (
	"bytes"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// FuzzRequestPath throws raw bytes at a running gateway's socket. Whatever
// arrives, no handler panics, a backend only ever gets requests whose
// request line was in the input, and the gateway still serves a normal
// request afterwards. .ci/run runs it for a bounded time.
func FuzzRequestPath(f *testing.F) {
	seeds := []string{
		"GET /users/1 HTTP/1.1\r\nHost: x\r\n\r\n",
		"PUT /users/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\n{\"a\":1}",
		"PUT /users/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"b\r\n0\r\n\r\n",
		"PUT /users/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"GET /users/1 HTTP/1.1\nHost: x\n\n",
		"GET /users/1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
		"POST /search HTTP/1.0\r\n\r\n",
		"GET /users/%ZZ?a=%&b;c HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\n\r\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	old := newBackend(f, "old", jsonAnswer("old", `{"id": 1}`))
	new := newBackend(f, "new", jsonAnswer("new", `{"id": 1}`))
	g := startGateway(f, old, new, "server:\n  read_header_timeout: 1s\n  max_request_body: 64KiB\nroutes:\n  - name: users\n    match: {path: \"/users/{id}\"}\n    phase: shadow-read\n  - name: search\n    match: {methods: [POST], path: /search}\n    read: true\n    phase: shadow-read\n")
	panics := &lockedLog{}
	g.srv.Config.ErrorLog = log.New(panics, "", 0)
	addr := g.srv.Listener.Addr().String()

	// Every input this worker sent. The primary's copy of a request can
	// land after the fuzzer read the answer (the client half-closes, the
	// server cancels the request while the transport has already sent it),
	// so it may show up while the next input runs: what matters is that it
	// was in some input, never made up.
	var sent [][]byte
	f.Fuzz(func(t *testing.T, raw []byte) {
		sent = append(sent, bytes.Clone(raw))
		before := len(old.seen())
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(2 * time.Second))
		conn.Write(raw)
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		io.Copy(io.Discard, conn)
		conn.Close()

		for _, s := range old.seen()[before:] {
			line := []byte(s.Method + " " + s.Target)
			found := false
			for i := len(sent) - 1; i >= 0 && !found; i-- {
				found = bytes.Contains(sent[i], line)
			}
			if !found {
				t.Errorf("the primary got %q, which is in no input", line)
			}
		}
		if strings.Contains(panics.String(), "panic") {
			t.Fatalf("a handler panicked:\n%s", panics.String())
		}
		res, body := send(t, g.srv.URL, "GET", "/users/1", "")
		if res.StatusCode != http.StatusOK || string(body) != `{"id": 1}` {
			t.Fatalf("after the input the gateway answers %d %q", res.StatusCode, body)
		}
	})
}

type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
