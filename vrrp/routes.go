package vrrp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/vipd/vipd/config"
	"github.com/vipd/vipd/vip"
	"golang.org/x/sys/unix"
)

// Routes and rules follow the VIPs. An instance's routes and rules
// (config.Instance.Routes, .Rules) are part of what it wants while it wants
// its VIPs: the reconciler adds them after the VIPs (routes, then rules)
// and before the announcement, and removes them before the VIPs (rules,
// then routes). A route whose source is a VIP is added only once that VIP
// is present. The static ones (config.Config.StaticRoutes, .StaticRules)
// are wanted from start to stop. Only the reconciler (reconcile.go and the
// functions below) changes them, through routeDataplane.

// routeDataplane is the part of the Dataplane that installs routes and
// rules. Each route and rule carries vipd's mark (vip.Proto): only marked
// ones are replaced or removed.
type routeDataplane interface {
	// AddRoute installs r; a route of vipd's under the same key (table,
	// destination, metric) is replaced, one without the mark refused.
	AddRoute(r vip.Route) error
	// RemoveRoute removes r if it is vipd's; an absent one is no error.
	RemoveRoute(r vip.Route) error
	// AddRule installs r unless it is there already as vipd's.
	AddRule(r vip.Rule) error
	// RemoveRule removes r if it is vipd's; an absent one is no error.
	RemoveRule(r vip.Rule) error
	// ListRoutes and ListRules list the routes and rules with vipd's mark.
	ListRoutes() ([]vip.Route, error)
	ListRules() ([]vip.Rule, error)
	// WatchRoutes signals on out when a route or rule with vipd's mark is
	// deleted, or deletions may have been missed. It never blocks on out
	// (one value waiting stands for any number of changes) and returns
	// when ctx is done and the goroutines it started have finished.
	WatchRoutes(ctx context.Context, out chan<- struct{})
}

// routeState is one route to install and what vipd knows of it.
type routeState struct {
	cfg      config.Route
	r        vip.Route // with the interface resolved to its index
	present  bool
	waiting  bool   // its source is a VIP that is not present: not added until it is
	err      string // the last add's error; "" once an add succeeded
	failures uint64
}

// ruleState is one rule to install and what vipd knows of it.
type ruleState struct {
	cfg      config.Rule
	r        vip.Rule
	present  bool
	err      string
	failures uint64
}

// routeSet is what one owner (an instance, or the static lists) installs.
type routeSet struct {
	routes []routeState
	rules  []ruleState
	// orphans: taken out of the configuration by a reload while installed.
	orphanRoutes []vip.Route
	orphanRules  []vip.Rule
	// Repairs: routes and rules put back after something removed them.
	routesRestored, rulesRestored uint64
	// The static set's own add retry (an instance's uses the instance's).
	retryAt   time.Time
	retryWait time.Duration
}

// routeTypes maps config route types to the kernel's.
var routeTypes = map[config.RouteType]int{
	config.RouteUnicast: unix.RTN_UNICAST, config.RouteBlackhole: unix.RTN_BLACKHOLE,
	config.RouteUnreachable: unix.RTN_UNREACHABLE, config.RouteProhibit: unix.RTN_PROHIBIT,
}

// resolveRoutes makes the route set of a list of routes and rules: every
// interface they name must exist (its index goes into the route; a rule's
// iif and oif go by name, but a name that does not exist is as much a
// mistake). who names the owner in errors.
func (n *Node) resolveRoutes(file, who string, routes []config.Route, rules []config.Rule) (routeSet, []error) {
	var (
		set  routeSet
		errs []error
	)
	for _, c := range routes {
		r := vip.Route{Dst: c.To, Gw: c.Via, Src: c.Source, Table: int(c.Table), Metric: int(c.Metric),
			Scope: uint8(c.Scope), Type: routeTypes[c.Type]}
		if c.Interface != "" {
			li, err := n.dp.LookupLink(c.Interface)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s:%d: route to %s of %s: interface %s: %w", file, c.Line, c.To, who, c.Interface, err))
				continue
			}
			r.LinkIndex = li.Index
		}
		set.routes = append(set.routes, routeState{cfg: c, r: r})
	}
	for _, c := range rules {
		r := vip.Rule{From: c.From, To: c.To, Table: int(c.Table), Priority: int(c.Priority), IIF: c.IIF, OIF: c.OIF,
			Mark: c.FwMark, Mask: c.FwMask, HasMark: c.HasMark}
		bad := false
		for _, name := range []string{c.IIF, c.OIF} {
			if name == "" {
				continue
			}
			if _, err := n.dp.LookupLink(name); err != nil {
				errs = append(errs, fmt.Errorf("%s:%d: rule %s of %s: interface %s: %w", file, c.Line, r, who, name, err))
				bad = true
			}
		}
		if !bad {
			set.rules = append(set.rules, ruleState{cfg: c, r: r})
		}
	}
	return set, errs
}

