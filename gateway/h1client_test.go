package gateway_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutover/cutover/gateway"
)

// h1Server is a real backend that counts the connections it accepted and
// the ones it saw close.
type h1Server struct {
	*httptest.Server
	opened, closed atomic.Int64
}

func newH1Server(t *testing.T, h http.HandlerFunc) *h1Server {
	s := &h1Server{}
	s.Server = httptest.NewUnstartedServer(h)
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			s.opened.Add(1)
		case http.StateClosed, http.StateHijacked:
			s.closed.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func newH1Client(t *testing.T, s *h1Server) gateway.SecondaryClient {
	c := clientFor(t, s, context.Background(), 5*time.Second)
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// clientFor returns the client a Proxy with stop as its stop context would
// use for s.
func clientFor(t *testing.T, s *h1Server, stop context.Context, timeout time.Duration) gateway.SecondaryClient {
	t.Helper()
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	return gateway.NewSecondaryClient(stop, u, timeout, 16)
}

// fetch sends one request and reads its answer whole, as fetchSecondary does.
func fetch(t *testing.T, c gateway.SecondaryClient, ctx context.Context, method, target, body string) (*http.Response, string, error) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.RoundTrip(req)
	if err != nil {
		return nil, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res, string(b), err
}

func TestH1ClientReusesOneConnection(t *testing.T) {
	s := newH1Server(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("chunked") != "" {
			w.Write([]byte(`{"part": 1,`))
			w.(http.Flusher).Flush()
			w.Write([]byte(`"part2": 2}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"path": "`+r.URL.Path+`", "marker": "`+r.Header.Get("X-Test")+`"}`)
	})
	c := newH1Client(t, s)
	for i := range 20 {
		target := s.URL + "/items/1"
		want := `{"path": "/items/1", "marker": ""}`
		if i%2 == 1 {
			target, want = s.URL+"/x?chunked=1", `{"part": 1,"part2": 2}`
		}
		res, body, err := fetch(t, c, context.Background(), http.MethodGet, target, "")
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if res.StatusCode != 200 || body != want {
			t.Fatalf("request %d: %d %q, want 200 %q", i, res.StatusCode, body, want)
		}
	}
	if n := s.opened.Load(); n != 1 {
		t.Fatalf("20 requests in a row opened %d connections, want 1", n)
	}
}

func TestH1ClientClosesWhatIsNotReadToTheEnd(t *testing.T) {
	s := newH1Server(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("x", 64<<10))
	})
	c := newH1Client(t, s)
	for range 3 {
		req, _ := http.NewRequest(http.MethodGet, s.URL, nil)
		res, err := c.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := res.Body.Read(make([]byte, 10)); err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	if n := s.opened.Load(); n != 3 {
		t.Fatalf("3 answers left unread used %d connections, want 3 (one each, none reused)", n)
	}
	eventually(t, "the unread connections closed", func() bool { return s.closed.Load() == 3 })
}

// A backend that closes keep-alive connections while idle (Node closes them
// after 5 s): the next request, even one that could not be replayed, goes
// on a new connection instead of failing on the dead one.
func TestH1ClientSkipsConnectionsTheBackendClosed(t *testing.T) {
	s := newH1Server(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, `{"ok": true}`)
	})
	s.Config.SetKeepAlivesEnabled(true)
	c := newH1Client(t, s)
	if _, _, err := fetch(t, c, context.Background(), http.MethodPost, s.URL, `{"a": 1}`); err != nil {
		t.Fatal(err)
	}
	// Close the backend's side of the idle connection, as its idle timeout would.
	s.CloseClientConnections()
	eventually(t, "the backend to close the idle connection", func() bool { return s.closed.Load() == 1 })
	res, body, err := fetch(t, c, context.Background(), http.MethodPost, s.URL, `{"a": 2}`)
	if err != nil {
		t.Fatalf("a POST after the backend closed the idle connection failed: %v", err)
	}
	if res.StatusCode != 200 || body != `{"ok": true}` {
		t.Fatalf("got %d %q", res.StatusCode, body)
	}
	if n := s.opened.Load(); n != 2 {
		t.Fatalf("opened %d connections, want 2", n)
	}
}

