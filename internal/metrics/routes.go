package metrics

import (
	"fmt"
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vipd/vipd/vrrp"
)

// routeDescs are the families of routes and rules: an instance's carry its
// id labels; the static ones carry empty instance, interface and vrid.
type routeDescs struct {
	routePresent, rulePresent, routeRestored, ruleRestored *prometheus.Desc
}

func newRouteDescs(inst func(name, help string, labels ...string) *prometheus.Desc) routeDescs {
	return routeDescs{
		routePresent: inst("vipd_route_present",
			"1 if the route is installed now, 0 if not (the instance is not master, the route was removed, its add is failing, or its source VIP is not present). Static routes have an empty instance.", "route"),
		rulePresent: inst("vipd_rule_present",
			"1 if the routing rule is installed now, 0 if not (the instance is not master, the rule was removed, or its add is failing). Static rules have an empty instance.", "rule"),
		routeRestored: inst("vipd_route_restored_total",
			"Routes put back after something else removed them (static ones on the series with an empty instance)."),
		ruleRestored: inst("vipd_rule_restored_total",
			"Routing rules put back after something else removed them (static ones on the series with an empty instance)."),
	}
}

func (d routeDescs) all() []*prometheus.Desc {
	return []*prometheus.Desc{d.routePresent, d.rulePresent, d.routeRestored, d.ruleRestored}
}

// routeLabel names a route in the route label: "to [via G] [dev D] table T metric M".
func routeLabel(r vrrp.RouteStatus) string {
	s := r.To.String()
	if r.Via.IsValid() {
		s += " via " + r.Via.String()
	}
	if r.Interface != "" {
		s += " dev " + r.Interface
	}
	t := r.Table
	if t == 0 {
		t = 254
	}
	return s + fmt.Sprintf(" table %d metric %d", t, r.Metric)
}

// ruleLabel names a rule in the rule label, as ip rule shows it.
func ruleLabel(r vrrp.RuleStatus) string {
	pfx := func(p netip.Prefix) string {
		if !p.IsValid() {
			return "all"
		}
		return p.String()
	}
	s := "from " + pfx(r.From)
	if r.To.IsValid() {
		s += " to " + r.To.String()
	}
	if r.IIF != "" {
		s += " iif " + r.IIF
	}
	if r.OIF != "" {
		s += " oif " + r.OIF
	}
	if r.FwMark != "" {
		s += " fwmark " + r.FwMark
	}
	if r.Priority != 0 {
		s += fmt.Sprintf(" priority %d", r.Priority)
	}
	return s + fmt.Sprintf(" lookup %d", r.Table)
}

// collectRoutes sends the series of one owner's routes and rules; id are
// its id labels.
func (d routeDescs) collect(e emitter, id []string, routes []vrrp.RouteStatus, rules []vrrp.RuleStatus, routesRestored, rulesRestored uint64) {
	with := func(extra ...string) []string {
		return append(append(make([]string, 0, len(id)+len(extra)), id...), extra...)
	}
	for _, r := range routes {
		e.gauge(d.routePresent, boolValue(r.Present), with(routeLabel(r))...)
	}
	for _, r := range rules {
		e.gauge(d.rulePresent, boolValue(r.Present), with(ruleLabel(r))...)
	}
	e.counter(d.routeRestored, routesRestored, with()...)
	e.counter(d.ruleRestored, rulesRestored, with()...)
}