// resolveAll resolves the static lists and every instance's lists of cfg,
// by instance name ("" for the static ones); all errors at once.
func (n *Node) resolveAll(cfg *config.Config) (map[string]routeSet, error) {
	out := map[string]routeSet{}
	var errs []error
	set, e := n.resolveRoutes(cfg.File, "static_routes/static_rules", cfg.StaticRoutes, cfg.StaticRules)
	out[""], errs = set, append(errs, e...)
	for _, c := range cfg.Instances {
		set, e := n.resolveRoutes(cfg.File, "instance "+c.Name, c.Routes, c.Rules)
		out[c.Name], errs = set, append(errs, e...)
	}
	return out, errors.Join(errs...)
}

// replaceSet gives old's state to the routes and rules of next that are
// unchanged, and, if installed is set (the owner holds them), makes orphans
// of those that next drops: a route whose key (table, destination, metric)
// is gone, a rule that is gone. A route whose key stays but that changed
// is replaced in place when it is added.
func replaceSet(old *routeSet, next routeSet, installed bool) routeSet {
	for i := range next.routes {
		if j := slices.IndexFunc(old.routes, func(o routeState) bool { return o.r == next.routes[i].r }); j >= 0 {
			o := old.routes[j]
			o.cfg = next.routes[i].cfg
			next.routes[i] = o
		}
	}
	for i := range next.rules {
		if j := slices.IndexFunc(old.rules, func(o ruleState) bool { return o.r == next.rules[i].r }); j >= 0 {
			o := old.rules[j]
			o.cfg = next.rules[i].cfg
			next.rules[i] = o
		}
	}
	next.orphanRoutes, next.orphanRules = old.orphanRoutes, old.orphanRules
	if installed {
		for _, o := range old.routes {
			if !slices.ContainsFunc(next.routes, func(x routeState) bool { return x.r.SameKey(o.r) }) {
				next.orphanRoutes = append(next.orphanRoutes, o.r)
			}
		}
		for _, o := range old.rules {
			if !slices.ContainsFunc(next.rules, func(x ruleState) bool { return x.r == o.r }) {
				next.orphanRules = append(next.orphanRules, o.r)
			}
		}
	}
	next.routesRestored, next.rulesRestored = old.routesRestored, old.rulesRestored
	next.retryAt, next.retryWait = old.retryAt, old.retryWait
	return next
}

// vipAbsent reports whether a is the VIP of an instance and not present:
// a route with a as its source waits for it.
func (n *Node) vipAbsent(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	isVIP := false
	for _, in := range n.insts {
		for i := range in.vs {
			if in.vs[i].prefix.Addr() == a {
				if in.vs[i].present {
					return false
				}
				isVIP = true
			}
		}
	}
	return isVIP
}

// removeRoutes takes set's rules, then its routes, off the host: all of
// them (all) or the orphans only.
func (n *Node) removeRoutes(set *routeSet, who string, all bool) {
	for _, r := range set.orphanRules {
		if err := n.dp.RemoveRule(r); err != nil {
			n.log.Error("removing rule failed", "owner", who, "err", err)
		}
	}
	set.orphanRules = nil
	if all {
		for i := range set.rules {
			x := &set.rules[i]
			if err := n.dp.RemoveRule(x.r); err != nil {
				n.log.Error("removing rule failed", "owner", who, "err", err)
				continue
			}
			x.present = false
		}
	}
	for _, r := range set.orphanRoutes {
		if err := n.dp.RemoveRoute(r); err != nil {
			n.log.Error("removing route failed", "owner", who, "err", err)
		}
	}
	set.orphanRoutes = nil
	if all {
		for i := range set.routes {
			x := &set.routes[i]
			x.waiting = false
			if err := n.dp.RemoveRoute(x.r); err != nil {
				n.log.Error("removing route failed", "owner", who, "err", err)
				continue
			}
			x.present = false
		}
	}
}

