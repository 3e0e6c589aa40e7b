package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cutover/cutover/gateway"
)

// unanswered returns the address of a listener that never accepts and whose
// accept queue is full: Linux drops further SYNs, so a connection to it
// blocks in connect as to a backend behind a black hole.
func unanswered(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	// Fill the queue: connections complete until it is full, and the first
	// one that does not proves the next dial will block.
	for range 8 {
		conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return addr
			}
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
	}
	t.Fatal("the accept queue never filled")
	return ""
}

func TestSecondaryTimeoutCoversABlockedDial(t *testing.T) {
	addr := unanswered(t)
	for _, scheme := range []string{"http", "https"} {
		t.Run(scheme, func(t *testing.T) {
			u := &url.URL{Scheme: scheme, Host: addr}
			c := gateway.NewSecondaryClient(context.Background(), u, 300*time.Millisecond, 4)
			t.Cleanup(c.CloseIdleConnections)
			done := make(chan error, 1)
			go func() {
				_, _, err := fetch(t, c, context.Background(), http.MethodGet, u.String()+"/items/1", "")
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("a dial the backend never answers: %v, want the backend's timeout", err)
				}
				// cutover's own client names the step that timed out (the
				// Transport says only "context deadline exceeded"): the dial,
				// not a request sent on a connection that did open.
				if scheme == "http" && !strings.Contains(err.Error(), "dial") {
					t.Fatalf("timed out, but not while dialling: %v", err)
				}
			case <-time.After(2500 * time.Millisecond):
				// Well past the 300 ms timeout, and half the dialler's own
				// 5 s limit: only the backend's timeout ends the dial here.
				t.Error("the backend's timeout did not stop a blocked dial")
				<-done // the dialler's limit ends it
			}
		})
	}
}
