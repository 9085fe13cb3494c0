package vrrp

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/vip"
)

// Routes and rules that follow the master, on the simulated segment.

const rtVIP = "198.18.2.100"

// rtExtra is an instance with its VIP on eth1, a default route in table
// 100 through the second uplink's gateway, a route whose source is the
// VIP, and a rule sending the VIP's traffic to table 100.
var rtExtra = []string{
	"vips: [{address: " + rtVIP + ", interface: eth1}]",
	"routes: [{to: default, via: 198.18.2.1, interface: eth1, table: 100}, {to: 198.18.8.0/24, interface: eth1, source: " + rtVIP + ", scope: link}]",
	"rules: [{from: " + rtVIP + "/32, table: 100, priority: 100}]",
}

func rtPair(t *testing.T, extra ...string) (*simNet, *simNode, *simNode) {
	t.Helper()
	return scnPair(t, 150, 100, append(slices.Clone(rtExtra), extra...)...)
}

// opIndex is the position of the first operation with prefix p in h's log
// after from, -1 if none.
func opIndex(h *simNode, from int, p string) int {
	for i := from; i < len(h.ops); i++ {
		if strings.HasPrefix(h.ops[i], p) {
			return i
		}
	}
	return -1
}

func lastOpIndex(h *simNode, from int, p string) int {
	for i := len(h.ops) - 1; i >= from; i-- {
		if strings.HasPrefix(h.ops[i], p) {
			return i
		}
	}
	return -1
}

func TestScenarioRoutesFollowMaster(t *testing.T) {
	s, a, b := rtPair(t)
	a.expect("web", StateMaster)
	if !a.hasRoute("0.0.0.0/0", 100) || !a.hasRoute("198.18.8.0/24", 0) || !a.hasRule(100) {
		t.Fatalf("master's routes %v rules %v", a.routes, a.rules)
	}
	if len(b.routes)+len(b.rules) != 0 {
		t.Fatalf("backup holds routes %v rules %v", b.routes, b.rules)
	}
	// After the VIP, before the announcement: addresses, routes, rules.
	addr, route, lastRoute, rule, ann := opIndex(a, 0, "addr+ "+rtVIP), opIndex(a, 0, "route+ "), lastOpIndex(a, 0, "route+ "), opIndex(a, 0, "rule+ "), opIndex(a, 0, "announce")
	if !(addr >= 0 && addr < route && lastRoute < rule && rule < ann) {
		t.Errorf("order of the takeover: %q", a.ops)
	}

	// A graceful stop: the successor installs them; a removes rules, then
	// routes, then the address.
	from := len(a.ops)
	a.stop()
	s.run(time.Second)
	b.expect("web", StateMaster)
	ruleDel, routeDel, lastRouteDel, addrDel := opIndex(a, from, "rule- "), opIndex(a, from, "route- "), lastOpIndex(a, from, "route- "), opIndex(a, from, "addr- "+rtVIP)
	if !(ruleDel >= 0 && ruleDel < routeDel && lastRouteDel < addrDel) {
		t.Errorf("order of the resignation: %q", a.ops[from:])
	}
	if len(a.routes)+len(a.rules) != 0 {
		t.Errorf("left after the stop: routes %v rules %v", a.routes, a.rules)
	}
	if !b.hasRoute("0.0.0.0/0", 100) || !b.hasRoute("198.18.8.0/24", 0) || !b.hasRule(100) {
		t.Errorf("new master's routes %v rules %v", b.routes, b.rules)
	}
	st := b.n.status().Instances[0]
	if len(st.Routes) != 2 || !st.Routes[0].Present || !st.Routes[1].Present || len(st.Rules) != 1 || !st.Rules[0].Present {
		t.Errorf("status of the new master: routes %+v rules %+v", st.Routes, st.Rules)
	}
}

