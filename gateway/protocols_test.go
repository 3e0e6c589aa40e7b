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
)

// Protocol paths beside the WebSocket switch: a refused or stripped
// upgrade, a switch on a write, event streams under shadowing, 1xx answers
// to an HTTP/1.0 client.

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
				c, err := net.Dial("tcp", g.srv.Listener.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				br := bufio.NewReader(c)
				var got []string
				// The second request is sent once the first answer is read
				// whole: no pipelining, a client reusing its connection.
				for _, req := range []string{first, "GET /items/2 HTTP/1.1\r\nHost: x\r\n\r\n"} {
					io.WriteString(c, req)
					res, err := http.ReadResponse(br, nil)
					if err != nil {
						t.Fatalf("after %q: %v", got, err)
					}
					body, _ := io.ReadAll(res.Body)
					res.Body.Close()
					got = append(got, fmt.Sprintf("%d %s", res.StatusCode, body))
				}
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
	hijack := func(w http.ResponseWriter, r *http.Request) {
		c, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		buf.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n")
		buf.Flush()
		io.Copy(io.Discard, buf) // until the gateway hangs up
	}
	old, new := newBackend(t, "old", hijack), newBackend(t, "new", jsonAnswer("new", `{}`))
	g := startGateway(t, old, new, fmt.Sprintf(primaryRoute, "dual-write"))
	c, err := net.Dial("tcp", g.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "POST /items/1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: foo\r\nContent-Length: 2\r\n\r\n{}")
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("the client got %v, %v; want the primary's 101", res, err)
	}
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

// eventStream answers GET /events with a text/event-stream that sends one
// event, then stays open until release is closed (or, live, until its
// client leaves, as a subscription does); anything else with userJSON.
type eventStream struct {
	started chan struct{}
	release chan struct{}
	live    bool
}

func newEventStream(live bool) *eventStream {
	return &eventStream{started: make(chan struct{}, 64), release: make(chan struct{}), live: live}
}

func (s *eventStream) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/events" {
		jsonAnswer("x", userJSON)(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Write([]byte("data: 1\n\n"))
	w.(http.Flusher).Flush()
	s.started <- struct{}{}
	if s.live {
		<-r.Context().Done()
		return
	}
	select {
	case <-s.release:
	case <-r.Context().Done():
	}
}

const eventsAndUsers = "routes:\n  - name: events\n    match: {path: \"/events\"}\n    phase: shadow-read\n" +
	"  - name: users\n    match: {path: \"/users/{id}\"}\n    phase: shadow-read\n"

// An open event stream is a read whose comparison cannot begin before the
// stream ends: it must not keep a shadow slot all that time. With as many
// streams open as shadow.workers, every other read of every route was
// skipped as busy for as long as they stayed open.
func TestOpenEventStreamsLeaveTheOtherReadsCompared(t *testing.T) {
	primary := newEventStream(false)
	t.Cleanup(func() { close(primary.release) })
	old, new := newBackend(t, "old", primary.serve), newBackend(t, "new", jsonAnswer("new", userJSON))
	g := startGateway(t, old, new, "shadow: {workers: 2}\n"+eventsAndUsers)
	for range 2 {
		res, err := http.Get(g.srv.URL + "/events")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		<-primary.started
	}
	for i := range 3 {
		if res, _ := g.do("GET", "/users/1", ""); res.StatusCode != 200 {
			t.Fatalf("GET /users/1: %d", res.StatusCode)
		}
		// Its comparison holds one of the two slots until it is recorded.
		eventually(t, "the read's outcome", func() bool { return total(g.route("users")) == int64(i+1) })
	}
	if v := g.route("users").Reads; v.Window.Compared != 3 {
		t.Errorf("with 2 event streams open, /users reads: %v, want all 3 compared (cutover_shadow_in_flight %v)", v.Reasons, gathered(t, g, "cutover_shadow_in_flight"))
	}
}

// The secondary's copy of a subscription is a stream that ends only when
// its client leaves, so its exchange always runs into the backend's
// timeout: a healthy new backend serving the same stream was counted as
// failing (error/secondary_failed) and, after a few streams, its breaker
// opened and every route's reads were skipped as breaker_open.
func TestEventStreamsDoNotTripTheSecondarysBreaker(t *testing.T) {
	primary, secondary := newEventStream(false), newEventStream(true)
	close(primary.release) // old's streams end after their first event
	old, new := newBackend(t, "old", primary.serve), newBackend(t, "new", secondary.serve)
	src := fmt.Sprintf("backends:\n  old: {url: %q, timeout: 2s}\n  new: {url: %q, timeout: 200ms}\n", old.srv.URL, new.srv.URL) + eventsAndUsers
	g := startProxy(t, src, t.TempDir())
	for range 8 {
		if res, body := g.do("GET", "/events", ""); res.StatusCode != 200 || string(body) != "data: 1\n\n" {
			t.Fatalf("GET /events: %d %q", res.StatusCode, body)
		}
	}
	eventually(t, "the streams' outcomes", func() bool { return total(g.route("events")) == 8 })
	for range 3 {
		g.do("GET", "/users/1", "")
	}
	eventually(t, "the reads' outcomes", func() bool { return total(g.route("users")) == 3 })
	if ev, us := g.route("events").Reads, g.route("users").Reads; us.Window.Compared != 3 || ev.Reasons["error/secondary_failed"] != 0 {
		t.Errorf("events: %v; users: %v; want no stream counted as new's failure and the /users reads compared", ev.Reasons, us.Reasons)
	}
}

// RFC 9110 section 15.2: a server must not send a 1xx answer to an
// HTTP/1.0 client. The primary, asked over HTTP/1.1 by the gateway, may
// send 103 Early Hints; an HTTP/1.0 client that reads it takes it for the
// answer. Talking to the primary itself, it got none.
func TestNo1xxAnswerReachesAnHTTP10Client(t *testing.T) {
	hinted := func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoAtLeast(1, 1) { // as RFC 9110 asks of the primary
			w.Header().Set("Link", "</a.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"id": 1}`))
	}
	old, new := newBackend(t, "old", hinted), newBackend(t, "new", hinted)
	req := "GET /items/1 HTTP/1.0\r\nHost: x\r\n\r\n"
	direct := rawExchange(t, old.srv.Listener.Addr().String(), req)
	g := startGateway(t, old, new, fmt.Sprintf(primaryRoute, "prepare"))
	proxied := rawExchange(t, g.srv.Listener.Addr().String(), req)
	res, err := http.ReadResponse(bufio.NewReader(strings.NewReader(proxied)), nil)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Errorf("an HTTP/1.0 client reads %v (%v)\ndirect : %q\nproxied: %q", res.Status, err, direct, proxied)
	}
}