// A replayable request on a reused connection that the backend drops as the
// request arrives is sent again once on a new connection; a POST is not,
// unless it carries the configured idempotency header.
func TestH1ClientRetriesOnlyReplayableRequests(t *testing.T) {
	var first atomic.Int64 // number of the connection that dies
	first.Store(1)
	u, conns := rawBackend(t, func(n int64, conn net.Conn, br *bufio.Reader) {
		for i := 0; ; i++ {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.Copy(io.Discard, req.Body)
			if n == first.Load() && i == 1 {
				return // the connection dies under its second request
			}
			io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
		}
	})
	c := gateway.NewSecondaryClient(context.Background(), u, 5*time.Second, 16)
	defer c.CloseIdleConnections()
	send := func(method string) error {
		_, _, err := fetch(t, c, context.Background(), method, u.String(), "")
		return err
	}
	if err := send(http.MethodGet); err != nil {
		t.Fatal(err)
	}
	if err := send(http.MethodGet); err != nil {
		t.Fatalf("a GET on a connection that died under it was not sent again: %v", err)
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
	// The next connection dies the same way under a POST: it must fail,
	// not be sent twice.
	first.Store(3)
	c.CloseIdleConnections()
	if err := send(http.MethodPost); err != nil {
		t.Fatal(err)
	}
	if err := send(http.MethodPost); !gateway.IsStaleConnection(err) {
		t.Fatalf("a POST on a connection that died under it: %v, want the stale-connection error and no second try", err)
	}
	// The gateway sets the key with Header.Set, in canonical form,
	// however shadow.idempotency_header is written.
	first.Store(4)
	keyed := func() error {
		req, _ := http.NewRequest(http.MethodPost, u.String(), strings.NewReader("{}"))
		req.Header.Set(gateway.WriteKeyHeader, "k1")
		res, err := c.RoundTrip(req)
		if err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
		return err
	}
	if err := keyed(); err != nil {
		t.Fatal(err)
	}
	if err := keyed(); err != nil {
		t.Fatalf("a POST with an idempotency key on a connection that died under it was not sent again: %v", err)
	}
	if n := conns.Load(); n != 5 {
		t.Fatalf("%d connections, want 5", n)
	}
}

// The context's deadline and cancellation reach a connection that is
// waiting for an answer or a body.
func TestH1ClientHonoursTheContext(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	s := newH1Server(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/body" {
			w.Header().Set("Content-Length", "100")
			io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	c := newH1Client(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := fetch(t, c, ctx, http.MethodGet, s.URL+"/head", ""); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hanging head: %v, want the deadline", err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx2, http.MethodGet, s.URL+"/body", nil)
	res, err := c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	body := async(func() error { _, err := io.ReadAll(res.Body); return err })
	cancel2()
	endsCanceled(t, "a body read when its context ended", body)
	res.Body.Close()
}

// The gateway's copies all carry its stop context, and the client watches
// their connections itself rather than registering each exchange with it:
// when stop ends, an answer awaited and a body being read both end at once
// with context.Canceled (a shutdown, not the backend's failure), long
// before the backend's timeout, no later exchange reaches the backend, and
// close returns, twice.
func TestH1ClientCutsItsExchangesWhenItsStopEnds(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	arrived := make(chan string, 2)
	var requests atomic.Int64
	s := newH1Server(t, func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if r.URL.Path == "/body" {
			w.Header().Set("Content-Length", "100")
			io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
		}
		arrived <- r.URL.Path
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	stop, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := clientFor(t, s, stop, time.Minute)

	head := async(func() error { _, _, err := fetch(t, c, stop, http.MethodGet, s.URL+"/head", ""); return err })
	req, _ := http.NewRequestWithContext(stop, http.MethodGet, s.URL+"/body", nil)
	res, err := c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body := async(func() error { _, err := io.ReadAll(res.Body); return err })
	for range 2 {
		<-arrived
	}
	cancel()
	endsCanceled(t, "an answer awaited when stop ended", head)
	endsCanceled(t, "a body being read when stop ended", body)
	if _, _, err := fetch(t, c, stop, http.MethodGet, s.URL+"/late", ""); !errors.Is(err, context.Canceled) {
		t.Errorf("an exchange after stop ended: %v, want context.Canceled", err)
	}
	if n := requests.Load(); n != 2 {
		t.Errorf("the backend got %d requests, want the 2 sent before stop ended", n)
	}
	gateway.CloseClient(c)
	gateway.CloseClient(c) // a second close returns too
}

// A client closed while its stop goes on closes, twice, without waiting for
// stop; before, its exchanges under stop reuse their connection; after, one
// under stop is still cut when stop ends.
func TestH1ClientClosesWhileItsStopGoesOn(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	arrived := make(chan struct{}, 1)
	s := newH1Server(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hang" {
			arrived <- struct{}{}
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		io.WriteString(w, "{}")
	})
	stop, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := clientFor(t, s, stop, time.Minute)
	for range 3 {
		if _, body, err := fetch(t, c, stop, http.MethodGet, s.URL, ""); err != nil || body != "{}" {
			t.Fatalf("got %q, %v", body, err)
		}
	}
	if n := s.opened.Load(); n != 1 {
		t.Errorf("three exchanges under stop opened %d connections, want 1", n)
	}
	done := make(chan struct{})
	go func() {
		gateway.CloseClient(c)
		gateway.CloseClient(c)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("close waited for a stop that never ends")
	}
	hang := async(func() error { _, _, err := fetch(t, c, stop, http.MethodGet, s.URL+"/hang", ""); return err })
	<-arrived
	cancel()
	endsCanceled(t, "an exchange after close when stop ended", hang)
}

// async runs f on a goroutine of its own; its error lands in the channel.
func async(f func() error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- f() }()
	return ch
}

// endsCanceled waits for the error of an exchange whose context ended: it
// must be context.Canceled (a shutdown must not read as the backend's
// failure), and come long before the backend's timeout.
func endsCanceled(t *testing.T, what string, ch <-chan error) {
	t.Helper()
	select {
	case err := <-ch:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s: %v, want context.Canceled", what, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s went on", what)
	}
}

func TestH1ClientSkipsInformationalAnswers(t *testing.T) {
	s := newH1Server(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "done")
	})
	c := newH1Client(t, s)
	res, body, err := fetch(t, c, context.Background(), http.MethodGet, s.URL, "")
	if err != nil || res.StatusCode != 200 || body != "done" {
		t.Fatalf("got %v %v %q, want 200 \"done\"", res, err, body)
	}
}

