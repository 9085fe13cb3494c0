package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/vipd/vipd/vrrp"
)

// statusFunc returns a fresh snapshot of the running node.
type statusFunc func(ctx context.Context) (vrrp.Status, error)

// buildInfo is what vipd_build_info reports besides the Go version.
type buildInfo struct{ Version, Commit string }

const (
	// A scrape waits this long for the node's loop to answer. Prometheus'
	// default scrape timeout is 10s; a loop that takes 2s to hand over a
	// snapshot is wedged, and the scrape fails rather than hang.
	scrapeStatusTimeout = 2 * time.Second
	// /healthz is stricter: it is what a supervisor polls.
	healthStatusTimeout = time.Second
)

// newMetricsHandler serves /metrics and /healthz; any other path is 404.
//
// /metrics asks status for a snapshot at every scrape and builds the vipd_
// series from it, next to the Go runtime and process series. If the snapshot
// cannot be had within 2s the scrape fails with 500, so that Prometheus'
// up{job="vipd"} goes to 0 rather than the VRRP series going quietly stale.
//
// /healthz answers 200 "ok" when status answers within 1s, and 503 with
// the error otherwise.
func newMetricsHandler(status statusFunc, bi buildInfo) http.Handler {
	return metricsHandler(status, bi, scrapeStatusTimeout, healthStatusTimeout)
}

func metricsHandler(status statusFunc, bi buildInfo, scrapeTimeout, healthTimeout time.Duration) http.Handler {
	c := newVRRPCollector(status, bi, scrapeTimeout)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		var e exposition
		if err := c.collect(&e); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		collectProcess(&e)
		w.Header().Set("Content-Type", expositionContentType)
		_ = e.write(w)
	})
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

// startMetrics listens on addr before it returns, so that a bad address or
// a port in use fails start-up instead of surfacing later in a log line, and
// serves h from a goroutine that stop waits for. An empty addr means the
// listener is off (metrics_listen: ""); stop is then a no-op.
//
// stop shuts the server down gracefully: it stops accepting, lets requests
// in flight finish until ctx is done, then closes what is left and returns
// ctx's error. Calling it again returns the first call's result.
func startMetrics(addr string, h http.Handler, log *slog.Logger) (stop func(context.Context) error, err error) {
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
	// At most maxMetricsConns connections; a request is read within
	// 5 s and answered within 15 s (a scrape takes at most
	// scrapeStatusTimeout to build).
	ln = newLimitListener(ln, maxMetricsConns, "metrics listener", log)
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       5 * time.Second,
		WriteTimeout:      15 * time.Second,
		MaxHeaderBytes:    maxHeaderBytes,
		IdleTimeout:       time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener failed", "addr", ln.Addr().String(), "err", err)
		}
	}()
	log.Info("metrics listening", "addr", ln.Addr().String())

	var (
		once    sync.Once
		stopErr error
	)
	stop = func(ctx context.Context) error {
		once.Do(func() {
			if err := srv.Shutdown(ctx); err != nil {
				// Requests still running when ctx ran out: cut them off.
				srv.Close()
				stopErr = fmt.Errorf("metrics listener on %s: shutdown: %w", ln.Addr(), err)
			}
			<-done
		})
		return stopErr
	}
	return stop, nil
}

// vrrpCollector builds every vipd_ series at scrape time from one status
// snapshot, so that a scrape sees one consistent moment of the node and
// there is no second copy of the counters to keep in step.
type vrrpCollector struct {
	status  statusFunc
	bi      buildInfo
	timeout time.Duration
	all     []*desc

	state, transitions, priority, effPriority                  *desc
	maintenance, trackerFailing                                *desc
	advertsSent, advertsReceived, advertsDropped               *desc
	prioZeroSent, prioZeroReceived, lastTransition             *desc
	vipPresent, vipInfo, vipRestored, garpSent                 *desc
	vipAddFailures                                             *desc
	addrMismatch, masterAddress, advertInterval, masterAdvert  *desc
	checksumMode, reloadOK, reloadTime, reloadFailures, starts *desc
	build                                                      *desc
}