func TestScenarioRoutesRestored(t *testing.T) {
	s, a, b := rtPair(t)
	a.delRuleBehindBack(100)
	s.run(10 * time.Millisecond)
	if !a.hasRule(100) {
		t.Fatal("the rule deleted behind vipd's back was not restored")
	}
	a.delRouteBehindBack("0.0.0.0/0", 100)
	s.run(10 * time.Millisecond)
	if !a.hasRoute("0.0.0.0/0", 100) {
		t.Fatal("the route deleted behind vipd's back was not restored")
	}
	st := a.n.status().Instances[0]
	if st.RulesRestored != 1 || st.RoutesRestored != 1 {
		t.Errorf("restored: rules %d routes %d, want 1 and 1", st.RulesRestored, st.RoutesRestored)
	}
	if !a.logs.has("rule was removed behind vipd's back") || !a.logs.has("route was removed behind vipd's back") {
		t.Error("repairs not logged")
	}
	// The VIP removed: the kernel takes the route whose source it was
	// with it, silently; both come back.
	a.addrs[3] = slices.DeleteFunc(a.addrs[3], func(x vip.Addr) bool { return x.Prefix.Addr() == netip.MustParseAddr(rtVIP) })
	a.flushRoutesFrom(netip.MustParseAddr(rtVIP))
	a.events = append(a.events, vip.Change{Index: 3, Addr: netip.MustParseAddr(rtVIP)})
	s.run(10 * time.Millisecond)
	if !a.has(rtVIP) || !a.hasRoute("198.18.8.0/24", 0) {
		t.Fatalf("after the VIP was removed: VIP %v, routes %v", a.has(rtVIP), a.routes)
	}
	if st := a.n.status().Instances[0]; st.RoutesRestored != 2 {
		t.Errorf("routes restored %d, want 2", st.RoutesRestored)
	}
	// On the backup nothing is put back: it holds none.
	b.delRuleBehindBack(100)
	s.run(10 * time.Millisecond)
	if len(b.rules) != 0 {
		t.Error("the backup installed a rule")
	}
}

func TestScenarioRouteWaitsForSourceVIP(t *testing.T) {
	s := newSimNet(t)
	a := s.host("a", "10.0.0.1")
	bad := netip.MustParsePrefix(rtVIP + "/32")
	a.failAdd[bad] = errors.New("injected failure")
	a.start(s.config(scnConfig(scnInstance("web", 51, 150, rtExtra...))))
	s.run(time.Second)
	a.expect("web", StateMaster)
	if a.hasRoute("198.18.8.0/24", 0) {
		t.Fatal("the route whose source is an absent VIP was added")
	}
	if !a.hasRoute("0.0.0.0/0", 100) {
		t.Fatal("the route without a source waited too")
	}
	if st := a.n.status().Instances[0].Routes[1]; st.Present || !st.Waiting || st.Error != "" {
		t.Errorf("status of the waiting route: %+v", st)
	}
	from := len(a.ops)
	delete(a.failAdd, bad)
	s.run(6 * time.Second)
	addr, route := opIndex(a, from, "addr+ "+rtVIP), opIndex(a, from, "route+ 198.18.8.0/24")
	if addr < 0 || route < addr {
		t.Fatalf("once the VIP could be added: %q", a.ops[from:])
	}
	if st := a.n.status().Instances[0]; !st.Routes[1].Present || st.RoutesRestored != 0 {
		t.Errorf("status: %+v, restored %d", st.Routes[1], st.RoutesRestored)
	}
}

func TestScenarioRoutesReloadInPlace(t *testing.T) {
	s, a, _ := rtPair(t)
	from := len(a.ops)
	since := s.now
	changed := []string{
		"vips: [{address: " + rtVIP + ", interface: eth1}]",
		"routes: [{to: default, via: 198.18.2.2, interface: eth1, table: 100}, {to: 198.18.9.0/24, via: 198.18.2.1, table: 101}]",
		"rules: [{from: " + rtVIP + "/32, table: 100, priority: 100}, {fwmark: 7, table: 101, priority: 101}]",
	}
	if err := a.n.reload(s.config(scnConfig(scnInstance("web", 51, 150, changed...))), s.now); err != nil {
		t.Fatal(err)
	}
	a.after()
	s.run(time.Second)
	ops := strings.Join(a.ops[from:], "\n")
	for _, want := range []string{"route~ 0.0.0.0/0 via 198.18.2.2", "route- 198.18.8.0/24", "route+ 198.18.9.0/24", "rule+ from all to all fwmark 0x7/0xffffffff priority 101"} {
		if !strings.Contains(ops, want) {
			t.Errorf("reload did not %q:\n%s", want, ops)
		}
	}
	if strings.Contains(ops, "addr") || strings.Contains(ops, "rule- ") || s.announced(a, rtVIP, since) != 0 {
		t.Errorf("reload touched what did not change:\n%s", ops)
	}
	if len(a.routes) != 2 || len(a.rules) != 2 {
		t.Errorf("after the reload: routes %v rules %v", a.routes, a.rules)
	}
}