// rawBackend serves each connection with serve, on a real socket, for
// answers net/http's server would never send.
func rawBackend(t *testing.T, serve func(n int64, conn net.Conn, br *bufio.Reader)) (*url.URL, *atomic.Int64) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var conns atomic.Int64
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			n := conns.Add(1)
			go func() {
				defer conn.Close()
				serve(n, conn, bufio.NewReader(conn))
			}()
		}
	}()
	u, _ := url.Parse("http://" + ln.Addr().String())
	return u, &conns
}

// A backend that sends more than it was asked for (a second answer, a body
// on a 204): what is left over must never be read as the next request's
// answer.
func TestH1ClientNeverReusesAConnectionWithLeftovers(t *testing.T) {
	var served atomic.Int64
	u, conns := rawBackend(t, func(_ int64, conn net.Conn, br *bufio.Reader) {
		for {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			if served.Add(1) == 1 {
				io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"+
					"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n\"stale\"")
				continue
			}
			io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n\"fresh\"")
		}
	})
	c := gateway.NewSecondaryClient(context.Background(), u, 5*time.Second, 16)
	defer c.CloseIdleConnections()
	for i, want := range []string{"{}", `"fresh"`} {
		_, body, err := fetch(t, c, context.Background(), http.MethodGet, u.String(), "")
		if err != nil {
			t.Fatal(err)
		}
		if body != want {
			t.Fatalf("request %d got %q, want %q", i, body, want)
		}
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2: the one with leftovers must not be reused", n)
	}
}

