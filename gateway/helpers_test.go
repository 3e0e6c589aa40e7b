package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cutover/cutover/gateway"
	"github.com/cutover/cutover/rules"
	"github.com/cutover/cutover/stats"
)

// seen is one request as a backend received it.
type seen struct {
	Method string
	Target string // RequestURI: path and raw query
	Header http.Header
	Body   []byte
}

// backend is a real HTTP server that records what it receives and answers
// with its handler.
type backend struct {
	name string
	srv  *httptest.Server

	mu       sync.Mutex
	requests []seen
	handler  http.HandlerFunc
}

func newBackend(t testing.TB, name string, h http.HandlerFunc) *backend {
	t.Helper()
	b := &backend{name: name, handler: h}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.requests = append(b.requests, seen{Method: r.Method, Target: r.RequestURI, Header: r.Header.Clone(), Body: body})
		h := b.handler
		b.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(b.srv.Close)
	return b
}

// jsonAnswer answers every request with the same JSON body, naming the
// backend in a header so a test can tell who served.
func jsonAnswer(name, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Served-By", name)
		w.Write([]byte(body))
	}
}

func (b *backend) setHandler(h http.HandlerFunc) {
	b.mu.Lock()
	b.handler = h
	b.mu.Unlock()
}

func (b *backend) seen() []seen {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]seen(nil), b.requests...)
}

func (b *backend) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.requests)
}

// gw is a running gateway in front of two backends.
type gw struct {
	t     testing.TB
	proxy *gateway.Proxy
	srv   *httptest.Server
	stats *stats.Store
	reg   *prometheus.Registry
	set   *rules.Set
	old   *backend
	new   *backend
	logs  *logLines
}

// logLines keeps the messages the gateway logs at Warn and above.
type logLines struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logLines) Enabled(_ context.Context, level slog.Level) bool { return level >= slog.LevelWarn }

func (l *logLines) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.msgs = append(l.msgs, r.Message)
	l.mu.Unlock()
	return nil
}

func (l *logLines) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logLines) WithGroup(string) slog.Handler      { return l }

// count returns how many times msg was logged.
func (l *logLines) count(msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.msgs {
		if m == msg {
			n++
		}
	}
	return n
}

// startGateway runs a gateway whose configuration is cfg with {{old}} and
// {{new}} replaced by the backends' URLs. Only the parts after backends:
// need to be given.
func startGateway(t testing.TB, old, new *backend, cfg string) *gw {
	t.Helper()
	src := fmt.Sprintf("backends:\n  old: {url: %q, timeout: 2s}\n  new: {url: %q, timeout: 2s}\n", old.srv.URL, new.srv.URL) + cfg
	g := startProxy(t, src, t.TempDir())
	g.old, g.new = old, new
	return g
}

// startProxy runs a gateway with the whole configuration src and its queue
// in dataDir. It is closed when the test ends, or earlier by close.
func startProxy(t testing.TB, src, dataDir string) *gw {
	t.Helper()
	set, err := rules.Parse("test.yaml", strings.NewReader(src))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, src)
	}
	g := &gw{t: t, stats: stats.New(), reg: prometheus.NewRegistry(), set: set, logs: &logLines{}}
	g.proxy, err = gateway.New(gateway.Config{Rules: rules.NewStatic(set), Stats: g.stats, Registerer: g.reg, DataDir: dataDir,
		Logger: slog.New(g.logs)})
	if err != nil {
		t.Fatal(err)
	}
	// The proxy listener as cutover serve runs it: its limits and framing
	// checks.
	g.srv = httptest.NewUnstartedServer(nil)
	g.srv.Config = g.proxy.NewServer(nil)
	g.srv.Listener = gateway.FramingListener(g.srv.Listener)
	g.srv.Start()
	t.Cleanup(g.close)
	return g
}

// close stops the gateway as a drain would: the listener, then the proxy.
func (g *gw) close() {
	g.srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.proxy.Close(ctx); err != nil {
		g.t.Errorf("gateway Close: %v", err)
	}
}

// do sends a request through the gateway and returns the response with its
// body read.
func (g *gw) do(method, target, body string, header ...string) (*http.Response, []byte) {
	g.t.Helper()
	return send(g.t, g.srv.URL, method, target, body, header...)
}

func send(t testing.TB, base, method, target, body string, header ...string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+target, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: body: %v", method, target, err)
	}
	return res, b
}

// route returns the current view of one route.
func (g *gw) route(name string) stats.RouteView {
	for _, v := range g.stats.Routes(nil) {
		if v.Name == name {
			return v
		}
	}
	return stats.RouteView{Name: name}
}

// eventually polls cond until it holds or the deadline passes. Outcomes are
// recorded off the request path, so tests wait for them, never sleep.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// total is every read outcome recorded for a route.
func total(v stats.RouteView) int64 { return v.Reads.Total }

// proxyIdle reports whether no secondary write is queued.
func (g *gw) proxyIdle() bool { return g.proxy.QueueDepth() == 0 }

// silentBackend accepts connections and reads what they send, and never
// answers: a secondary that keeps every read waiting. It keeps little of its
// own per connection, so that what the heap holds is the gateway's.
type silentBackend struct {
	ln    net.Listener
	heads chan struct{} // one per request head received
	done  chan struct{} // closed by close
	wg    sync.WaitGroup
	once  sync.Once

	mu     sync.Mutex
	conns  []net.Conn
	closed bool
}

func newSilentBackend(t testing.TB) *silentBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &silentBackend{ln: ln, heads: make(chan struct{}, 2048), done: make(chan struct{})}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.close)
	return s
}

func (s *silentBackend) url() string { return "http://" + s.ln.Addr().String() }

// waitHeads waits until the silent backend has the heads of n more
// requests from g's route users.
func (s *silentBackend) waitHeads(t testing.TB, g *gw, n int) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for i := range n {
		select {
		case <-s.heads:
		case <-timeout:
			t.Fatalf("the secondary got %d of %d requests (reads skipped?): %+v", i, n, g.route("users").Reads)
		}
	}
}

func (s *silentBackend) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			continue
		}
		s.conns = append(s.conns, c)
		s.wg.Add(1)
		s.mu.Unlock()
		go s.read(c)
	}
}

// read reports each request head on c, and drains c until it closes.
func (s *silentBackend) read(c net.Conn) {
	defer s.wg.Done()
	buf := make([]byte, 512)
	var tail []byte
	for {
		n, err := c.Read(buf)
		tail = append(tail, buf[:n]...)
		for {
			i := bytes.Index(tail, []byte("\r\n\r\n"))
			if i < 0 {
				break
			}
			tail = tail[i+4:]
			select {
			case s.heads <- struct{}{}:
			case <-s.done:
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// close hangs up on every connection: the reads waiting on it end as the
// secondary failed.
func (s *silentBackend) close() {
	s.once.Do(func() {
		close(s.done)
		s.ln.Close()
		s.mu.Lock()
		s.closed = true
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
}

// heapObjects is the number of objects on the heap after a full collection
// (two, so that sync.Pool's victim cache is gone too).
func heapObjects() uint64 {
	runtime.GC()
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/objects:objects"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
