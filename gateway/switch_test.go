package gateway_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/gateway"
)

// switchTo answers an upgrade request by switching to proto (hijacked, as a
// WebSocket server does); with echo it then answers each line the client
// sends with "echo " and the line until the connection closes, without it
// it closes at once. Anything else gets userJSON.
func switchTo(proto string, echo bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "" {
			jsonAnswer("old", userJSON)(w, r)
			return
		}
		c, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		buf.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " + proto + "\r\n\r\n")
		buf.Flush()
		for echo {
			line, err := buf.ReadString('\n')
			if err != nil {
				return
			}
			buf.WriteString("echo " + line)
			buf.Flush()
		}
	}
}

// dial opens a connection to addr, closed when the test ends, sends
// request on it and returns its reader; every read and write on it has 5 s.
func dial(t *testing.T, addr, request string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, request)
	return c, bufio.NewReader(c)
}

// switched sends request on a new connection to the gateway and expects the
// primary's 101.
func switched(t *testing.T, g *gw, request string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, rd := dial(t, g.srv.Listener.Addr().String(), request)
	if res, err := http.ReadResponse(rd, nil); err != nil || res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("the client got %v, %v; want the primary's 101", res, err)
	}
	return c, rd
}

// answers sends each request on one connection to the gateway once the
// answer to the one before is read whole, as a client reusing its
// connection does (no pipelining), and returns "status body" of each.
func answers(t *testing.T, g *gw, requests ...string) []string {
	t.Helper()
	c, br := dial(t, g.srv.Listener.Addr().String(), "")
	var got []string
	for _, req := range requests {
		io.WriteString(c, req)
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		got = append(got, fmt.Sprintf("%d %s", res.StatusCode, strings.TrimSpace(string(body))))
	}
	return got
}

// switchedPost is a write that asks to switch protocols.
const switchedPost = "POST /items/1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: foo\r\nContent-Length: 2\r\n\r\n{}"

// A request that asks to switch protocols and is not switched (the primary
// refuses it with 426, or it is an h2c upgrade, whose headers the gateway
// removes) leaves the client's connection as it found it: the next request
// on it reaches the primary, as it would talking to the primary itself
// (curl --http2 http://... sends every request with Upgrade: h2c).
func TestARefusedUpgradeLeavesTheConnectionUsable(t *testing.T) {
	answer := func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "websocket" {
			w.WriteHeader(http.StatusUpgradeRequired)
			return
		}
		jsonAnswer("old", userJSON)(w, r)
	}
	firsts := map[string]string{
		"websocket refused": "GET /items/1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
		"h2c":               "GET /items/1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
	}
	for name, first := range firsts {
		for _, phase := range []string{"prepare", "shadow-read"} {
			t.Run(name+"/"+phase, func(t *testing.T) {
				old, new := newBackend(t, "old", answer), newBackend(t, "new", answer)
				g := startGateway(t, old, new, fmt.Sprintf(primaryRoute, phase))
				got := answers(t, g, first, "GET /items/2 HTTP/1.1\r\nHost: x\r\n\r\n")
				if want := "200 " + userJSON; got[1] != want {
					t.Errorf("answers %q; the second request on the connection got %q, want the primary's %q (old got %d requests)", got, got[1], want, old.count())
				}
				eventually(t, "both reads' outcomes", func() bool { return total(g.route("items")) == 2 })
				if n := g.route("items").Reads.Reasons["skipped/refused"]; n != 0 {
					t.Errorf("%d reads refused by the gateway: %v", n, g.route("items").Reads.Reasons)
				}
			})
		}
	}
}

