package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/vipd/vipd/config"
	"github.com/vipd/vipd/vrrp"
)

// newLogger logs key=value lines to w. Under systemd (JOURNAL_STREAM set)
// the journal stamps each line, so vipd leaves its own time out.
func newLogger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{}
	if os.Getenv("JOURNAL_STREAM") != "" {
		opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func cmdRun(args []string, stderr io.Writer) error {
	fs := newFlagSet("run", stderr)
	path := fs.String("config", defaultConfig, "configuration file")
	socket := fs.String("socket", "", "control socket path (overrides control_socket)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return exitError{2}
	}
	if err := noArgs("run", pos); err != nil {
		return err
	}
	log := newLogger(stderr)

	// Catch the signals before anything else, so that one arriving during
	// start-up is handled rather than killing a half-started daemon.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(stop)
	defer signal.Stop(hup)

	cfg, err := config.Load(*path)
	if err != nil {
		printConfigErrors(stderr, err)
		return exitError{1}
	}
	if *socket != "" {
		cfg.ControlSocket = *socket
	}
	node, err := vrrp.NewNode(cfg, log)
	if err != nil {
		return err
	}
	ver, rev := versionInfo()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- node.Run(ctx, func() {
			log.Info("vipd started", "version", ver, "commit", rev, "config", *path, "instances", len(cfg.Instances))
		})
	}()
	for {
		select {
		case sig := <-stop:
			log.Info("stopping: resigning and removing VIPs", "signal", sig.String())
			cancel()
			if err := <-done; err != nil {
				return err
			}
			log.Info("stopped")
			return nil
		case <-hup:
			log.Warn("SIGHUP: configuration reload is not supported by this version; restart vipd to apply changes")
		case err := <-done:
			return err
		}
	}
}
