package vrrp

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	"github.com/vipd/vipd/vip"
)

// The simulated host's routes and rules, as the kernel keeps them: a route
// per key (table, destination, metric), replaced by an add under the same
// key; a route whose preferred source is not an address of the host is
// refused; removing an address removes, without an event, the routes that
// had it as their source; a deletion is an event (routeEvents) that the
// simulation hands to the Node as WatchRoutes would.

func (h *simNode) hasAddr(a netip.Addr) bool {
	for _, as := range h.addrs {
		if slices.ContainsFunc(as, func(x vip.Addr) bool { return x.Prefix.Addr() == a }) {
			return true
		}
	}
	return false
}

func (h *simNode) AddRoute(r vip.Route) error {
	if r.Src.IsValid() && !h.hasAddr(r.Src) {
		return fmt.Errorf("vip: add route %s: invalid prefsrc %s", r, r.Src)
	}
	if i := slices.IndexFunc(h.routes, r.SameKey); i >= 0 {
		if h.routes[i] == r {
			return nil
		}
		h.routes[i] = r
		h.ops = append(h.ops, "route~ "+r.String())
		return nil
	}
	h.routes = append(h.routes, r)
	h.ops = append(h.ops, "route+ "+r.String())
	return nil
}

func (h *simNode) RemoveRoute(r vip.Route) error {
	if i := slices.IndexFunc(h.routes, r.SameKey); i >= 0 {
		h.routes = slices.Delete(h.routes, i, i+1)
		h.ops = append(h.ops, "route- "+r.String())
		h.routeEvents++
	}
	return nil
}

func (h *simNode) AddRule(r vip.Rule) error {
	if slices.ContainsFunc(h.rules, r.Matches) {
		return nil
	}
	if r.Priority == 0 {
		r.Priority = 32000 // the kernel picks one
	}
	h.rules = append(h.rules, r)
	h.ops = append(h.ops, "rule+ "+r.String())
	return nil
}

func (h *simNode) RemoveRule(r vip.Rule) error {
	if i := slices.IndexFunc(h.rules, r.Matches); i >= 0 {
		h.rules = slices.Delete(h.rules, i, i+1)
		h.ops = append(h.ops, "rule- "+r.String())
		h.routeEvents++
	}
	return nil
}

func (h *simNode) ListRoutes() ([]vip.Route, error) { return slices.Clone(h.routes), nil }
func (h *simNode) ListRules() ([]vip.Rule, error)   { return slices.Clone(h.rules), nil }

func (h *simNode) WatchRoutes(ctx context.Context, _ chan<- struct{}) { <-ctx.Done() }

// flushRoutesFrom removes the routes whose source was a, as the kernel
// does when the address goes: no event.
func (h *simNode) flushRoutesFrom(a netip.Addr) {
	h.routes = slices.DeleteFunc(h.routes, func(r vip.Route) bool { return r.Src == a })
}

// delRouteBehindBack and delRuleBehindBack remove a route (by
// destination and table) or a rule (by table) as an administrator would.
func (h *simNode) delRouteBehindBack(dst string, table int) {
	p := netip.MustParsePrefix(dst)
	h.routes = slices.DeleteFunc(h.routes, func(r vip.Route) bool { return r.Dst == p && r.Table == table })
	h.routeEvents++
}

func (h *simNode) delRuleBehindBack(table int) {
	h.rules = slices.DeleteFunc(h.rules, func(r vip.Rule) bool { return r.Table == table })
	h.routeEvents++
}

// hasRoute and hasRule report whether the host holds a route to dst in
// table, or a rule that looks table up.
func (h *simNode) hasRoute(dst string, table int) bool {
	p := netip.MustParsePrefix(dst)
	return slices.ContainsFunc(h.routes, func(r vip.Route) bool { return r.Dst == p && r.Table == table })
}

func (h *simNode) hasRule(table int) bool {
	return slices.ContainsFunc(h.rules, func(r vip.Rule) bool { return r.Table == table })
}