func newVRRPCollector(status statusFunc, bi buildInfo, timeout time.Duration) *vrrpCollector {
	c := &vrrpCollector{status: status, bi: bi, timeout: timeout}
	node := func(name, help string, labels ...string) *desc {
		d := newDesc(name, help, labels...)
		c.all = append(c.all, d)
		return d
	}
	inst := func(name, help string, labels ...string) *desc {
		return node(name, help, append([]string{"instance", "interface", "vrid"}, labels...)...)
	}

	c.state = inst("vipd_vrrp_state",
		"VRRP state of the instance: 1 for the current state, 0 for the others.", "state")
	c.transitions = inst("vipd_vrrp_transitions_total",
		"State changes of the instance since vipd started, by the state left and the state entered.", "from", "to")
	c.priority = inst("vipd_vrrp_priority",
		"Priority of the instance as configured (255 = address owner).")
	c.effPriority = inst("vipd_vrrp_effective_priority",
		"Priority the instance runs with now; differs from vipd_vrrp_priority only while changed at run time.")
	c.maintenance = inst("vipd_vrrp_maintenance",
		"1 while the instance is in maintenance (resigned, held in backup by 'vipd maintenance'), else 0.")
	c.trackerFailing = inst("vipd_track_failing",
		"1 while a tracker's weight is in force (interface down, script failing, weight-0 file non-zero), else 0.", "kind", "tracker")
	c.advertsSent = inst("vipd_vrrp_adverts_sent_total",
		"VRRP advertisements sent by the instance, priority-0 resignations included.")
	c.advertsReceived = inst("vipd_vrrp_adverts_received_total",
		"Valid VRRP advertisements received for the instance's VRID and acted on.")
	c.advertsDropped = inst("vipd_vrrp_adverts_dropped_total",
		"Received VRRP datagrams refused, by reason. Datagrams that could not be tied to an instance "+
			"(unknown VRID, too short to tell) are counted per interface with empty instance and vrid.", "reason")
	c.prioZeroSent = inst("vipd_vrrp_priority_zero_sent_total",
		"Priority-0 advertisements sent: the instance resigned as master (shutdown or removal).")
	c.prioZeroReceived = inst("vipd_vrrp_priority_zero_received_total",
		"Priority-0 advertisements received: the master resigned and a backup should take over at once.")
	c.lastTransition = inst("vipd_vrrp_last_transition_timestamp_seconds",
		"Unix time of the instance's last state change; 0 if it has not changed state yet.")
	c.vipPresent = inst("vipd_vip_present",
		"1 if the virtual address is on the instance's interface now, 0 if not (never added, removed, or its add failing).", "vip")
	c.vipAddFailures = inst("vipd_vip_add_failures_total",
		"Adds of the virtual address to the interface that failed (each is retried with back-off while master).", "vip")
	c.vipInfo = inst("vipd_vip_info",
		"Documentation of a virtual address from the configuration; always 1.", "vip", "description", "owner")
	c.vipRestored = inst("vipd_vip_restored_total",
		"Virtual addresses put back on the interface while master after something else removed them.")
	c.garpSent = inst("vipd_garp_sent_total",
		"Gratuitous ARP announcements sent for the instance's virtual addresses.")
	c.addrMismatch = inst("vipd_vrrp_address_list_mismatch_total",
		"Advertisements received whose address list differs from the instance's configured VIPs (peer configs disagree).")
	c.masterAddress = inst("vipd_vrrp_master_address",
		"The current master's primary address as this node sees it (its own when master); always 1, absent while unknown.", "address")
	c.advertInterval = inst("vipd_vrrp_advert_interval_seconds",
		"Advertisement interval of the instance as configured.")
	c.masterAdvert = inst("vipd_vrrp_master_advert_interval_seconds",
		"Advertisement interval of the current master: learned from its adverts (v3), else the configured one.")
	c.checksumMode = inst("vipd_vrrp_checksum_mode_received_total",
		"Valid advertisements received, by the checksum form that matched: pseudo-header (RFC 5798 as most implement it) "+
			"or message-only (RFC 9568, and always for v2).", "mode")
	c.reloadOK = node("vipd_config_last_reload_successful",
		"1 if the last configuration load (start-up or reload) succeeded, 0 if it failed and the previous config is still running.")
	c.reloadTime = node("vipd_config_last_reload_timestamp_seconds",
		"Unix time of the last configuration load attempt (start-up or reload).")
	c.reloadFailures = node("vipd_config_reload_failures_total",
		"Configuration reloads that failed (the running config was kept) since vipd started.")
	c.starts = node("vipd_start_time_seconds",
		"Unix time vipd started.")
	c.build = node("vipd_build_info",
		"Version of the running vipd; always 1.", "version", "commit", "goversion")
	return c
}

