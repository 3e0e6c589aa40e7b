package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

// kv is a small REST store, like the services cutover sits in front of:
// PUT sets a path's JSON value, GET reads it. It applies a write once per
// idempotency key (a repeated key answers success without applying again),
// and keeps, per path, the keys of the writes it applied in order, so a
// test can say which writes landed and in what order.
type kv struct {
	mu      sync.Mutex
	state   map[string]string
	applied map[string][]string // path → idempotency keys, in applied order
	seen    map[string]bool
}

func newKV() *kv {
	return &kv{state: map[string]string{}, applied: map[string][]string{}, seen: map[string]bool{}}
}

// apply handles a request and reports whether it was a write that applied.
func (k *kv) apply(r *http.Request) (status int, body string) {
	switch r.Method {
	case http.MethodPut:
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return http.StatusBadRequest, `{"error":"body"}`
		}
		k.mu.Lock()
		defer k.mu.Unlock()
		key := r.Header.Get("Idempotency-Key")
		if key == "" || !k.seen[key] {
			k.seen[key] = true
			k.state[r.URL.Path] = string(b)
			k.applied[r.URL.Path] = append(k.applied[r.URL.Path], key)
		}
		return http.StatusOK, k.state[r.URL.Path]
	default:
		k.mu.Lock()
		defer k.mu.Unlock()
		v, ok := k.state[r.URL.Path]
		if !ok {
			return http.StatusNotFound, `{"error":"not found"}`
		}
		return http.StatusOK, v
	}
}

func (k *kv) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	status, body := k.apply(r)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// value returns what path holds ("" when nothing).
func (k *kv) value(path string) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.state[path]
}

// log returns the applied idempotency keys per path.
func (k *kv) log() map[string][]string {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make(map[string][]string, len(k.applied))
	for p, ks := range k.applied {
		out[p] = slices.Clone(ks)
	}
	return out
}

// sameAs reports how k's applied writes differ from want's ("" when the
// same writes landed in the same order per path).
func (k *kv) sameAs(want *kv) string {
	got, exp := k.log(), want.log()
	for p, ks := range exp {
		if !slices.Equal(got[p], ks) {
			return fmt.Sprintf("%s: applied %v, want %v", p, got[p], ks)
		}
	}
	for p, ks := range got {
		if _, ok := exp[p]; !ok {
			return fmt.Sprintf("%s: applied %v, want nothing", p, ks)
		}
	}
	return ""
}

// server is a real HTTP server on a loopback port chosen by the kernel,
// which can go down (connections refused) and come back on the same port.
type server struct {
	t    *testing.T
	addr string
	h    http.Handler

	mu  sync.Mutex
	srv *http.Server
	wg  sync.WaitGroup
}

func newServer(t *testing.T, h http.Handler) *server {
	t.Helper()
	s := &server{t: t, h: h, addr: "127.0.0.1:0"}
	s.up()
	t.Cleanup(s.down)
	return s
}

func (s *server) url() string { return "http://" + s.addr }

// up starts serving on the server's address.
func (s *server) up() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return
	}
	var ln net.Listener
	deadline := time.Now().Add(5 * time.Second)
	for {
		var err error
		if ln, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("listen %s again: %v", s.addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.addr = ln.Addr().String()
	srv := &http.Server{Handler: s.h, ReadHeaderTimeout: 5 * time.Second}
	s.srv = srv
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.t.Errorf("serve: %v", err)
		}
	}()
}

// down closes the listener and every connection: new ones are refused.
func (s *server) down() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv == nil {
		return
	}
	srv.Close()
	// Handlers still running (a hanging one) end with their connection.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
	s.wg.Wait()
}
