package gateway_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// echoWS switches and echoes lines, reading from the hijacked buffer (so
// bytes the client pipelined after its head are seen).
func echoWS(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Upgrade") == "" {
		jsonAnswer("old", userJSON)(w, r)
		return
	}
	c, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer c.Close()
	buf.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	buf.Flush()
	for {
		line, err := buf.ReadString('\n')
		if err != nil {
			return
		}
		buf.WriteString("echo " + line)
		buf.Flush()
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
			for range 3 {
				res, err := http.Get(g.srv.URL + "/items/1")
				if err == nil {
					io.ReadAll(res.Body)
					res.Body.Close()
				}
			}
			eventually(t, "outcomes", func() bool { return total(g.route("items")) == 3 })
			t.Logf("%s: %v", phase, g.route("items").Reads.Reasons)
			assertLoadsEnd(t, g, "items")
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
	for range 3 {
		res, err := http.Get(g.srv.URL + "/items/1")
		if err == nil {
			io.ReadAll(res.Body)
			res.Body.Close()
		}
	}
	eventually(t, "outcomes", func() bool { return total(g.route("items")) == 3 })
	t.Logf("%v", g.route("items").Reads.Reasons)
	assertLoadsEnd(t, g, "items")
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
	t.Logf("%q", got)
	if !strings.HasSuffix(got, `{"id": 1,`) {
		t.Errorf("got %q", got)
	}
}

// An event stream to an HTTP/1.0 client is flushed as it comes (no1xx
// passes Flush on).
func TestAnEventStreamReachesAnHTTP10ClientAsItComes(t *testing.T) {
	primary := newEventStream(false)
	t.Cleanup(func() { close(primary.release) })
	old, new := newBackend(t, "old", primary.serve), newBackend(t, "new", jsonAnswer("new", userJSON))
	g := startGateway(t, old, new, eventsAndUsers)
	c, err := net.Dial("tcp", g.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	io.WriteString(c, "GET /events HTTP/1.0\r\nHost: x\r\n\r\n")
	rd := bufio.NewReader(c)
	res, err := http.ReadResponse(rd, nil)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(res.Body).ReadString('\n')
	if err != nil || line != "data: 1\n" {
		t.Errorf("first event: %q %v", line, err)
	}
}
