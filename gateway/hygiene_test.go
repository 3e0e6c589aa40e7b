package gateway_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// Each attack is written as raw bytes on a socket: a Go client would never
// send them.
func TestAmbiguousFramingReachesNoBackend(t *testing.T) {
	old := newBackend(t, "old", jsonAnswer("old", `{}`))
	new := newBackend(t, "new", jsonAnswer("new", `{}`))
	g := startGateway(t, old, new, "server:\n  max_header_bytes: 4KiB\n"+dualWrite)
	tests := []struct {
		name, raw string
		status    int
	}{
		{"Content-Length with Transfer-Encoding", "PUT /users/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"Transfer-Encoding with Content-Length", "PUT /users/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n", 400},
		{"two different Content-Lengths", "PUT /users/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}x", 400},
		{"bare LF in the head", "GET /users/1 HTTP/1.1\nHost: x\nX-A: b\n\n", 400},
		{"one bare LF among CRLFs", "GET /users/1 HTTP/1.1\r\nHost: x\r\nX-A: b\nX-B: c\r\n\r\n", 400},
		{"bare LF in chunked framing", "PUT /users/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\n{}\n0\n\n", 400},
		{"path with a raw quote", "GET /users/a\"b HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"path with raw UTF-8", "GET /users/\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"asterisk-form target", "POST * HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}", 400},
		{"CONNECT to an authority", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 400},
		{"CONNECT to a path", "CONNECT /users/1 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"OPTIONS * (net/http answers it itself)", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 200},
		{"unknown transfer coding", "PUT /users/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
		{"headers over max_header_bytes", "GET /users/1 HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 10<<10) + "\r\n\r\n", 431},
		// The scanner must read the length net/http reads, or refuse.
		{"Content-Length folded onto a second line", "PUT /users/1 HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n 2\r\n\r\n{}", 400},
		{"a folded line elsewhere in the head", "GET /users/1 HTTP/1.1\r\nHost: x\r\nX-A: b\r\n\tc\r\n\r\n", 400},
		{"Content-Length longer than the scanner's line", "PUT /users/1 HTTP/1.1\r\nHost: x\r\nContent-Length: " + strings.Repeat("0", 300) + "2\r\n\r\n{}", 400},
		{"Transfer-Encoding longer than the scanner's line", "PUT /users/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " + strings.Repeat(" ", 300) + "chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 400},
		{"h2c upgrade smuggling", "GET /users/1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rawRequest(t, g.srv.Listener.Addr().String(), tt.raw); got != tt.status {
				t.Errorf("status = %d, want %d", got, tt.status)
			}
			if n := old.count() + new.count(); n != 0 {
				t.Errorf("a backend was reached %d times", n)
			}
		})
	}
}

func TestPipelinedRequestsStayInStep(t *testing.T) {
	old := newBackend(t, "old", jsonAnswer("old", `{"ok":1}`))
	new := newBackend(t, "new", jsonAnswer("new", `{"ok":1}`))
	g := startGateway(t, old, new, dualWrite)
	raw := "PUT /users/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\n{\"a\":1}" +
		"PUT /users/2 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"b\r\n4\r\n\":2}\r\n0\r\n\r\n" +
		"GET /users/3 HTTP/1.1\r\nHost: x\r\n\r\n" +
		"GET /users/4 HTTP/1.1\nHost: x\n\n"
	statuses := pipeline(t, g, raw, 4)
	if len(statuses) != 4 || statuses[0] != 200 || statuses[1] != 200 || statuses[2] != 200 || statuses[3] != 400 {
		t.Errorf("statuses = %v, want three 200s then 400 for the bare-LF head", statuses)
	}
	seen := old.seen()
	if len(seen) != 3 || string(seen[1].Body) != `{"b":2}` || seen[2].Target != "/users/3" {
		t.Errorf("the primary got %+v", seen)
	}
}

func TestSlowHeadersAreCutWhileOthersAreServed(t *testing.T) {
	old := newBackend(t, "old", jsonAnswer("old", `{}`))
	new := newBackend(t, "new", jsonAnswer("new", `{}`))
	g := startGateway(t, old, new, "server:\n  read_header_timeout: 300ms\n"+dualWrite)
	conn, err := net.Dial("tcp", g.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cut := make(chan time.Duration, 1)
	go func() {
		start := time.Now()
		// A slowloris client: one byte of head every 50 ms, forever.
		for _, b := range []byte("GET /users/1 HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("a", 1000)) {
			if _, err := conn.Write([]byte{b}); err != nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		cut <- time.Since(start)
	}()
	// Meanwhile normal clients are served.
	for range 5 {
		if res, _ := g.do("GET", "/users/1", ""); res.StatusCode != 200 {
			t.Errorf("a normal client got %d", res.StatusCode)
		}
	}
	select {
	case d := <-cut:
		if d > 5*time.Second {
			t.Errorf("the slow client was cut after %v", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the slow client was never cut")
	}
	if n := old.count(); n != 5 {
		t.Errorf("the primary got %d requests, want the 5 normal ones", n)
	}
}

func TestForwardedForIsTrustedOnlyFromTrustedProxies(t *testing.T) {
	for _, tc := range []struct {
		name, trusted, want string
	}{
		{"untrusted client", "", "127.0.0.1"},
		{"trusted proxy", "  trusted_proxies: [127.0.0.0/8]\n", "203.0.113.9, 127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := newBackend(t, "old", jsonAnswer("old", `{}`))
			new := newBackend(t, "new", jsonAnswer("new", `{}`))
			g := startGateway(t, old, new, "server:\n  read_header_timeout: 5s\n"+tc.trusted+"routes:\n  - name: a\n    match: {path: /a}\n    phase: prepare\n")
			g.do("GET", "/a", "", "X-Forwarded-For", "203.0.113.9", "X-Forwarded-Host", "evil.example")
			h := old.seen()[0].Header
			if got := h.Get("X-Forwarded-For"); got != tc.want {
				t.Errorf("X-Forwarded-For = %q, want %q", got, tc.want)
			}
			if tc.trusted == "" && h.Get("X-Forwarded-Host") == "evil.example" {
				t.Error("an untrusted client chose X-Forwarded-Host")
			}
		})
	}
}

// A head whose framing the scanner cannot read hides the next head in what
// net/http reads as its body: the scanner would take that body for a head
// and queue a verdict for it, and every request after would be judged by
// the verdict of the one before (an ambiguous one let through, a clean one
// refused). The head is refused and its connection closed.
func TestAHeadTheScannerCannotFrameEndsItsConnection(t *testing.T) {
	hidden := "GET /users/9 HTTP/1.1\r\nHost: x\r\n\r\n"
	for name, length := range map[string]string{
		"folded":   "Content-Length:\r\n " + fmt.Sprint(len(hidden)),
		"too long": "Content-Length: " + strings.Repeat("0", 300) + fmt.Sprint(len(hidden)),
	} {
		t.Run(name, func(t *testing.T) {
			old := newBackend(t, "old", jsonAnswer("old", `{"ok":1}`))
			new := newBackend(t, "new", jsonAnswer("new", `{"ok":1}`))
			g := startGateway(t, old, new, dualWrite)
			raw := "PUT /users/1 HTTP/1.1\r\nHost: x\r\n" + length + "\r\n\r\n" + hidden +
				// Refused when sent alone.
				"PUT /users/2 HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n7\r\n{\"b\":2}\r\n0\r\n\r\n"
			statuses := pipeline(t, g, raw, 3)
			if len(statuses) == 0 || statuses[0] != http.StatusBadRequest || slices.Contains(statuses[1:], http.StatusOK) {
				t.Errorf("statuses = %v, want 400 for the first head and nothing served after it", statuses)
			}
			if n := old.count() + new.count(); n != 0 {
				t.Errorf("a backend was reached %d times: %+v", n, old.seen())
			}
		})
	}
}

// pipeline sends raw, requests one after the other, on one connection to
// g, and returns the statuses of up to max answers, until the connection
// ends.
func pipeline(t *testing.T, g *gw, raw string, max int) []int {
	t.Helper()
	conn, err := net.Dial("tcp", g.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte(raw)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	var statuses []int
	for range max {
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			break
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		statuses = append(statuses, res.StatusCode)
	}
	return statuses
}
