package control

import (
	"net/netip"
	"strconv"

	"github.com/vipd/vipd/vrrp"
)

// Route is one route vipd installs (an instance's while it is master, or
// a static one) and whether it is there now.
type Route struct {
	To        string `json:"to"`
	Via       string `json:"via,omitempty"`
	Interface string `json:"interface,omitempty"`
	Source    string `json:"source,omitempty"`
	Table     string `json:"table"`
	Metric    uint32 `json:"metric"`
	Scope     string `json:"scope"`
	Type      string `json:"type"`
	Present   bool   `json:"present"`
	// Waiting: its source is a VIP that is not present yet.
	Waiting     bool   `json:"waiting,omitempty"`
	AddError    string `json:"add_error,omitempty"`
	AddFailures uint64 `json:"add_failures"`
}

// Rule is one routing policy rule vipd installs and whether it is there.
type Rule struct {
	From        string `json:"from"`
	To          string `json:"to"`
	Table       string `json:"table"`
	Priority    uint32 `json:"priority,omitempty"`
	IIF         string `json:"iif,omitempty"`
	OIF         string `json:"oif,omitempty"`
	FwMark      string `json:"fwmark,omitempty"`
	Present     bool   `json:"present"`
	AddError    string `json:"add_error,omitempty"`
	AddFailures uint64 `json:"add_failures"`
}

// Static is the static routes and rules, installed from start to stop.
type Static struct {
	Routes         []Route `json:"routes"`
	Rules          []Rule  `json:"rules"`
	RoutesRestored uint64  `json:"routes_restored"`
	RulesRestored  uint64  `json:"rules_restored"`
}

func tableName(t uint32) string {
	switch t {
	case 0, 254:
		return "main"
	case 253:
		return "default"
	case 255:
		return "local"
	}
	return strconv.FormatUint(uint64(t), 10)
}

func toRoutes(rs []vrrp.RouteStatus) []Route {
	out := []Route{}
	for _, r := range rs {
		out = append(out, Route{To: r.To.String(), Via: addrString(r.Via), Interface: r.Interface, Source: addrString(r.Source),
			Table: tableName(r.Table), Metric: r.Metric, Scope: r.Scope, Type: r.Type, Present: r.Present, Waiting: r.Waiting,
			AddError: r.Error, AddFailures: r.Failures})
	}
	return out
}

func toRules(rs []vrrp.RuleStatus) []Rule {
	out := []Rule{}
	all := func(p netip.Prefix) string {
		if !p.IsValid() {
			return "all"
		}
		return p.String()
	}
	for _, r := range rs {
		out = append(out, Rule{From: all(r.From), To: all(r.To), Table: tableName(r.Table), Priority: r.Priority,
			IIF: r.IIF, OIF: r.OIF, FwMark: r.FwMark, Present: r.Present, AddError: r.Error, AddFailures: r.Failures})
	}
	return out
}
