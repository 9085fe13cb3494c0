package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vipd/vipd/vrrp"
)

// upstreamDescs makes the upstream check's families; inst makes a family
// with the per-instance labels first.
func (c *Collector) upstreamDescs(inst func(name, help string, labels ...string) *prometheus.Desc) {
	c.upstreamState = inst("vipd_upstream_state",
		"State of the upstream check of a master, per upstream: 1 for the current state "+
			"(checking: no result yet; moved: the upstream sends the VIPs' traffic here; not-moved: it did not at the last attempt), 0 for the others. "+
			"Absent while the instance is not master or has no upstream.", "upstream", "state")
	c.upstreamChecks = inst("vipd_upstream_checks_total",
		"Attempts of the upstream check (targeted ARP requests, then an ICMP echo from each VIP) since vipd started, "+
			"by upstream and result: moved, not_moved (an echo unanswered), error (could not be carried out).", "upstream", "result")
}

func (c *Collector) collectUpstreams(e emitter, in vrrp.InstanceStatus) {
	id := []string{in.Name, in.Interface, strconv.Itoa(int(in.VRID))}
	with := func(extra ...string) []string {
		return append(append(make([]string, 0, len(id)+len(extra)), id...), extra...)
	}
	for _, u := range in.Upstreams {
		if !u.Address.IsValid() {
			continue // the default gateway, not looked up yet
		}
		for _, s := range vrrp.AllUpstreamStates() {
			e.gauge(c.upstreamState, boolValue(u.State == s), with(u.Address.String(), s.String())...)
		}
	}
	for _, n := range in.UpstreamCounts {
		a := n.Upstream.String()
		e.counter(c.upstreamChecks, n.Moved, with(a, "moved")...)
		e.counter(c.upstreamChecks, n.NotMoved, with(a, "not_moved")...)
		e.counter(c.upstreamChecks, n.Errors, with(a, "error")...)
	}
}
