package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/vipd/vipd/config"
	"github.com/vipd/vipd/internal/metrics"
	"github.com/vipd/vipd/vrrp"
)

// startMetricsFor starts the metrics listener when the configuration asks
// for one; stop shuts it down.
func startMetricsFor(cfg *config.Config, node *vrrp.Node, ver, rev string, log *slog.Logger) (stop func(), err error) {
	if cfg.MetricsListen == "" {
		return func() {}, nil
	}
	h := metrics.NewHandler(node.Status, metrics.BuildInfo{Version: ver, Commit: rev})
	stopFn, err := metrics.Start(cfg.MetricsListen, h, log)
	if err != nil {
		return nil, err
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := stopFn(ctx); err != nil {
			log.Warn("stopping the metrics listener", "err", err)
		}
	}, nil
}
