package gateway_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawServer answers every request on 127.0.0.1 with the same bytes, then
// closes the connection: a backend that says exactly what a test chooses.
func rawServer(t *testing.T, answer string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil || line == "\r\n" {
						break
					}
				}
				io.WriteString(c, answer)
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// rawExchange sends raw bytes to addr and returns everything read back
// until the connection closes or goes quiet for a second.
func rawExchange(t *testing.T, addr, request string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, request)
	var out []byte
	buf := make([]byte, 4096)
	for {
		c.SetReadDeadline(time.Now().Add(time.Second))
		n, err := c.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			return string(out)
		}
	}
}

func rawConfig(old, new, phase string) string {
	return fmt.Sprintf("backends:\n  old: {url: %q, timeout: 2s}\n  new: {url: %q, timeout: 2s}\n"+
		"routes:\n  - name: items\n    match: {path: \"/items/{id}\"}\n    phase: %s\n", old, new, phase)
}

// A primary that breaks off mid-body: the client gets the head and the
// bytes the primary sent, then the connection ends, as it would talking to
// the primary itself. It got nothing at all: net/http dropped what it
// still buffered when ReverseProxy aborted the connection.
func TestAPrimaryCutMidBodyReachesTheClientAsCut(t *testing.T) {
	old := rawServer(t, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n0123456789")
	new := newBackend(t, "new", jsonAnswer("new", `{}`))
	for _, phase := range []string{"prepare", "shadow-read"} {
		g := startProxy(t, rawConfig(old, new.srv.URL, phase), t.TempDir())
		got := rawExchange(t, strings.TrimPrefix(g.srv.URL, "http://"), "GET /items/1 HTTP/1.1\r\nHost: x\r\n\r\n")
		if !strings.HasPrefix(got, "HTTP/1.1 200 OK\r\n") || !strings.HasSuffix(got, "\r\n\r\n0123456789") {
			t.Errorf("%s: the client got %q, want the head and the 10 bytes the primary sent", phase, got)
		}
	}
}

// An answer without Content-Type or Date reaches the client without them:
// net/http would add a Content-Type sniffed from the body (text/html for
// an HTML body, whatever the primary meant) and a Date.
func TestTheClientGetsNoHeaderThePrimaryDidNotSend(t *testing.T) {
	old := rawServer(t, "HTTP/1.1 200 OK\r\nContent-Length: 20\r\nConnection: close\r\n\r\n<html>{\"a\":1}</html>")
	new := newBackend(t, "new", jsonAnswer("new", `{}`))
	g := startProxy(t, rawConfig(old, new.srv.URL, "shadow-read"), t.TempDir())
	res, body := g.do("GET", "/items/1", "")
	if _, ok := res.Header["Content-Type"]; ok || res.Header.Get("Date") != "" || string(body) != `<html>{"a":1}</html>` {
		t.Errorf("header %v, body %q: want neither Content-Type nor Date, and the body as sent", res.Header, body)
	}
}

// Expect: 100-continue: the gateway reads the body to repeat it, which
// tells the client to go on once; the backends get the body with the
// request and no Expect, so no second 100 reaches the client.
func TestAClientExpectingContinueGetsOne(t *testing.T) {
	old := newBackend(t, "old", jsonAnswer("old", `{}`))
	new := newBackend(t, "new", jsonAnswer("new", `{}`))
	g := startGateway(t, old, new, "routes:\n  - name: items\n    match: {path: \"/items/{id}\"}\n    phase: dual-write\n")
	c, err := net.Dial("tcp", strings.TrimPrefix(g.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "PUT /items/1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 7\r\nExpect: 100-continue\r\n\r\n")
	br := bufio.NewReader(c)
	if line, _ := br.ReadString('\n'); line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("first line %q, want 100 Continue before the body is sent", line)
	}
	if line, _ := br.ReadString('\n'); line != "\r\n" {
		t.Fatalf("the 100's head goes on with %q", line)
	}
	io.WriteString(c, `{"a":1}`)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("after the body: %d, want the primary's 200 and no second 100", res.StatusCode)
	}
	eventually(t, "the secondary's copy", func() bool { new.mu.Lock(); defer new.mu.Unlock(); return len(new.requests) == 1 })
	for _, b := range []*backend{old, new} {
		b.mu.Lock()
		if r := b.requests[0]; r.Header.Get("Expect") != "" || string(r.Body) != `{"a":1}` {
			t.Errorf("%s got %v %q, want the body and no Expect", b.name, r.Header, r.Body)
		}
		b.mu.Unlock()
	}
}

// A '#' the client sent in a write's query reaches the secondary in it, as
// it reached the primary (the copy's URL was parsed as a URL, which took
// '#x' for a fragment and dropped it).
func TestAWritesCopyKeepsItsQueryWhole(t *testing.T) {
	old := newBackend(t, "old", jsonAnswer("old", `{}`))
	new := newBackend(t, "new", jsonAnswer("new", `{}`))
	g := startGateway(t, old, new, "routes:\n  - name: items\n    match: {path: \"/items/{id}\"}\n    phase: dual-write\n")
	got := rawExchange(t, strings.TrimPrefix(g.srv.URL, "http://"), "PUT /items/1?q=1#x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
	if !strings.HasPrefix(got, "HTTP/1.1 200 ") {
		t.Fatalf("PUT: %q", got)
	}
	eventually(t, "the secondary's copy", func() bool { new.mu.Lock(); defer new.mu.Unlock(); return len(new.requests) == 1 })
	old.mu.Lock()
	new.mu.Lock()
	defer old.mu.Unlock()
	defer new.mu.Unlock()
	if o, n := old.requests[0].Target, new.requests[0].Target; o != "/items/1?q=1#x" || n != o {
		t.Errorf("the primary got %q, the secondary %q; want both as the client sent it", o, n)
	}
}

// A protocol switch (WebSocket) is handed over both ways: the primary's
// 101 and every byte after it reach the client and back. The read is
// skipped as upgrade, the secondary gets nothing, and the open connection
// is no request in flight for shadow.lag_factor. Wrapping the 101's body
// to flush it on a break (d658a66) made ReverseProxy answer 502 to every
// switch: the body of a 101 must stay the backend's connection.
func TestAProtocolSwitchIsHandedOverBothWays(t *testing.T) {
	old := newBackend(t, "old", switchTo("websocket", true))
	new := newBackend(t, "new", jsonAnswer("new", userJSON))
	g := startGateway(t, old, new, "routes:\n  - name: ws\n    match: {path: \"/ws\"}\n    phase: shadow-read\n")
	c, rd := switched(t, g, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	if got := gathered(t, g, "cutover_requests_in_flight"); got != 0 {
		t.Errorf("cutover_requests_in_flight = %v with a WebSocket open, want 0", got)
	}
	for _, msg := range []string{"ping", "pong"} {
		fmt.Fprintf(c, "%s\n", msg)
		if line, err := rd.ReadString('\n'); err != nil || line != "echo "+msg+"\n" {
			t.Fatalf("after the switch: %q, %v, want %q", line, err, "echo "+msg+"\n")
		}
	}
	c.Close()
	eventually(t, "the read's outcome", func() bool { return total(g.route("ws")) == 1 })
	if v := g.route("ws"); v.Reads.Reasons["skipped/upgrade"] != 1 {
		t.Errorf("want the read skipped as upgrade: %+v", v.Reads)
	}
	if n := new.count(); n != 0 {
		t.Errorf("the secondary got %d requests, want none", n)
	}
	assertLoadsEnd(t, g, "ws")
}
