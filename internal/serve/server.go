package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
)

// Server is an http.Server that serves from its own goroutine, which Stop
// waits for.
type Server struct {
	srv  *http.Server
	what string
	addr string
	done chan struct{}

	once    sync.Once
	stopErr error
}

// Start serves srv on ln, at most limit connections at a time (see Limit),
// from a goroutine that Stop waits for. srv gets MaxHeaderBytes and an
// ErrorLog that logs to log at warning level unless it sets its own. A
// failure of the serving loop is logged as "<what> failed" with the
// address.
func Start(ln net.Listener, limit int, what string, srv *http.Server, log *slog.Logger) *Server {
	if srv.MaxHeaderBytes == 0 {
		srv.MaxHeaderBytes = MaxHeaderBytes
	}
	if srv.ErrorLog == nil {
		srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	}
	s := &Server{srv: srv, what: what, addr: ln.Addr().String(), done: make(chan struct{})}
	lim := Limit(ln, limit, what, log)
	go func() {
		defer close(s.done)
		if err := srv.Serve(lim); !errors.Is(err, http.ErrServerClosed) {
			log.Error(what+" failed", "addr", s.addr, "err", err)
		}
	}()
	return s
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.addr }

// Stop shuts the server down gracefully: it stops accepting, lets requests
// in flight finish until ctx is done, then closes what is left and returns
// an error that wraps ctx's. It returns once the serving goroutine has
// ended; a second call returns the first call's result.
func (s *Server) Stop(ctx context.Context) error {
	s.once.Do(func() {
		if err := s.srv.Shutdown(ctx); err != nil {
			// Requests still running when ctx ran out: cut them off.
			s.srv.Close()
			s.stopErr = fmt.Errorf("%s on %s: shutdown: %w", s.what, s.addr, err)
		}
		<-s.done
	})
	return s.stopErr
}