func TestScenarioStaticRoutes(t *testing.T) {
	s := newSimNet(t)
	a := s.host("a", "10.0.0.1")
	b := s.host("b", "10.0.0.2")
	kept := vip.Route{Dst: netip.MustParsePrefix("198.18.10.0/24"), Gw: netip.MustParseAddr("10.0.0.254"), Table: 0}
	stale := vip.Route{Dst: netip.MustParsePrefix("198.18.11.0/24"), Gw: netip.MustParseAddr("10.0.0.254"), Table: 100}
	a.routes = []vip.Route{kept, stale}
	a.rules = []vip.Rule{{From: netip.MustParsePrefix(rtVIP + "/32"), Table: 100, Priority: 100}}
	static := "static_routes: [{to: 198.18.10.0/24, via: 10.0.0.254}]\nstatic_rules: [{to: 198.18.10.0/24, table: main, priority: 200}]\n"
	a.start(s.config(scnConfig(scnInstance("web", 51, 150, rtExtra...)) + static))
	b.start(s.config(scnConfig(scnInstance("web", 51, 100, rtExtra...)) + static))
	if opIndex(a, 0, "route- 198.18.11.0/24") < 0 || opIndex(a, 0, "rule- from "+rtVIP) < 0 {
		t.Errorf("the stale route and rule were not removed: %q", a.ops)
	}
	if opIndex(a, 0, "route+ 198.18.10.0/24") >= 0 || opIndex(a, 0, "route- 198.18.10.0/24") >= 0 {
		t.Errorf("the static route left by the last run was touched: %q", a.ops)
	}
	s.run(4 * time.Second)
	b.expect("web", StateBackup)
	if !b.hasRoute("198.18.10.0/24", 0) || !b.hasRule(254) || b.hasRule(100) {
		t.Errorf("backup: routes %v rules %v; want the static ones only", b.routes, b.rules)
	}
	b.delRouteBehindBack("198.18.10.0/24", 0)
	s.run(10 * time.Millisecond)
	if !b.hasRoute("198.18.10.0/24", 0) {
		t.Error("the static route was not restored")
	}
	if st := b.n.status(); len(st.StaticRoutes) != 1 || !st.StaticRoutes[0].Present || st.StaticRoutesRestored != 1 {
		t.Errorf("status: %+v restored %d", st.StaticRoutes, st.StaticRoutesRestored)
	}
	// A reload drops the static rule.
	if err := b.n.reload(s.config(scnConfig(scnInstance("web", 51, 100, rtExtra...))+"static_routes: [{to: 198.18.10.0/24, via: 10.0.0.254}]\n"), s.now); err != nil {
		t.Fatal(err)
	}
	if b.hasRule(254) || !b.hasRoute("198.18.10.0/24", 0) {
		t.Errorf("after the reload: routes %v rules %v", b.routes, b.rules)
	}
	b.stop()
	s.run(time.Second)
	if len(b.routes)+len(b.rules) != 0 {
		t.Errorf("after the stop: routes %v rules %v", b.routes, b.rules)
	}
}

func TestRouteInterfaceMustExist(t *testing.T) {
	s := newSimNet(t)
	a := s.host("a", "10.0.0.1")
	err := a.create(s.config(scnConfig(scnInstance("web", 51, 150,
		"routes: [{to: default, via: 198.18.2.1, interface: eth9, table: 100}]", "rules: [{iif: eth8, table: 100}]"))))
	if err == nil {
		t.Fatal("started with routes on interfaces that do not exist")
	}
	for _, want := range []string{"sim.yaml:9: route to 0.0.0.0/0 of instance web: interface eth9", "sim.yaml:10: rule from all to all iif eth8 lookup 100 of instance web: interface eth8"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if len(a.ops) != 0 {
		t.Errorf("changed the host: %q", a.ops)
	}
}
