package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vipd/vipd/vrrp"
)

// fakeNode answers the control socket's calls without a protocol loop.
type fakeNode struct {
	mu   sync.Mutex
	subs int // subscriptions open
}

func (f *fakeNode) Status(context.Context) (vrrp.Status, error) { return vrrp.Status{}, nil }

func (f *fakeNode) Subscribe(buf int) (<-chan vrrp.TransitionEvent, func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.subs++
	ch := make(chan vrrp.TransitionEvent, buf)
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.subs--
			close(ch)
		})
	}
}

func (f *fakeNode) SetMaintenance(context.Context, string, bool) error { return nil }

// syncBuffer is a log sink the server's goroutines write while the test
// reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// request sends GET path on c and returns the answer's status code and,
// unless it streams, its body.
func request(t *testing.T, c net.Conn, path string) (int, string) {
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

// eventually retries f until it returns true, for up to 5 s.
func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); !f(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting until %s", what)
		}
	}
}

func startTestControl(t *testing.T) (dial func() net.Conn) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vipd.sock")
	ln, err := listenControl(path)
	if err != nil {
		t.Fatal(err)
	}
	ctl := startControl(ln, &fakeNode{}, "test", slog.New(slog.DiscardHandler))
	t.Cleanup(ctl.Close)
	return func() net.Conn {
		t.Helper()
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
}

// The control socket serves maxControlConns connections at once; the next
// is answered 503 at once, saying why, and served again once one closes.
func TestControlSocketLimitsConnections(t *testing.T) {
	dial := startTestControl(t)
	var held []net.Conn
	for i := range maxControlConns {
		c := dial()
		if code, body := request(t, c, "/v1/status"); code != http.StatusOK {
			t.Fatalf("connection %d of %d: %d %q, want 200", i+1, maxControlConns, code, body)
		}
		held = append(held, c)
	}
	start := time.Now()
	code, body := request(t, dial(), "/v1/status")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "too many connections") {
		t.Errorf("connection %d: %d %q, want 503 saying there are too many connections", maxControlConns+1, code, trunc(body, 200))
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("the refusal took %v", d)
	}
	held[0].Close()
	eventually(t, "a connection is served after one closed", func() bool {
		code, _ := request(t, dial(), "/v1/status")
		return code == http.StatusOK
	})
	// The connections held open are still served.
	if code, _ := request(t, held[1], "/v1/status"); code != http.StatusOK {
		t.Errorf("held connection: %d, want 200", code)
	}
}

// At most maxEventSubscribers event streams: the next subscriber is told
// 503 why, status is still answered, and a stream that ends frees its place.
func TestControlSocketLimitsEventSubscribers(t *testing.T) {
	dial := startTestControl(t)
	var streams []net.Conn
	for i := range maxEventSubscribers {
		c := dial()
		if code, _ := request(t, c, "/v1/events"); code != http.StatusOK {
			t.Fatalf("subscriber %d of %d: %d, want 200", i+1, maxEventSubscribers, code)
		}
		streams = append(streams, c)
	}
	code, body := request(t, dial(), "/v1/events")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "too many event subscribers") {
		t.Errorf("subscriber %d: %d %q, want 503 saying there are too many event subscribers", maxEventSubscribers+1, code, body)
	}
	if code, _ := request(t, dial(), "/v1/status"); code != http.StatusOK {
		t.Errorf("status beside %d subscribers: %d, want 200", maxEventSubscribers, code)
	}
	streams[0].Close()
	eventually(t, "a subscriber is served after a stream ended", func() bool {
		code, _ := request(t, dial(), "/v1/events")
		return code == http.StatusOK
	})
}

// The metrics listener serves maxMetricsConns connections at once and
// answers the next one 503.
func TestMetricsListenerLimitsConnections(t *testing.T) {
	var logs syncBuffer
	stop, err := startMetrics("127.0.0.1:0", newMetricsHandler(fixedStatus(testStatus(), nil), testBuild),
		slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer stop(context.Background())
	addr := listenAddr(t, bytes.NewBufferString(logs.String()))
	dial := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	var held []net.Conn
	for i := range maxMetricsConns {
		c := dial()
		if code, body := request(t, c, "/healthz"); code != http.StatusOK {
			t.Fatalf("connection %d of %d: %d %q, want 200", i+1, maxMetricsConns, code, body)
		}
		held = append(held, c)
	}
	code, body := request(t, dial(), "/metrics")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "too many connections to the metrics listener") {
		t.Errorf("connection %d: %d %q, want 503 saying there are too many connections", maxMetricsConns+1, code, trunc(body, 200))
	}
	held[0].Close()
	eventually(t, "a connection is served after one closed", func() bool {
		code, _ := request(t, dial(), "/healthz")
		return code == http.StatusOK
	})
	if !strings.Contains(logs.String(), "refusing connections") {
		t.Errorf("no log line about the refused connection:\n%s", logs.String())
	}
}

// A request header over maxHeaderBytes is refused.
func TestControlSocketBoundsHeader(t *testing.T) {
	dial := startTestControl(t)
	c := dial()
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	go io.WriteString(c, "GET /v1/status HTTP/1.1\r\nHost: vipd\r\nX-Big: "+strings.Repeat("a", 64<<10)+"\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("64 KiB header: %d, want 431", resp.StatusCode)
	}
}