// installRoutes adds set's routes, then its rules. In reconcileTransition
// mode every one is added (idempotent); otherwise only those vipd does not
// know to be present, and, but in reconcileRetry mode, not those whose
// add failed (the retry backs off). A repair counts what it puts back. A
// route whose source is an absent VIP waits. A failed add schedules a retry
// at *retryAt.
func (n *Node) installRoutes(set *routeSet, who string, mode reconcileMode, retryAt *time.Time, retryWait *time.Duration, now time.Time) {
	fail := func(what string, errp *string, failures *uint64, err error) {
		*failures++
		if msg := err.Error(); msg != *errp {
			*errp = msg
			n.log.Error("adding "+what+" failed; retrying", "owner", who, "err", err)
		}
		if retryAt.IsZero() {
			if *retryWait == 0 {
				*retryWait = vipRetryMin
			}
			*retryAt = now.Add(*retryWait)
		}
	}
	skip := func(present bool, errMsg string) bool {
		return mode != reconcileTransition && (present || errMsg != "" && mode != reconcileRetry)
	}
	for i := range set.routes {
		x := &set.routes[i]
		if n.vipAbsent(x.r.Src) {
			x.waiting, x.present = true, false
			continue
		}
		if skip(x.present, x.err) {
			continue
		}
		restoring := mode == reconcileRepair && !x.waiting && x.err == ""
		if restoring {
			n.log.Warn("route was removed behind vipd's back; restoring it", "owner", who, "route", x.r)
		}
		x.waiting = false
		if err := n.dp.AddRoute(x.r); err != nil {
			x.present = false
			fail("route "+x.r.String(), &x.err, &x.failures, err)
			continue
		}
		if x.err != "" {
			n.log.Info("route added after failed attempts", "owner", who, "route", x.r, "add_failures", x.failures)
		}
		x.present, x.err = true, ""
		if restoring {
			set.routesRestored++
		}
	}
	for i := range set.rules {
		x := &set.rules[i]
		if skip(x.present, x.err) {
			continue
		}
		restoring := mode == reconcileRepair && x.err == ""
		if restoring {
			n.log.Warn("rule was removed behind vipd's back; restoring it", "owner", who, "rule", x.r)
		}
		if err := n.dp.AddRule(x.r); err != nil {
			x.present = false
			fail("rule "+x.r.String(), &x.err, &x.failures, err)
			continue
		}
		if x.err != "" {
			n.log.Info("rule added after failed attempts", "owner", who, "rule", x.r, "add_failures", x.failures)
		}
		x.present, x.err = true, ""
		if restoring {
			set.rulesRestored++
		}
	}
}

// hasWaiting reports whether a route of set waits for its source VIP.
func (set *routeSet) hasWaiting() bool {
	return slices.ContainsFunc(set.routes, func(x routeState) bool { return x.waiting })
}

// reconcileStatic brings the static routes and rules in line: wanted from
// start to stop (want), in the modes of reconcile.
func (n *Node) reconcileStatic(want bool, mode reconcileMode, now time.Time) {
	set := &n.static
	n.removeRoutes(set, "static", !want && mode == reconcileTransition)
	if !want {
		set.retryAt, set.retryWait = time.Time{}, 0
		return
	}
	switch mode {
	case reconcileTransition:
		set.retryAt, set.retryWait = time.Time{}, 0
	case reconcileRetry:
		set.retryAt = time.Time{}
		set.retryWait = min(2*set.retryWait, vipRetryMax)
	}
	n.installRoutes(set, "static", mode, &set.retryAt, &set.retryWait, now)
	if mode == reconcileRetry && set.retryAt.IsZero() {
		set.retryWait = 0
	}
	n.noteStaticDeadline()
}

// noteStaticDeadline lowers the loop's next wake-up to the static set's
// retry.
func (n *Node) noteStaticDeadline() {
	if d := n.static.retryAt; !d.IsZero() && (n.next.IsZero() || d.Before(n.next)) {
		n.next = d
	}
}

// afterVIPsChanged adds the routes that waited for a VIP that may be
// present now: the static ones and other instances' whose source it is.
func (n *Node) afterVIPsChanged(now time.Time) {
	if n.staticOn && n.static.hasWaiting() {
		n.reconcileStatic(true, reconcileRepair, now)
	}
	for _, in := range n.insts {
		if in.wantsVIPs() && in.rs.hasWaiting() {
			n.installRoutes(&in.rs, in.cfg.Name, reconcileRepair, &in.retryAt, &in.retryWait, now)
		}
	}
}

