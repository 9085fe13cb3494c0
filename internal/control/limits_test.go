package control

import (
	"bufio"
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

	"github.com/vipd/vipd/internal/serve/servetest"
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

func startTestControl(t *testing.T) (dial func() net.Conn) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vipd.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctl := Start(ln, &fakeNode{}, "test", slog.New(slog.DiscardHandler))
	t.Cleanup(ctl.Close)
	return servetest.Dialer(t, "unix", path)
}

// The control socket serves maxConns connections at once; the next
// is answered 503 at once, saying why, and served again once one closes.
func TestControlSocketLimitsConnections(t *testing.T) {
	dial := startTestControl(t)
	held := servetest.Fill(t, dial, maxConns, "/v1/status")
	start := time.Now()
	code, body := servetest.Request(t, dial(), "/v1/status")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "too many connections") {
		t.Errorf("connection %d: %d %q, want 503 saying there are too many connections", maxConns+1, code, body)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("the refusal took %v", d)
	}
	held[0].Close()
	servetest.Eventually(t, "a connection is served after one closed", func() bool {
		code, _ := servetest.Request(t, dial(), "/v1/status")
		return code == http.StatusOK
	})
	// The connections held open are still served.
	if code, _ := servetest.Request(t, held[1], "/v1/status"); code != http.StatusOK {
		t.Errorf("held connection: %d, want 200", code)
	}
}

// At most maxEventSubscribers event streams: the next subscriber is told
// 503 why, status is still answered, and a stream that ends frees its place.
func TestControlSocketLimitsEventSubscribers(t *testing.T) {
	dial := startTestControl(t)
	streams := servetest.Fill(t, dial, maxEventSubscribers, "/v1/events")
	code, body := servetest.Request(t, dial(), "/v1/events")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "too many event subscribers") {
		t.Errorf("subscriber %d: %d %q, want 503 saying there are too many event subscribers", maxEventSubscribers+1, code, body)
	}
	if code, _ := servetest.Request(t, dial(), "/v1/status"); code != http.StatusOK {
		t.Errorf("status beside %d subscribers: %d, want 200", maxEventSubscribers, code)
	}
	streams[0].Close()
	servetest.Eventually(t, "a subscriber is served after a stream ended", func() bool {
		code, _ := servetest.Request(t, dial(), "/v1/events")
		return code == http.StatusOK
	})
}

// A request header over serve.MaxHeaderBytes is refused.
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
