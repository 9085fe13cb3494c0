package metrics

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vipd/vipd/vrrp"
)

// StatusFunc returns a fresh snapshot of the running node.
type StatusFunc func(ctx context.Context) (vrrp.Status, error)

// BuildInfo is what vipd_build_info reports besides the Go version.
type BuildInfo struct{ Version, Commit string }

// Collector builds every vipd_ series at scrape time from one status
// snapshot, so that a scrape sees one consistent moment of the node and
// there is no second copy of the counters to keep in step.
type Collector struct {
	status  StatusFunc
	bi      BuildInfo
	timeout time.Duration

	state, transitions, priority, effPriority                  *prometheus.Desc
	maintenance, trackerFailing, trackProcesses                *prometheus.Desc
	advertsSent, advertsReceived, advertsDropped               *prometheus.Desc
	prioZeroSent, prioZeroReceived, lastTransition             *prometheus.Desc
	vipPresent, vipInfo, vipRestored, garpSent                 *prometheus.Desc
	vipAddFailures                                             *prometheus.Desc
	vipConflict                                                *prometheus.Desc
	addrMismatch, masterAddress, advertInterval, masterAdvert  *prometheus.Desc
	checksumMode, reloadOK, reloadTime, reloadFailures, starts *prometheus.Desc
	build                                                      *prometheus.Desc
	routes                                                     routeDescs

	// snapshot names a failed scrape's cause; it is never a series.
	snapshot *prometheus.Desc

	// The upstream check (upstream.go).
	upstreamState, upstreamChecks *prometheus.Desc
}

// The labels of every per-instance series, in this order.
var instanceLabels = []string{"instance", "interface", "vrid"}

// NewCollector returns a Collector that asks status for a snapshot at
// every scrape and gives it timeout to answer.
func NewCollector(status StatusFunc, bi BuildInfo, timeout time.Duration) *Collector {
	c := &Collector{status: status, bi: bi, timeout: timeout}
	node := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	inst := func(name, help string, labels ...string) *prometheus.Desc {
		return node(name, help, append(slices.Clone(instanceLabels), labels...)...)
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
		"1 while a tracker's weight is in force (interface down, script failing, process tracker down, weight-0 file non-zero), else 0.", "kind", "tracker")
	c.trackProcesses = inst("vipd_track_processes",
		"Processes that match a process tracker, at its last scan of /proc.", "tracker")
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
	c.vipConflict = inst("vipd_vip_conflict",
		"1 for each MAC, neither this node's nor the master's, heard claiming the virtual address (ARP); no series when none.", "vip", "mac")
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
	c.routes = newRouteDescs(inst)
	c.snapshot = node("vipd_status_snapshot",
		"The node's status snapshot that every vipd_ series is built from.")
	c.upstreamDescs(inst)
	return c
}

// Describe sends the descriptors of every vipd_ family.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.state, c.transitions, c.priority, c.effPriority,
		c.maintenance, c.trackerFailing, c.trackProcesses,
		c.advertsSent, c.advertsReceived, c.advertsDropped,
		c.prioZeroSent, c.prioZeroReceived, c.lastTransition,
		c.vipPresent, c.vipInfo, c.vipRestored, c.garpSent,
		c.vipAddFailures, c.vipConflict,
		c.addrMismatch, c.masterAddress, c.advertInterval, c.masterAdvert,
		c.checksumMode, c.reloadOK, c.reloadTime, c.reloadFailures, c.starts,
		c.build,
		c.upstreamState, c.upstreamChecks,
	} {
		ch <- d
	}
	for _, d := range c.routes.all() {
		ch <- d
	}
}

// Collect sends every vipd_ series from one fresh snapshot. A snapshot
// that cannot be had within the timeout is sent as an invalid metric, which
// fails the scrape with the error rather than leaving the series quietly
// stale.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	st, err := c.status(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.snapshot, fmt.Errorf("vipd status snapshot: %w", err))
		return
	}
	e := emitter{ch}
	c.collectNode(e, st)
	for _, in := range st.Instances {
		c.collectInstance(e, in)
		c.collectUpstreams(e, in)
		if len(in.Routes)+len(in.Rules) > 0 {
			c.routes.collect(e, []string{in.Name, in.Interface, strconv.Itoa(int(in.VRID))}, in.Routes, in.Rules, in.RoutesRestored, in.RulesRestored)
		}
	}
	if len(st.StaticRoutes)+len(st.StaticRules) > 0 {
		c.routes.collect(e, []string{"", "", ""}, st.StaticRoutes, st.StaticRules, st.StaticRoutesRestored, st.StaticRulesRestored)
	}
	for _, ifc := range st.Interfaces {
		for _, r := range vrrp.AllDropReasons() {
			e.counter(c.advertsDropped, ifc.Dropped[r], "", ifc.Name, "", r.String())
		}
	}
}

