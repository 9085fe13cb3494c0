package serve_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/serve"
	"github.com/vipd/vipd/internal/serve/servetest"
)

func startTest(t *testing.T, limit int, h http.Handler) (*serve.Server, *servetest.SyncBuffer) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var logs servetest.SyncBuffer
	srv := serve.Start(ln, limit, "test listener", &http.Server{Handler: h}, slog.New(slog.NewTextHandler(&logs, nil)))
	t.Cleanup(func() { srv.Stop(context.Background()) })
	return srv, &logs
}

var ok = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })

// The listener hands out limit connections; the next ones are answered
// 503 with the reason and closed, counted in one log line, and a slot
// given back is handed out again.
func TestLimit(t *testing.T) {
	srv, logs := startTest(t, 2, ok)
	dial := servetest.Dialer(t, "tcp", srv.Addr())
	held := servetest.Fill(t, dial, 2, "/")
	a, b := held[0], held[1]
	for range 3 {
		code, body := servetest.Request(t, dial(), "/")
		if want := "vipd: too many connections to the test listener (at most 2 at a time); try again later\n"; code != http.StatusServiceUnavailable || body != want {
			t.Errorf("beyond the limit: %d %q, want 503 %q", code, body, want)
		}
	}
	// The connections held are still served.
	if code, _ := servetest.Request(t, b, "/"); code != http.StatusOK {
		t.Errorf("held connection: %d", code)
	}
	a.Close()
	servetest.Eventually(t, "a new connection is served after one closed", func() bool {
		code, _ := servetest.Request(t, dial(), "/")
		return code == http.StatusOK
	})
	if n := strings.Count(logs.String(), "refusing connections"); n != 1 {
		t.Errorf("%d log lines about refusals, want 1 (at most one per 10 s):\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), "listener=\"test listener\" limit=2 refused=1") {
		t.Errorf("the refusal log line does not name the listener, the limit and the count:\n%s", logs)
	}
}

// A header over MaxHeaderBytes is refused with 431.
func TestMaxHeaderBytes(t *testing.T) {
	srv, _ := startTest(t, 4, ok)
	req, _ := http.NewRequest(http.MethodGet, "http://"+srv.Addr()+"/", nil)
	req.Header.Set("X-Big", strings.Repeat("a", serve.MaxHeaderBytes+4096))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("header of %d bytes: %d, want 431", serve.MaxHeaderBytes+4096, resp.StatusCode)
	}
}

// Stop lets a request in flight finish; with a context already done it
// cuts the request off and says so, naming the listener; a second Stop
// returns the first one's result.
func TestStop(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	srv, _ := startTest(t, 4, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	done := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + srv.Addr() + "/")
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	<-entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := srv.Stop(ctx)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "test listener on "+srv.Addr()) {
		t.Errorf("Stop with a done context and a request in flight: %v, want context.Canceled naming the listener", err)
	}
	close(release)
	select {
	case err := <-done:
		if err == nil {
			t.Error("the request in flight was not cut off")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the request in flight still runs 5 s after Stop returned")
	}
	if again := srv.Stop(context.Background()); again != err {
		t.Errorf("second Stop: %v, want the first one's %v", again, err)
	}
	if _, err := net.DialTimeout("tcp", srv.Addr(), time.Second); err == nil {
		t.Error("still accepting after Stop")
	}
}
