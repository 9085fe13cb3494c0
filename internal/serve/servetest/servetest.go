// Package servetest holds the helpers that the tests of vipd's HTTP
// servers share: raw requests on a connection, polling with a deadline,
// and a log sink the servers' goroutines write while a test reads it.
// Only tests import it; it must never be linked into the daemon.
package servetest

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// Request sends GET path on c and returns the answer's status code and,
// unless it streams (application/x-ndjson), its body.
func Request(t *testing.T, c net.Conn, path string) (int, string) {
	t.Helper()
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: vipd\r\n\r\n"); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	if resp.Header.Get("Content-Type") == "application/x-ndjson" {
		return resp.StatusCode, "" // an event stream: nothing more comes
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Eventually retries f until it returns true, for up to 5 s.
func Eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); !f(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting until %s", what)
		}
	}
}

// Dialer returns a function that dials addr on network and closes the
// connection when the test ends.
func Dialer(t *testing.T, network, addr string) func() net.Conn {
	return func() net.Conn {
		t.Helper()
		c, err := net.Dial(network, addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
}

// Fill opens n connections with dial and has each answer GET path with
// 200, and returns them open: they hold n of a listener's slots.
func Fill(t *testing.T, dial func() net.Conn, n int, path string) []net.Conn {
	t.Helper()
	var held []net.Conn
	for i := range n {
		c := dial()
		if code, body := Request(t, c, path); code != http.StatusOK {
			t.Fatalf("GET %s on connection %d of %d: %d %q, want 200", path, i+1, n, code, body)
		}
		held = append(held, c)
	}
	return held
}

// SyncBuffer is a log sink the servers' goroutines write while the test
// reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
