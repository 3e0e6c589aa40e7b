package gateway_test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// Protocol paths beside the WebSocket switch: a refused or stripped
// upgrade, a switch on a write, event streams under shadowing, 1xx answers
// to an HTTP/1.0 client.

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

// A shadowed read answered text/event-stream whose primary breaks mid-
// stream (ReverseProxy panics with ErrAbortHandler): one outcome, slot and
// loads back.
func TestAnEventStreamBrokenMidwayEndsInOneOutcome(t *testing.T) {
	for _, phase := range []string{"shadow-read", "cutover", "dual-write", "prepare"} {
		t.Run(phase, func(t *testing.T) {
			broken := func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("X-Cutover-Shadow") != "" {
					jsonAnswer("x", userJSON)(w, r)
					return
				}
				w.Header().Set("Content-Type", "text/event-stream")
				w.Write([]byte("data: 1\n\n"))
				w.(http.Flusher).Flush()
				c, _, _ := http.NewResponseController(w).Hijack()
				c.Close()
			}
			old, new := newBackend(t, "old", broken), newBackend(t, "new", broken)
			g := startGateway(t, old, new, fmt.Sprintf(primaryRoute, phase))
			getBroken(t, g, 3)
			assertLoadsEnd(t, g, "items")
			assertOutcomes(t, g, 3)
			if n := new.count() + old.count(); phase != "prepare" && phase != "dual-write" && n != 3 {
				t.Errorf("backends got %d requests, want 3 (no secondary copy of a stream)", n)
			}
		})
	}
}

// A shadowed JSON read whose primary breaks mid-body (ErrAbortHandler):
// one outcome, loads back.
func TestAShadowedReadBrokenMidwayGivesItsCountsBack(t *testing.T) {
	broken := func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Cutover-Shadow") != "" {
			jsonAnswer("x", userJSON)(w, r)
			return
		}
		w.Header().Set("Content-Length", "100")
		w.Write([]byte(`{"id":`))
		w.(http.Flusher).Flush()
		c, _, _ := http.NewResponseController(w).Hijack()
		c.Close()
	}
	old, new := newBackend(t, "old", broken), newBackend(t, "new", broken)
	g := startGateway(t, old, new, fmt.Sprintf(primaryRoute, "shadow-read"))
	getBroken(t, g, 3)
	assertLoadsEnd(t, g, "items")
	assertOutcomes(t, g, 3)
}

// HTTP/1.0 client, primary breaks mid-body: what it sent still reaches the
// client through no1xx (flushOnError's Flusher).
func TestAnHTTP10ClientGetsWhatABrokenPrimarySent(t *testing.T) {
	broken := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.Write([]byte(`{"id": 1,`))
		w.(http.Flusher).Flush()
		c, _, _ := http.NewResponseController(w).Hijack()
		c.Close()
	}
	old, new := newBackend(t, "old", broken), newBackend(t, "new", broken)
	g := startGateway(t, old, new, fmt.Sprintf(primaryRoute, "prepare"))
	got := rawExchange(t, g.srv.Listener.Addr().String(), "GET /items/1 HTTP/1.0\r\nHost: x\r\n\r\n")
	if !strings.HasSuffix(got, `{"id": 1,`) {
		t.Errorf("got %q, want what the primary sent before it broke off", got)
	}
}

// An event stream to an HTTP/1.0 client is flushed as it comes (no1xx
// passes Flush on).
func TestAnEventStreamReachesAnHTTP10ClientAsItComes(t *testing.T) {
	primary := newEventStream(false)
	t.Cleanup(func() { close(primary.release) })
	old, new := newBackend(t, "old", primary.serve), newBackend(t, "new", jsonAnswer("new", userJSON))
	g := startGateway(t, old, new, eventsAndUsers)
	_, rd := dial(t, g.srv.Listener.Addr().String(), "GET /events HTTP/1.0\r\nHost: x\r\n\r\n")
	res, err := http.ReadResponse(rd, nil)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(res.Body).ReadString('\n')
	if err != nil || line != "data: 1\n" {
		t.Errorf("first event: %q %v", line, err)
	}
}

// getBroken sends n reads of /items/1 whose primary breaks off, and waits
// for their outcomes.
// assertOutcomes checks, once the reads have ended, that the route still
// counts n outcomes: getBroken saw the count reach n, and a read counted
// twice would pass it on the way up.
func assertOutcomes(t *testing.T, g *gw, n int) {
	t.Helper()
	if got := total(g.route("items")); got != int64(n) {
		t.Errorf("%d outcomes once every read ended, want %d: one each", got, n)
	}
}

func getBroken(t *testing.T, g *gw, n int) {
	t.Helper()
	for range n {
		if res, err := http.Get(g.srv.URL + "/items/1"); err == nil {
			io.ReadAll(res.Body)
			res.Body.Close()
		}
	}
	eventually(t, "the reads' outcomes", func() bool { return total(g.route("items")) == int64(n) })
}