// An h2c upgrade is removed (README, "The proxy listener"): the request is
// an ordinary read, and in shadow-read it is compared like any other.
func TestAnH2CUpgradeReadIsCompared(t *testing.T) {
	old, new := newBackend(t, "old", jsonAnswer("old", userJSON)), newBackend(t, "new", jsonAnswer("new", userJSON))
	g := startGateway(t, old, new, fmt.Sprintf(primaryRoute, "shadow-read"))
	got := rawExchange(t, g.srv.Listener.Addr().String(), "GET /items/1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings, close\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
	if !strings.HasPrefix(got, "HTTP/1.1 200 OK\r\n") {
		t.Fatalf("the client got %q", got)
	}
	eventually(t, "the read's outcome", func() bool { return total(g.route("items")) == 1 })
	if v := g.route("items").Reads; v.Window.Matched != 1 {
		t.Errorf("an h2c read was not compared: %v (the secondary got %d requests)", v.Reasons, new.count())
	}
}

// A write the primary answers with 101 is dropped from the queue at once
// (a switch is no write to repeat): the open connection is no write for
// Close to wait for. It waited until its deadline, so a shutdown with one
// such connection open took the whole shutdown_timeout and left Close no
// time to flush the queue.
func TestASwitchedWriteDoesNotHoldClose(t *testing.T) {
	old, new := newBackend(t, "old", switchTo("foo", true)), newBackend(t, "new", jsonAnswer("new", `{}`))
	g := startGateway(t, old, new, fmt.Sprintf(primaryRoute, "dual-write"))
	switched(t, g, switchedPost)
	if d := g.proxy.QueueDepth(); d != 0 {
		t.Fatalf("queue depth %d after a switch, want 0", d)
	}
	g.srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	if err := g.proxy.Close(ctx); err != nil {
		t.Errorf("Close with a switched write's connection open: %v after %v, want it done at once (nothing is queued)", err, time.Since(start).Round(time.Millisecond))
	}
}

// A 101 that ReverseProxy refuses (here: the client offered two protocols,
// RFC 9110 section 7.8, and the primary picked one; ReverseProxy wants the
// whole offer echoed) is answered 502 and the connection stays HTTP. The
// framing scanner was stopped in modifyResponse before ReverseProxy
// looked at the switch, so the next request on the connection is refused
// by the gateway itself (400, skipped/refused).
func TestASwitchReverseProxyRefusesLeavesTheConnectionUsable(t *testing.T) {
	old, new := newBackend(t, "old", switchTo("bar", false)), newBackend(t, "new", jsonAnswer("new", userJSON))
	g := startGateway(t, old, new, fmt.Sprintf(primaryRoute, "shadow-read"))
	got := answers(t, g,
		"GET /items/1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: foo, bar\r\n\r\n",
		"GET /items/2 HTTP/1.1\r\nHost: x\r\n\r\n")
	if want := "200 " + userJSON; got[1] != want {
		t.Errorf("answers %q: the request after a refused switch got %q, want the primary's %q", got, got[1], want)
	}
	eventually(t, "both reads' outcomes", func() bool { return total(g.route("items")) == 2 })
	if n := g.route("items").Reads.Reasons["skipped/refused"]; n != 0 {
		t.Errorf("%d reads refused by the gateway: %v", n, g.route("items").Reads.Reasons)
	}
}

// A 101 to another protocol than the one asked for is refused (502), and
// the primary's connection, switched on its side, is closed: ReverseProxy
// refuses such a switch without closing what the backend handed over, so
// every such answer left a connection and its file descriptor open on
// both ends. The check is ReverseProxy's own (ASCII case only: a Kelvin
// sign is no K), or a switch it refuses would still leak. A write so
// answered is neither repeated nor held to verify: the primary switched.
func TestARefusedSwitchClosesThePrimarysConnection(t *testing.T) {
	for _, tc := range []struct{ asked, got, phase string }{
		{"foo", "bar", "prepare"},
		{"foo", "foo, bar", "prepare"},
		{"websocket", "websoc\u212Aet", "prepare"},
		{"foo", "bar", "dual-write"},
	} {
		closed := make(chan error, 1)
		wrong := func(w http.ResponseWriter, r *http.Request) {
			c, buf, err := http.NewResponseController(w).Hijack()
			if err != nil {
				closed <- err
				return
			}
			defer c.Close()
			buf.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " + tc.got + "\r\n\r\n")
			buf.Flush()
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err = buf.ReadByte() // until the gateway closes its end
			closed <- err
		}
		old, new := newBackend(t, "old", wrong), newBackend(t, "new", jsonAnswer("new", userJSON))
		g := startGateway(t, old, new, "defaults: {write_success: [100-299]}\n"+fmt.Sprintf(primaryRoute, tc.phase))
		method := "GET"
		if tc.phase == "dual-write" {
			method = "POST"
		}
		req := method + " /items/1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: " + tc.asked + "\r\nContent-Length: 0\r\n\r\n"
		if got := answers(t, g, req); !strings.HasPrefix(got[0], "502 ") {
			t.Fatalf("the client got %q for a switch to %q, want 502", got, tc.got)
		}
		if err := <-closed; err != io.EOF {
			t.Errorf("the primary's connection switched to %q: %v, want it closed by the gateway (EOF)", tc.got, err)
		}
		if tc.phase == "dual-write" {
			eventually(t, "the queue idle", g.proxyIdle)
			if w := g.route("items").Writes; w.ToVerify != 0 || w.Unresolved != 0 || new.count() != 0 {
				t.Errorf("a write the primary switched wrongly: %+v, %d copies to the secondary; want it dropped", w, new.count())
			}
		}
	}
}

// RFC 9110 section 7.8: a server must ignore Upgrade in an HTTP/1.0
// request, and section 15.2: no 1xx (101 included) to an HTTP/1.0 client.
// The primary, asked itself, does not switch; through the gateway it is
// asked over HTTP/1.1 with the Upgrade ReverseProxy keeps, and the
// HTTP/1.0 client gets a 101 that no1xx lets through.
func TestAnHTTP10ClientIsNeverSwitched(t *testing.T) {
	conforming := func(w http.ResponseWriter, r *http.Request) {
		if !r.ProtoAtLeast(1, 1) {
			r.Header.Del("Upgrade") // as RFC 9110 section 7.8 asks
		}
		switchTo("websocket", false)(w, r)
	}
	old, new := newBackend(t, "old", conforming), newBackend(t, "new", conforming)
	req := "GET /items/1 HTTP/1.0\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
	direct := rawExchange(t, old.srv.Listener.Addr().String(), req)
	g := startGateway(t, old, new, fmt.Sprintf(primaryRoute, "prepare"))
	proxied := rawExchange(t, g.srv.Listener.Addr().String(), req)
	first := func(s string) string { l, _, _ := strings.Cut(s, "\r\n"); return l }
	if first(proxied) != first(direct) {
		t.Errorf("an HTTP/1.0 client asking to upgrade: the primary itself answers %q, through the gateway %q", first(direct), first(proxied))
	}
}

// A route may count 1xx as a write's success (write_success: [100-299]).
// modifyResponse's comment says a switched write's record is dropped, but
// it is decided by WriteSucceeded: the switch is queued, and the secondary
// is sent a copy of the upgrade request.
func TestASwitchedWriteIsNeverCopied(t *testing.T) {
	old, new := newBackend(t, "old", switchTo("foo", false)), newBackend(t, "new", jsonAnswer("new", `{}`))
	g := startGateway(t, old, new, "defaults: {write_success: [100-299]}\n"+fmt.Sprintf(primaryRoute, "dual-write"))
	c, _ := switched(t, g, switchedPost)
	c.Close()
	eventually(t, "the connection counted out at the switch", func() bool { cl, _ := g.proxy.RouteLoad("items"); return cl == 0 })
	// Wait for anything queued to be delivered.
	eventually(t, "the queue idle", g.proxyIdle)
	if n := new.count(); n != 0 {
		s := new.seen()[0]
		t.Errorf("the secondary got %d copies of a switched write (%s %s, Upgrade %q); writes: %+v", n, s.Method, s.Target, s.Header.Get("Upgrade"), g.route("items").Writes)
	}
}

// A write the secondary does not get, sent while held writes of its
// resource exist for its primary, is counted in flight to that backend
// (beginDirect) until its handler returns: a replay of the held write is
// refused as ErrResourceQueued meanwhile. Switched, the write's handler
// returns only when the connection closes, so the held write cannot be
// replayed for as long as the switched connection stays open, though
// nothing is in flight to the backend any more.
func TestASwitchedDirectWriteDoesNotBlockReplays(t *testing.T) {
	old := newBackend(t, "old", func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Header.Get("X-Cutover-Shadow") != "":
			http.Error(w, "schema mismatch", http.StatusUnprocessableEntity)
		case r.Header.Get("Upgrade") != "":
			switchTo("foo", true)(w, r)
		default:
			jsonAnswer("old", `{}`)(w, r)
		}
	})
	new := newBackend(t, "new", jsonAnswer("new", `{}`))
	g := startGateway(t, old, new, `queue: {max_attempts: 1, base_backoff: 5ms, max_backoff: 10ms}
routes:
  - name: items
    match: {path: "/items/{id}"}
    phase: cutover
    overrides:
      - name: direct
        when: {header: X-Direct, equals: "1"}
        phase: prepare
`)
	if res, _ := g.do("PUT", "/items/a", `{"v": 1}`); res.StatusCode != http.StatusOK {
		t.Fatalf("PUT: %d", res.StatusCode)
	}
	eventually(t, "old's copy given up", func() bool { return g.route("items").Writes.GaveUp == 1 })
	var held []gateway.HeldWrite
	eventually(t, "the held write on disk", func() bool {
		var err error
		if held, err = g.proxy.HeldWrites("gave_up", "items", 0, 10); err != nil {
			t.Fatal(err)
		}
		return len(held) == 1
	})

	c, _ := switched(t, g, "PUT /items/a HTTP/1.1\r\nHost: x\r\nX-Direct: 1\r\nConnection: Upgrade\r\nUpgrade: foo\r\nContent-Length: 2\r\n\r\n{}")
	if err := g.proxy.Redrive(held[0].ID, false); err != nil {
		t.Errorf("a replay while a switched write's connection stays open: %v, want it sent", err)
	}
	c.Close()
	eventually(t, "the replay accepted once the connection closed", func() bool { return g.proxy.Redrive(held[0].ID, false) == nil })
}

// Bytes the client sends right after its upgrade request (before the 101)
// reach the primary, as they do talking to it directly. ReverseProxy
// copies from the hijacked net.Conn and ignores the bytes net/http has
// already buffered (golang/go#80875): they are lost.
func TestBytesSentBeforeTheSwitchReachThePrimary(t *testing.T) {
	old, new := newBackend(t, "old", switchTo("websocket", true)), newBackend(t, "new", jsonAnswer("new", userJSON))
	g := startGateway(t, old, new, fmt.Sprintf(primaryRoute, "shadow-read"))
	for _, via := range []string{"direct", "gateway"} {
		addr := g.srv.Listener.Addr().String()
		if via == "direct" {
			addr = old.srv.Listener.Addr().String()
		}
		c, rd := dial(t, addr, "GET /items/1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nearly\n")
		if res, err := http.ReadResponse(rd, nil); err != nil || res.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("%s: %v, %v", via, res, err)
		}
		io.WriteString(c, "late\n")
		if line, err := rd.ReadString('\n'); line != "echo early\n" {
			t.Errorf("%s: the first line echoed is %q (%v), want %q", via, line, err, "echo early\n")
		}
		c.Close()
	}
}
