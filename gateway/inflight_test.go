package gateway_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"
)

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

func newSilentBackend(t *testing.T) *silentBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &silentBackend{ln: ln, heads: make(chan struct{}, 256), done: make(chan struct{})}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.close)
	return s
}

func (s *silentBackend) url() string { return "http://" + s.ln.Addr().String() }

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

// With a slow secondary, rate × its slowness reads wait on it at once (1,000
// at 10,000 req/s and 100 ms), and each collection marks what every one of
// them keeps; the longer the mark, the more client requests it delays
// (README, "Performance"). So a read in flight keeps only what its
// comparison needs, not the primary's exchange that led to it.
func TestAShadowedReadWaitingOnTheSecondaryKeepsLittle(t *testing.T) {
	// Not newBackend: it keeps every request it sees.
	old := httptest.NewServer(jsonAnswer("old", userJSON))
	t.Cleanup(old.Close)
	silent := newSilentBackend(t)
	g := startProxy(t, fmt.Sprintf(`backends:
  old: {url: %q, timeout: 2s}
  new: {url: %q, timeout: 1m}
routes:
  - name: users
    match: {path: "/users/{id}"}
    phase: shadow-read
`, old.URL, silent.url()), t.TempDir())
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	t.Cleanup(client.CloseIdleConnections)
	get := func(i int) {
		res, err := client.Get(fmt.Sprintf("%s/users/%d", g.srv.URL, i))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET /users/%d: %s", i, res.Status)
		}
	}
	waitHeads := func(n int) {
		timeout := time.After(10 * time.Second)
		for i := range n {
			select {
			case <-silent.heads:
			case <-timeout:
				t.Fatalf("the secondary got %d of %d requests (reads skipped?): %+v", i, n, g.route("users").Reads)
			}
		}
	}
	// Connections to the old backend and the pools exist before the count
	// starts.
	const warm, reads = 20, 200
	for i := range warm {
		get(i)
	}
	waitHeads(warm)
	before := heapObjects()
	for i := range reads {
		get(warm + i)
	}
	waitHeads(reads)
	after := heapObjects()
	ended := g.route("users").Reads.Total
	silent.close()
	if ended != 0 {
		t.Fatalf("%d reads ended; all should still wait on the secondary", ended)
	}
	eventually(t, "the reads to end once the secondary hangs up", func() bool { return total(g.route("users")) == warm+reads })
	// What each read in flight adds: the gateway's exchange and the
	// primary's answer, the secondary's request, connection and
	// goroutine; and the silent backend's connection (about five
	// objects). Before a read let go of the primary's timer (whose trace
	// is chained to ReverseProxy's, which holds the client's
	// ResponseWriter) and its capture, it was about 78; since, about 50,
	// with Go 1.26's net/http.
	per := float64(after-before) / reads
	t.Logf("%.1f heap objects per read in flight", per)
	if per > 65 {
		t.Errorf("a read waiting on the secondary keeps %.1f heap objects, want at most 65", per)
	}
}