// checkRoutes lists vipd's routes and rules, learns which of those it
// installed are still there, and has the reconciler put back what is
// missing: after a deletion event, a lost event, a VIP removed (the kernel
// removes the routes whose source it was without a word), or a link back
// (the kernel removes a link's routes when it goes down).
func (n *Node) checkRoutes(now time.Time) {
	if !n.staticOn && !slices.ContainsFunc(n.insts, func(in *instance) bool {
		return len(in.rs.routes)+len(in.rs.rules) > 0 && in.wantsVIPs()
	}) {
		return
	}
	routes, err := n.dp.ListRoutes()
	if err == nil {
		var rules []vip.Rule
		if rules, err = n.dp.ListRules(); err == nil {
			mark := func(set *routeSet) {
				for i := range set.routes {
					x := &set.routes[i]
					x.present = slices.ContainsFunc(routes, x.r.Matches)
				}
				for i := range set.rules {
					x := &set.rules[i]
					x.present = slices.ContainsFunc(rules, x.r.Matches)
				}
			}
			mark(&n.static)
			for _, in := range n.insts {
				mark(&in.rs)
			}
		}
	}
	if err != nil {
		n.log.Error("checking routes and rules failed", "err", err)
		return
	}
	if n.staticOn {
		n.reconcileStatic(true, reconcileRepair, now)
	}
	for _, in := range n.insts {
		if in.wantsVIPs() {
			n.installRoutes(&in.rs, in.cfg.Name, reconcileRepair, &in.retryAt, &in.retryWait, now)
			n.noteDeadline(in)
		}
	}
}

// removeStaleRoutes removes, at start-up, the routes and rules with vipd's
// mark that a run which did not stop cleanly left, but the static ones
// this run wants (which stay and are known present). Every instance starts
// out of master, so none of its routes is wanted. A failure stops vipd.
func (n *Node) removeStaleRoutes() error {
	routes, err := n.dp.ListRoutes()
	if err != nil {
		return err
	}
	rules, err := n.dp.ListRules()
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range rules {
		if i := slices.IndexFunc(n.static.rules, func(x ruleState) bool { return x.r.Matches(r) }); i >= 0 {
			n.static.rules[i].present = true
			continue
		}
		n.log.Warn("removing stale rule", "rule", r)
		if err := n.dp.RemoveRule(r); err != nil {
			errs = append(errs, err)
		}
	}
	for _, r := range routes {
		if i := slices.IndexFunc(n.static.routes, func(x routeState) bool { return x.r.Matches(r) }); i >= 0 {
			n.static.routes[i].present = true
			continue
		}
		n.log.Warn("removing stale route", "route", r)
		if err := n.dp.RemoveRoute(r); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// onRouteLink follows the links that routes name: when one comes back
// (up with carrier again, or recreated with another index) the routes on
// it are resolved again and what the kernel removed when it went down is
// put back.
func (n *Node) onRouteLink(lc LinkInfo, now time.Time) {
	found, changed := false, false
	fix := func(set *routeSet) {
		for i := range set.routes {
			if x := &set.routes[i]; x.cfg.Interface == lc.Name {
				found = true
				if x.r.LinkIndex != lc.Index {
					x.r.LinkIndex, x.present, changed = lc.Index, false, true
				}
			}
		}
	}
	fix(&n.static)
	for _, in := range n.insts {
		fix(&in.rs)
	}
	if !found {
		return
	}
	if n.routeLinks == nil {
		n.routeLinks = map[string]bool{}
	}
	was, known := n.routeLinks[lc.Name]
	n.routeLinks[lc.Name] = lc.Up
	if lc.Up && (changed || known && !was) {
		n.checkRoutes(now)
	}
}

// routesWithoutLines are copies of routes and rules with no line numbers,
// for comparing configurations.
func routesWithoutLines(rs []config.Route, rls []config.Rule) ([]config.Route, []config.Rule) {
	rs, rls = slices.Clone(rs), slices.Clone(rls)
	for i := range rs {
		rs[i].Line = 0
	}
	for i := range rls {
		rls[i].Line = 0
	}
	return rs, rls
}
