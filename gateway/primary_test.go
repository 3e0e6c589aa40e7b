package gateway_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/stats"
)

// The primary's reads go over cutover's own HTTP/1.1 client; these are the
// things net/http's Transport did on that leg that the client must do too.

const primaryRoute = "routes:\n  - name: items\n    match: {path: \"/items/{id}\"}\n    phase: %s\n"

func TestThePrimaryPassesOn1xxAnswersToTheClient(t *testing.T) {
	hinted := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</a.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"id": 1}`))
	}
	for _, phase := range []string{"prepare", "shadow-read", "cutover"} {
		t.Run(phase, func(t *testing.T) {
			g := startGateway(t, newBackend(t, "old", hinted), newBackend(t, "new", hinted), fmt.Sprintf(primaryRoute, phase))
			var got []string
			trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
				got = append(got, fmt.Sprintf("%d %s", code, h.Get("Link")))
				return nil
			}}
			req, err := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), "GET", g.srv.URL+"/items/1", nil)
			if err != nil {
				t.Fatal(err)
			}
			res, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil || res.StatusCode != 200 || string(body) != `{"id": 1}` {
				t.Fatalf("answer %d %q (%v), want 200 and the backend's body", res.StatusCode, body, err)
			}
			if want := "103 </a.css>; rel=preload"; len(got) != 1 || got[0] != want {
				t.Errorf("the client got the 1xx answers %q, want [%q]", got, want)
			}
		})
	}
}

// backends.*.timeout bounds the wait for the primary's head, as the
// Transport's ResponseHeaderTimeout did; a body that takes longer still
// streams to the client whole, and is compared whole.
func TestAPrimaryAnswerStreamsPastTheBackendTimeout(t *testing.T) {
	const timeout = 100 * time.Millisecond
	half := `{"items": [` + strings.Repeat(`{"id": 1}, `, 50)
	slow := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(half))
		w.(http.Flusher).Flush()
		// The rest comes after three timeouts: the backend is slow, on
		// purpose; nothing waits on this to synchronise.
		time.Sleep(3 * timeout)
		w.Write([]byte(`{"id": 2}]}`))
	}
	old, new := newBackend(t, "old", slow), newBackend(t, "new", slow)
	src := fmt.Sprintf("backends:\n  old: {url: %q, timeout: %s}\n  new: {url: %q, timeout: 2s}\n", old.srv.URL, timeout, new.srv.URL) + fmt.Sprintf(primaryRoute, "shadow-read")
	g := startProxy(t, src, t.TempDir())
	res, body := g.do("GET", "/items/1", "")
	if want := half + `{"id": 2}]}`; res.StatusCode != 200 || string(body) != want {
		t.Fatalf("answer %d with %d bytes, want 200 with all %d", res.StatusCode, len(body), len(want))
	}
	eventually(t, "the read compared", func() bool { return g.route("items").Reads.Matched == 1 })
}

func TestAPrimaryReadWithoutAHeadInTimeIsAGatewayTimeout(t *testing.T) {
	hold := make(chan struct{})
	t.Cleanup(func() { close(hold) })
	silent := func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hold:
		case <-r.Context().Done():
		}
	}
	old, new := newBackend(t, "old", silent), newBackend(t, "new", jsonAnswer("new", `{}`))
	src := fmt.Sprintf("backends:\n  old: {url: %q, timeout: 100ms}\n  new: {url: %q, timeout: 2s}\n", old.srv.URL, new.srv.URL) + fmt.Sprintf(primaryRoute, "shadow-read")
	g := startProxy(t, src, t.TempDir())
	if res, _ := g.do("GET", "/items/1", ""); res.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("answer %d, want 504", res.StatusCode)
	}
	eventually(t, "the read recorded", func() bool { return g.route("items").Reads.Errors == 1 })
	if n := g.route("items").Reads.Reasons["error/"+stats.ReasonPrimaryFailed]; n != 1 {
		t.Errorf("reads with reason %s: %d, want 1", stats.ReasonPrimaryFailed, n)
	}
}

// A client that leaves in the middle of an answer ends the primary's
// exchange: the backend sees its request's context end, and the connection
// is not kept for the next read.
func TestAClientLeavingMidAnswerEndsThePrimarysExchange(t *testing.T) {
	ended := make(chan struct{}, 1)
	g := startGateway(t, newBackend(t, "old", endlessAnswer(t, ended)), newBackend(t, "new", jsonAnswer("new", `{}`)), fmt.Sprintf(primaryRoute, "prepare"))
	leaveMidAnswer(t, g, "/items/1")
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the backend's request did not end within 5 s of the client leaving")
	}
	// The next read is served on a connection of its own.
	g.old.setHandler(jsonAnswer("old", `{"id": 1}`))
	if res, body := g.do("GET", "/items/1", ""); res.StatusCode != 200 || string(body) != `{"id": 1}` {
		t.Fatalf("the next read: %d %q", res.StatusCode, body)
	}
}

// A client that leaves before its answer is written whole is no failure of
// either backend: the read is skipped as client_gone, not an error of the
// primary (which counted against the new backend's readiness in the cutover
// phase), and its copy is not sent to the secondary, whose answer nobody
// waits for. A read the gateway refuses is skipped as refused.
func TestAClientLeavingIsNoFailureOfEitherBackend(t *testing.T) {
	for _, phase := range []string{"shadow-read", "cutover"} {
		t.Run(phase, func(t *testing.T) {
			old, new := newBackend(t, "old", endlessAnswer(t, nil)), newBackend(t, "new", endlessAnswer(t, nil))
			g := startGateway(t, old, new, fmt.Sprintf(primaryRoute, phase))
			leaveMidAnswer(t, g, "/items/1")
			eventually(t, "the read recorded", func() bool { return total(g.route("items")) == 1 })
			v := g.route("items")
			if v.Reads.Reasons["skipped/"+stats.ReasonClientGone] != 1 || v.Reads.Errors != 0 {
				t.Errorf("reads = %+v, want one skipped/%s", v.Reads, stats.ReasonClientGone)
			}
			if n := old.count() + new.count(); n != 1 {
				t.Errorf("the backends got %d requests, want the primary's only", n)
			}
			assertLoadsEnd(t, g, "items")

			if status := rawRequest(t, g.srv.Listener.Addr().String(), "GET /items/a\"b HTTP/1.1\r\nHost: x\r\n\r\n"); status != http.StatusBadRequest {
				t.Fatalf("a read with a raw quote in its path: %d, want 400", status)
			}
			eventually(t, "the refused read recorded", func() bool { return total(g.route("items")) == 2 })
			if v := g.route("items").Reads; v.Reasons["skipped/"+stats.ReasonRefused] != 1 || v.Errors != 0 {
				t.Errorf("reads = %+v, want one skipped/%s", v, stats.ReasonRefused)
			}
		})
	}
	// A client that gives up before the primary's head comes: the primary
	// was slower than its client's patience, which counts against it (in
	// the cutover phase, against the new backend).
	t.Run("before the head", func(t *testing.T) {
		silent := func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
		g := startGateway(t, newBackend(t, "old", jsonAnswer("old", `{}`)), newBackend(t, "new", silent), fmt.Sprintf(primaryRoute, "cutover"))
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", g.srv.URL+"/items/1", nil)
		done := make(chan struct{})
		go func() {
			defer close(done)
			if res, err := http.DefaultClient.Do(req); err == nil {
				res.Body.Close()
			}
		}()
		eventually(t, "the primary to get the read", func() bool { return g.new.count() == 1 })
		cancel()
		<-done
		eventually(t, "the read recorded", func() bool { return total(g.route("items")) == 1 })
		if v := g.route("items"); v.Reads.Reasons["error/"+stats.ReasonPrimaryFailed] != 1 {
			t.Errorf("reads = %+v, want one error/%s", v.Reads, stats.ReasonPrimaryFailed)
		}
	})
}

// The primary's answer head may be as large as net/http's Transport let it
// be (10 MB), larger than what the secondary's answers are held to.
func TestAPrimaryAnswerKeepsTheTransportsHeadLimit(t *testing.T) {
	big := strings.Repeat("v", 2<<20)
	large := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Large", big)
		w.Write([]byte(`{}`))
	}
	g := startGateway(t, newBackend(t, "old", large), newBackend(t, "new", large), fmt.Sprintf(primaryRoute, "prepare"))
	res, body := g.do("GET", "/items/1", "")
	if res.StatusCode != 200 || len(res.Header.Get("X-Large")) != len(big) || string(body) != `{}` {
		t.Fatalf("answer %d with a %d-byte X-Large and body %q, want 200, all %d bytes and {}", res.StatusCode, len(res.Header.Get("X-Large")), body, len(big))
	}
}

// A HEAD read gets the primary's head and no body, and the connection to
// the backend serves the next read.
func TestAHeadReadGetsThePrimarysHeadOnly(t *testing.T) {
	answer := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "9")
		if r.Method != http.MethodHead {
			w.Write([]byte(`{"id": 1}`))
		}
	}
	g := startGateway(t, newBackend(t, "old", answer), newBackend(t, "new", answer), "routes:\n  - name: items\n    match: {methods: [GET, HEAD], path: \"/items/{id}\"}\n    phase: shadow-read\n")
	for _, method := range []string{"HEAD", "GET", "HEAD", "GET"} {
		res, body := g.do(method, "/items/1", "")
		want := `{"id": 1}`
		if method == "HEAD" {
			want = ""
		}
		if res.StatusCode != 200 || res.ContentLength != 9 || string(body) != want {
			t.Fatalf("%s: %d, length %d, body %q; want 200, length 9, body %q", method, res.StatusCode, res.ContentLength, body, want)
		}
	}
	eventually(t, "four reads recorded", func() bool { return g.route("items").Reads.Total == 4 })
}

// Trailers the primary announces reach the client with their values.
func TestThePrimarysTrailersReachTheClient(t *testing.T) {
	trailing := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"id": 1}`))
		w.Header().Set("X-Checksum", "abc")
	}
	g := startGateway(t, newBackend(t, "old", trailing), newBackend(t, "new", trailing), fmt.Sprintf(primaryRoute, "shadow-read"))
	res, body := g.do("GET", "/items/1", "")
	if res.StatusCode != 200 || string(body) != `{"id": 1}` || res.Trailer.Get("X-Checksum") != "abc" {
		t.Fatalf("answer %d %q with trailers %v; want 200, the body and X-Checksum: abc", res.StatusCode, body, res.Trailer)
	}
	eventually(t, "the read matched", func() bool { return g.route("items").Reads.Matched == 1 })
}

// endlessAnswer is a backend that sends the head and the first bytes of a
// JSON answer and then nothing, until its request or the test ends; ended,
// when not nil, hears of the request's end.
func endlessAnswer(t *testing.T, ended chan<- struct{}) http.HandlerFunc {
	hold := make(chan struct{})
	t.Cleanup(func() { close(hold) })
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"items": [`))
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			if ended != nil {
				ended <- struct{}{}
			}
		case <-hold:
		}
	}
}

// leaveMidAnswer reads the head and the first bytes of g's answer to a GET
// of target (from an endlessAnswer), and hangs up.
func leaveMidAnswer(t *testing.T, g *gw, target string) {
	t.Helper()
	conn, err := net.Dial("tcp", g.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", target)
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(res.Body, make([]byte, len(`{"items": [`))); err != nil {
		t.Fatalf("the answer's first bytes: %v", err)
	}
}
