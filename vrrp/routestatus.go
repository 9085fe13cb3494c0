package vrrp

import (
	"fmt"
	"net/netip"
)

// RouteStatus is one route vipd installs and whether it is there now, as
// the loop knows it from its adds and removals and the route events.
type RouteStatus struct {
	To        netip.Prefix
	Via       netip.Addr // invalid: none
	Interface string
	Source    netip.Addr // invalid: none
	Table     uint32     // 0: main
	Metric    uint32
	Scope     string
	Type      string
	Present   bool
	Waiting   bool   // its source is a VIP that is not present yet
	Error     string // the last add's error, "" once an add succeeded
	Failures  uint64 // adds that failed since vipd started
}

// RuleStatus is one rule vipd installs and whether it is there now.
type RuleStatus struct {
	From, To netip.Prefix // invalid: all
	Table    uint32
	Priority uint32 // 0: the kernel's choice
	IIF, OIF string
	FwMark   string // "mark/mask", "" for none
	Present  bool
	Error    string
	Failures uint64
}

// routeStatus lists set's routes and rules.
func routeStatus(set *routeSet) ([]RouteStatus, []RuleStatus) {
	var (
		routes []RouteStatus
		rules  []RuleStatus
	)
	for _, x := range set.routes {
		c := x.cfg
		routes = append(routes, RouteStatus{To: c.To, Via: c.Via, Interface: c.Interface, Source: c.Source, Table: c.Table,
			Metric: c.Metric, Scope: c.Scope.String(), Type: c.Type.String(), Present: x.present, Waiting: x.waiting,
			Error: x.err, Failures: x.failures})
	}
	for _, x := range set.rules {
		c := x.cfg
		rs := RuleStatus{From: c.From, To: c.To, Table: c.Table, Priority: c.Priority, IIF: c.IIF, OIF: c.OIF,
			Present: x.present, Error: x.err, Failures: x.failures}
		if c.HasMark {
			rs.FwMark = fmt.Sprintf("%#x/%#x", c.FwMark, c.FwMask)
		}
		rules = append(rules, rs)
	}
	return routes, rules
}