// collect adds every vipd_ series to e from one fresh snapshot.
func (c *vrrpCollector) collect(e *exposition) error {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	st, err := c.status(ctx)
	if err != nil {
		return fmt.Errorf("vipd status snapshot: %w", err)
	}
	gauge := func(d *desc, v float64, labels ...string) { e.add(d, gaugeKind, v, labels...) }
	counter := func(d *desc, v uint64, labels ...string) { e.add(d, counterKind, float64(v), labels...) }

	c.collectNode(st, gauge, counter)
	for _, in := range st.Instances {
		c.collectInstance(in, gauge, counter)
	}
	for _, ifc := range st.Interfaces {
		for _, r := range vrrp.AllDropReasons() {
			counter(c.advertsDropped, ifc.Dropped[r], "", ifc.Name, "", r.String())
		}
	}
	return nil
}

type (
	gaugeFunc   func(d *desc, v float64, labels ...string)
	counterFunc func(d *desc, v uint64, labels ...string)
)

func (c *vrrpCollector) collectNode(st vrrp.Status, gauge gaugeFunc, counter counterFunc) {
	gauge(c.reloadOK, boolValue(st.ReloadOK))
	gauge(c.reloadTime, unixSeconds(st.ReloadTime))
	counter(c.reloadFailures, st.ReloadErrors)
	gauge(c.starts, unixSeconds(st.Started))
	gauge(c.build, 1, c.bi.Version, c.bi.Commit, runtime.Version())
}

func (c *vrrpCollector) collectInstance(in vrrp.InstanceStatus, gauge gaugeFunc, counter counterFunc) {
	id := []string{in.Name, in.Interface, strconv.Itoa(int(in.VRID))}
	with := func(extra ...string) []string {
		return append(append(make([]string, 0, len(id)+len(extra)), id...), extra...)
	}
	cnt := in.Counters

	states := vrrp.AllStates()
	for _, s := range states {
		gauge(c.state, boolValue(in.State == s), with(s.String())...)
	}
	// Every pair of distinct states gets a series from the start, so that
	// increase() over the first failover sees it (a series born at 1 shows
	// no increase).
	for _, from := range states {
		for _, to := range states {
			if from != to {
				counter(c.transitions, cnt.Transitions[[2]vrrp.State{from, to}], with(from.String(), to.String())...)
			}
		}
	}
	for k, v := range cnt.Transitions {
		if k[0] == k[1] && slices.Contains(states, k[0]) {
			counter(c.transitions, v, with(k[0].String(), k[1].String())...)
		}
	}

	gauge(c.priority, float64(in.Priority), id...)
	gauge(c.effPriority, float64(in.EffectivePriority), id...)
	gauge(c.maintenance, b2f(in.Maintenance), id...)
	for _, tr := range in.Trackers {
		gauge(c.trackerFailing, b2f(tr.Failing), append(slices.Clone(id), tr.Kind, tr.Name)...)
	}
	counter(c.advertsSent, cnt.AdvertsSent, id...)
	counter(c.advertsReceived, cnt.AdvertsReceived, id...)
	for _, r := range vrrp.AllDropReasons() {
		counter(c.advertsDropped, cnt.Dropped[r], with(r.String())...)
	}
	counter(c.prioZeroSent, cnt.PriorityZeroSent, id...)
	counter(c.prioZeroReceived, cnt.PriorityZeroReceived, id...)
	gauge(c.lastTransition, unixSeconds(in.LastTransition), id...)
	for _, v := range in.VIPs {
		addr := v.Address.Addr().String()
		gauge(c.vipPresent, boolValue(v.Present), with(addr)...)
		gauge(c.vipInfo, 1, with(addr, v.Description, v.Owner)...)
		counter(c.vipAddFailures, v.AddFailures, with(addr)...)
	}
	counter(c.vipRestored, cnt.VIPsRestored, id...)
	counter(c.garpSent, cnt.GARPSent, id...)
	counter(c.addrMismatch, cnt.AddressListMismatch, id...)
	if in.MasterAddr.IsValid() && !in.MasterAddr.IsUnspecified() {
		gauge(c.masterAddress, 1, with(in.MasterAddr.String())...)
	}
	gauge(c.advertInterval, in.AdvertInterval.Seconds(), id...)
	gauge(c.masterAdvert, in.MasterAdvertInterval.Seconds(), id...)
	for m, n := range cnt.ChecksumSeen {
		counter(c.checksumMode, n, with(vrrp.ChecksumMode(m).String())...)
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// unixSeconds is t as Unix time, and 0 for the zero time (never happened).
func unixSeconds(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