// An endless answer head ends in an error, not in the gateway's memory.
func TestH1ClientBoundsTheAnswerHead(t *testing.T) {
	u, _ := rawBackend(t, func(_ int64, conn net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(conn, "HTTP/1.1 200 OK\r\nX-Endless: ")
		chunk := []byte(strings.Repeat("a", 64<<10))
		for {
			if _, err := conn.Write(chunk); err != nil {
				return
			}
		}
	})
	c := gateway.NewSecondaryClient(context.Background(), u, 10*time.Second, 16)
	defer c.CloseIdleConnections()
	_, _, err := fetch(t, c, context.Background(), http.MethodGet, u.String(), "")
	if err == nil || !strings.Contains(err.Error(), "head larger than") {
		t.Fatalf("an endless header: %v, want the head-size error", err)
	}
}

// A backend that answers a large write before reading it (413, 401) and
// closes: the client gets that answer, not a broken pipe.
func TestH1ClientKeepsAnAnswerSentBeforeTheRequestWasRead(t *testing.T) {
	u, _ := rawBackend(t, func(_ int64, conn net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		// As net/http's server does: answer, discard a little of the
		// unread body, close.
		io.WriteString(conn, "HTTP/1.1 413 Request Entity Too Large\r\nContent-Length: 9\r\nConnection: close\r\n\r\ntoo large")
		io.CopyN(io.Discard, br, 256<<10)
	})
	c := gateway.NewSecondaryClient(context.Background(), u, 10*time.Second, 16)
	defer c.CloseIdleConnections()
	res, body, err := fetch(t, c, context.Background(), http.MethodPut, u.String(), strings.Repeat("x", 16<<20))
	if err != nil {
		t.Fatalf("a write answered early: %v, want the backend's 413", err)
	}
	if res.StatusCode != http.StatusRequestEntityTooLarge || body != "too large" {
		t.Fatalf("got %d %q, want 413 \"too large\"", res.StatusCode, body)
	}
}

// Idle connections past their time are closed by the sweep, not only when
// a later request finds them.
func TestH1ClientSweepClosesExpiredIdleConnections(t *testing.T) {
	s := newH1Server(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "{}") })
	c := newH1Client(t, s)
	if _, _, err := fetch(t, c, context.Background(), http.MethodGet, s.URL, ""); err != nil {
		t.Fatal(err)
	}
	gateway.SweepIdleAfter(c, time.Second)
	// Still pooled: the next request reuses it.
	if _, _, err := fetch(t, c, context.Background(), http.MethodGet, s.URL, ""); err != nil {
		t.Fatal(err)
	}
	if n := s.opened.Load(); n != 1 {
		t.Fatalf("a connection idle for 1 s was not kept: %d connections opened", n)
	}
	gateway.SweepIdleAfter(c, 91*time.Second)
	eventually(t, "the expired idle connection closed", func() bool { return s.closed.Load() == 1 })
}

// 1xx heads that go to nobody count against the answer's head bound, as
// net/http's Transport counts them: a backend streaming 100 Continue heads
// ends the exchange at the bound, not at its timeout.
func TestH1ClientBoundsTheHeadsOfAnAnswerTogether(t *testing.T) {
	u, _ := rawBackend(t, func(_ int64, conn net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		heads := []byte(strings.Repeat("HTTP/1.1 100 Continue\r\n\r\n", 1000))
		for {
			if _, err := conn.Write(heads); err != nil {
				return
			}
		}
	})
	c := gateway.NewSecondaryClient(context.Background(), u, time.Minute, 4)
	defer c.CloseIdleConnections()
	_, _, err := fetch(t, c, context.Background(), http.MethodGet, u.String(), "")
	if err == nil || !strings.Contains(err.Error(), "answer head larger than") {
		t.Fatalf("endless 100 Continue heads: %v, want the head bound", err)
	}
}
