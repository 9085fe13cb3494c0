package control

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vipd/vipd/internal/serve"
	"github.com/vipd/vipd/vrrp"
)

const (
	// maxConns is the socket's open connections at once; the operator's
	// commands and a few watchers need far fewer.
	maxConns = 64
	// maxEventSubscribers is the GET /v1/events streams at once.
	maxEventSubscribers = 16
)

// Server serves the API on a Unix socket.
type Server struct {
	srv    *serve.Server
	cancel context.CancelFunc
}

// Listen opens the control socket at path (mode 0660). A socket file
// left by a crashed run is replaced; one that another vipd still answers on
// is an error, and so is a path that is not a socket.
func Listen(path string) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("control socket %s: exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("control socket %s: another vipd is answering on it", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("control socket %s: removing the stale socket: %w", path, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	// Create it with the final mode at once: no moment when others may
	// connect. Nothing else creates files while vipd starts.
	old := syscall.Umask(0o117)
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(true)
	return ln, nil
}

// Node is what the control socket needs of the *vrrp.Node.
type Node interface {
	Status(ctx context.Context) (vrrp.Status, error)
	Subscribe(buf int) (<-chan vrrp.TransitionEvent, func())
	SetMaintenance(ctx context.Context, instance string, on bool) error
}

// Start serves the API for node on ln (from Listen) until Close. It serves
// at most 64 connections and 16 event streams at a time; a client beyond
// either gets 503 with the reason. version is what GET /v1/status reports.
func Start(ln net.Listener, node Node, version string, log *slog.Logger) *Server {
	base, cancel := context.WithCancel(context.Background())
	var subscribers atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		s, err := node.Status(ctx)
		if err != nil {
			http.Error(w, "status: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(toStatus(s, version))
	})
	mux.HandleFunc("GET /v1/events", func(w http.ResponseWriter, r *http.Request) {
		if subscribers.Add(1) > maxEventSubscribers {
			subscribers.Add(-1)
			http.Error(w, fmt.Sprintf("too many event subscribers (at most %d at a time); try again later", maxEventSubscribers),
				http.StatusServiceUnavailable)
			return
		}
		defer subscribers.Add(-1)
		events, unsubscribe := node.Subscribe(64)
		defer unsubscribe()
		rc := http.NewResponseController(w)
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
		_ = rc.Flush()
		enc := json.NewEncoder(w)
		for {
			select {
			case <-r.Context().Done():
				return
			case ev, ok := <-events:
				if !ok {
					return // the node stopped, or we fell behind
				}
				// A client that stops reading is cut off rather than
				// holding a goroutine forever.
				_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
				if enc.Encode(toEvent(ev)) != nil || rc.Flush() != nil {
					return
				}
			}
		}
	})
	mux.HandleFunc("POST /v1/maintenance", maintenanceHandler(node))
	srv := serve.Start(ln, maxConns, "control socket", &http.Server{
		Handler: mux,
		ConnContext: func(ctx context.Context, conn net.Conn) context.Context {
			if lc, ok := conn.(*serve.Conn); ok {
				conn = lc.NetConn() // the *net.UnixConn, for peerUID
			}
			return context.WithValue(ctx, connKey{}, conn)
		},
		ReadHeaderTimeout: 5 * time.Second,
		// A client that stops reading is cut off; the event stream moves
		// its own deadline before every write.
		WriteTimeout: 10 * time.Second,
		IdleTimeout:  60 * time.Second,
		BaseContext:  func(net.Listener) context.Context { return base },
	}, log)
	return &Server{srv: srv, cancel: cancel}
}

// Close ends the event streams, stops the server, removes the socket file
// and waits for the serving goroutine.
func (c *Server) Close() {
	c.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = c.srv.Stop(ctx)
}
