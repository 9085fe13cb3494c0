package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/vipd/vipd/config"
	"github.com/vipd/vipd/internal/control"
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

// tuneRuntime sizes the Go runtime for a small protocol daemon: one
// processor (vipd's work is a single loop; more Ps only add idle spinning
// and thread wake-ups on every advert burst), and a small heap: the advert
// path allocates nothing, so a tight GC target costs almost no CPU, while
// it keeps the bursts (hundreds of instances becoming master at once) from
// raising the resident size. The memory limit is soft: a larger live heap
// only makes the GC run more often. GOMAXPROCS, GOGC and GOMEMLIMIT in the
// environment override these.
func tuneRuntime() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(20)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(8 << 20)
	}
}

// notify tells systemd about the daemon's state (a no-op outside systemd).
func notify(log *slog.Logger, state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		log.Warn("sd_notify failed", "state", state, "err", err)
	}
}

func cmdRun(args []string, stderr io.Writer) error {
	fs := newFlagSet("run", stderr)
	path := fs.String("config", defaultConfig, "configuration file")
	socket := fs.String("socket", "", "control socket path (overrides control_socket)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return flagError(err)
	}
	if err := noArgs("run", pos); err != nil {
		return err
	}
	log := newLogger(stderr)
	tuneRuntime()

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
	warnReadableSecrets(*path, cfg, log)
	logConfigWarnings(log, cfg)
	ln, err := control.Listen(cfg.ControlSocket)
	if err != nil {
		return err
	}
	// Only one vipd per state_dir, and it locks before touching any
	// address.
	unlock, err := lockStateDir(cfg.StateDir)
	if err != nil {
		ln.Close()
		return err
	}
	defer unlock()
	node, err := vrrp.NewNode(cfg, log)
	if err != nil {
		ln.Close()
		return err
	}
	ver, rev := versionInfo()
	ctl := control.Start(ln, node, ver, log)
	defer ctl.Close()
	stopMetrics, err := startMetricsFor(cfg, node, ver, rev, log)
	if err != nil {
		node.Abort()
		return err
	}
	defer stopMetrics()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- node.Run(ctx, func() {
			log.Info("vipd started", "version", ver, "commit", rev, "config", *path,
				"instances", len(cfg.Instances), "socket", cfg.ControlSocket)
			notify(log, daemon.SdNotifyReady)
		})
	}()
	watchdog := startWatchdog(ctx, node, log)
	defer watchdog()

	for {
		select {
		case sig := <-stop:
			log.Info("stopping: resigning and removing VIPs", "signal", sig.String())
			notify(log, daemon.SdNotifyStopping)
			cancel()
			if err := <-done; err != nil {
				return err
			}
			log.Info("stopped")
			return nil
		case <-hup:
			reload(ctx, node, *path, *socket, cfg, log)
		case err := <-done:
			return err
		}
	}
}

// warnReadableSecrets warns when a config file that holds a VRRP password
// can be read by every user on the host.
func warnReadableSecrets(path string, cfg *config.Config, log *slog.Logger) {
	hasSecret := false
	for _, in := range cfg.Instances {
		hasSecret = hasSecret || in.AuthPass != ""
	}
	if !hasSecret {
		return
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o004 != 0 {
		log.Warn("the configuration holds an auth_pass and is readable by every user; chmod o-r it",
			"config", path, "mode", fi.Mode().Perm().String())
	}
}

// reload re-reads the configuration and applies it; on any problem the
// running configuration stays and every error is logged.
func reload(ctx context.Context, node *vrrp.Node, path, socketFlag string, running *config.Config, log *slog.Logger) {
	notify(log, "RELOADING=1\n"+daemon.SdNotifyMonotonicUsec())
	defer notify(log, daemon.SdNotifyReady)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cfg, err := config.Load(path)
	if err != nil {
		var errs config.Errors
		if errors.As(err, &errs) {
			for _, e := range errs {
				log.Error("reload refused: configuration error; keeping the running configuration", "error", e.Error())
			}
		} else {
			log.Error("reload refused; keeping the running configuration", "err", err)
		}
		if err := node.ReloadFailed(ctx); err != nil {
			log.Error("recording the failed reload", "err", err)
		}
		return
	}
	if socketFlag != "" {
		cfg.ControlSocket = socketFlag
	}
	// The socket, the listener and the state directory (its lock and the
	// maintenance state read at start) belong to the running process.
	if cfg.ControlSocket != running.ControlSocket || cfg.MetricsListen != running.MetricsListen || cfg.StateDir != running.StateDir {
		log.Warn("control_socket, metrics_listen and state_dir changes take effect only at restart",
			"control_socket", running.ControlSocket, "metrics_listen", running.MetricsListen, "state_dir", running.StateDir)
		cfg.ControlSocket, cfg.MetricsListen, cfg.StateDir = running.ControlSocket, running.MetricsListen, running.StateDir
	}
	warnReadableSecrets(path, cfg, log)
	logConfigWarnings(log, cfg)
	if err := node.Reload(ctx, cfg); err != nil {
		log.Error("reload refused; keeping the running configuration", "err", err)
		return
	}
	*running = *cfg
	log.Info("configuration reloaded", "config", path, "instances", len(cfg.Instances))
}

// startWatchdog pings systemd's watchdog while the protocol loop answers;
// a wedged loop stops the pings and systemd restarts vipd.
func startWatchdog(ctx context.Context, node *vrrp.Node, log *slog.Logger) (stop func()) {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil || interval == 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				sctx, scancel := context.WithTimeout(ctx, interval/3)
				_, err := node.Status(sctx)
				scancel()
				if err == nil {
					notify(log, daemon.SdNotifyWatchdog)
				} else if ctx.Err() == nil {
					log.Error("protocol loop did not answer; withholding the watchdog ping", "err", err)
				}
			}
		}
	}()
	return func() { cancel(); <-done }
}