// emitter sends const metrics to a scrape.
type emitter struct{ ch chan<- prometheus.Metric }

func (e emitter) gauge(d *prometheus.Desc, v float64, labels ...string) {
	e.ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, validUTF8(labels)...)
}

func (e emitter) counter(d *prometheus.Desc, v uint64, labels ...string) {
	e.ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), validUTF8(labels)...)
}

// validUTF8 replaces invalid UTF-8 in label values, which the registry
// refuses (a description comes from the configuration), in a copy.
func validUTF8(labels []string) []string {
	if !slices.ContainsFunc(labels, func(l string) bool { return !utf8.ValidString(l) }) {
		return labels
	}
	out := make([]string, len(labels))
	for i, l := range labels {
		out[i] = strings.ToValidUTF8(l, "\uFFFD")
	}
	return out
}

func (c *Collector) collectNode(e emitter, st vrrp.Status) {
	e.gauge(c.reloadOK, boolValue(st.ReloadOK))
	e.gauge(c.reloadTime, unixSeconds(st.ReloadTime))
	e.counter(c.reloadFailures, st.ReloadErrors)
	e.gauge(c.starts, unixSeconds(st.Started))
	e.gauge(c.build, 1, c.bi.Version, c.bi.Commit, runtime.Version())
}

func (c *Collector) collectInstance(e emitter, in vrrp.InstanceStatus) {
	id := []string{in.Name, in.Interface, strconv.Itoa(int(in.VRID))}
	with := func(extra ...string) []string {
		return append(append(make([]string, 0, len(id)+len(extra)), id...), extra...)
	}
	cnt := in.Counters

	states := vrrp.AllStates()
	for _, s := range states {
		e.gauge(c.state, boolValue(in.State == s), with(s.String())...)
	}
	// Every pair of distinct states gets a series from the start, so that
	// increase() over the first failover sees it (a series born at 1 shows
	// no increase).
	for _, from := range states {
		for _, to := range states {
			if from != to {
				e.counter(c.transitions, cnt.Transitions[[2]vrrp.State{from, to}], with(from.String(), to.String())...)
			}
		}
	}
	for k, v := range cnt.Transitions {
		if k[0] == k[1] && slices.Contains(states, k[0]) {
			e.counter(c.transitions, v, with(k[0].String(), k[1].String())...)
		}
	}

	e.gauge(c.priority, float64(in.Priority), with()...)
	e.gauge(c.effPriority, float64(in.EffectivePriority), with()...)
	e.gauge(c.maintenance, boolValue(in.Maintenance), with()...)
	for _, tr := range in.Trackers {
		e.gauge(c.trackerFailing, boolValue(tr.Failing), with(tr.Kind, tr.Name)...)
		if tr.Kind == "process" {
			e.gauge(c.trackProcesses, float64(tr.Value), with(tr.Name)...)
		}
	}
	e.counter(c.advertsSent, cnt.AdvertsSent, with()...)
	e.counter(c.advertsReceived, cnt.AdvertsReceived, with()...)
	for _, r := range vrrp.AllDropReasons() {
		e.counter(c.advertsDropped, cnt.Dropped[r], with(r.String())...)
	}
	e.counter(c.prioZeroSent, cnt.PriorityZeroSent, with()...)
	e.counter(c.prioZeroReceived, cnt.PriorityZeroReceived, with()...)
	e.gauge(c.lastTransition, unixSeconds(in.LastTransition), with()...)
	for _, v := range in.VIPs {
		addr := v.Address.Addr().String()
		e.gauge(c.vipPresent, boolValue(v.Present), with(addr)...)
		e.gauge(c.vipInfo, 1, with(addr, v.Description, v.Owner)...)
		e.counter(c.vipAddFailures, v.AddFailures, with(addr)...)
		for _, cf := range v.Conflicts {
			e.gauge(c.vipConflict, 1, with(addr, cf.MAC.String())...)
		}
	}
	e.counter(c.vipRestored, cnt.VIPsRestored, with()...)
	e.counter(c.garpSent, cnt.GARPSent, with()...)
	e.counter(c.addrMismatch, cnt.AddressListMismatch, with()...)
	if in.MasterAddr.IsValid() && !in.MasterAddr.IsUnspecified() {
		e.gauge(c.masterAddress, 1, with(in.MasterAddr.String())...)
	}
	e.gauge(c.advertInterval, in.AdvertInterval.Seconds(), with()...)
	e.gauge(c.masterAdvert, in.MasterAdvertInterval.Seconds(), with()...)
	for m, n := range cnt.ChecksumSeen {
		e.counter(c.checksumMode, n, with(vrrp.ChecksumMode(m).String())...)
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
