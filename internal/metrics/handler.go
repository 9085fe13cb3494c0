package metrics

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vipd/vipd/internal/serve"
)

const (
	// A scrape waits this long for the node's loop to answer. Prometheus'
	// default scrape timeout is 10s; a loop that takes 2s to hand over a
	// snapshot is wedged, and the scrape fails rather than hang.
	scrapeStatusTimeout = 2 * time.Second
	// /healthz is stricter: it is what a supervisor polls.
	healthStatusTimeout = time.Second
	// maxConns is the listener's open connections at once: a Prometheus
	// or two, and a supervisor polling /healthz.
	maxConns = 16
)

// NewHandler serves /metrics and /healthz; any other path is 404.
//
// /metrics asks status for a snapshot at every scrape and builds the vipd_
// series from it, next to the Go runtime and process series, in the text
// format or OpenMetrics as the scraper asks, gzipped if it accepts that.
// If the snapshot cannot be had within 2s the scrape fails with 500, so
// that Prometheus' up{job="vipd"} goes to 0 rather than the VRRP series
// going quietly stale.
//
// /healthz answers 200 "ok" when status answers within 1s, and 503 with
// the error otherwise.
func NewHandler(status StatusFunc, bi BuildInfo) http.Handler {
	return handler(status, bi, scrapeStatusTimeout, healthStatusTimeout)
}

func handler(status StatusFunc, bi BuildInfo, scrapeTimeout, healthTimeout time.Duration) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		NewCollector(status, bi, scrapeTimeout),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector(),
	)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorHandling:     promhttp.HTTPErrorOnError,
		EnableOpenMetrics: true,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
		defer cancel()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if _, err := status(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "vipd status: %v\n", err)
			return
		}
		io.WriteString(w, "ok\n")
	})
	return mux
}

// Start listens on addr before it returns, so that a bad address or a port
// in use fails start-up instead of surfacing later in a log line, and
// serves h from a goroutine that stop waits for, at most 16 connections at
// a time (the next is answered 503). An empty addr means the listener is
// off (metrics_listen: ""); stop is then a no-op.
//
// stop shuts the server down gracefully: it stops accepting, lets requests
// in flight finish until ctx is done, then closes what is left and returns
// an error wrapping ctx's. Calling it again returns the first call's
// result.
func Start(addr string, h http.Handler, log *slog.Logger) (stop func(context.Context) error, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if addr == "" {
		log.Info("metrics listener off (metrics_listen is empty)")
		return func(context.Context) error { return nil }, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener on %s: %w", addr, err)
	}
	// A request is read within 5 s and answered within 15 s (a scrape
	// takes at most scrapeStatusTimeout to build).
	srv := serve.Start(ln, maxConns, "metrics listener", &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       5 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       time.Minute,
	}, log)
	log.Info("metrics listening", "addr", srv.Addr())
	return srv.Stop, nil
}
