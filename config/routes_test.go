package config

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestParseRoutesAndRules(t *testing.T) {
	in := one(
		"routes:",
		"  - to: default",
		"    via: 198.18.2.1",
		"    interface: eth1",
		"    table: 100",
		"  - to: 198.18.8.0/24",
		"    interface: eth1",
		"    source: 198.51.100.10",
		"    metric: 20",
		"    scope: link",
		"  - to: 198.18.9.1",
		"    type: blackhole",
		"    table: main",
		"rules:",
		"  - from: 198.51.100.10/32",
		"    table: 100",
		"    priority: 100",
		"  - to: 198.18.8.0/24",
		"    iif: eth0",
		"    oif: eth1",
		"    fwmark: 0x10/0xff",
		"    table: 101",
		"  - fwmark: 7",
		"    table: 102",
	) + `static_routes:
  - to: 198.18.10.0/24
    via: 198.18.2.1
static_rules:
  - from: 198.18.2.0/24
    table: 200
    priority: 300
`
	cfg, err := Parse("t.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.Instances[0]
	wantRoutes := []Route{
		{To: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("198.18.2.1"), Interface: "eth1", Table: 100, Line: 7},
		{To: netip.MustParsePrefix("198.18.8.0/24"), Interface: "eth1", Source: netip.MustParseAddr("198.51.100.10"), Metric: 20, Scope: ScopeLink, Line: 11},
		{To: netip.MustParsePrefix("198.18.9.1/32"), Type: RouteBlackhole, Table: 254, Line: 16},
	}
	if !reflect.DeepEqual(got.Routes, wantRoutes) {
		t.Errorf("routes:\n got %+v\nwant %+v", got.Routes, wantRoutes)
	}
	wantRules := []Rule{
		{From: netip.MustParsePrefix("198.51.100.10/32"), Table: 100, Priority: 100, Line: 20},
		{To: netip.MustParsePrefix("198.18.8.0/24"), IIF: "eth0", OIF: "eth1", FwMark: 0x10, FwMask: 0xff, HasMark: true, Table: 101, Line: 23},
		{FwMark: 7, FwMask: 0xffffffff, HasMark: true, Table: 102, Line: 28},
	}
	if !reflect.DeepEqual(got.Rules, wantRules) {
		t.Errorf("rules:\n got %+v\nwant %+v", got.Rules, wantRules)
	}
	if len(cfg.StaticRoutes) != 1 || cfg.StaticRoutes[0].Via != netip.MustParseAddr("198.18.2.1") || cfg.StaticRoutes[0].Line != 31 {
		t.Errorf("static routes: %+v", cfg.StaticRoutes)
	}
	if len(cfg.StaticRules) != 1 || cfg.StaticRules[0].Table != 200 || cfg.StaticRules[0].Priority != 300 {
		t.Errorf("static rules: %+v", cfg.StaticRules)
	}
}

func TestParseRouteErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"no destination", one("routes:", "  - via: 198.18.2.1"),
			[]string{`t.yaml:7: missing required key "to" in route`}},
		{"bad destination", one("routes:", "  - to: 198.18.2.1/33", "    via: 198.18.2.1"),
			[]string{`t.yaml:7: routes.to: "198.18.2.1/33" is not default, an IPv4 address or an IPv4 prefix`}},
		{"host bits", one("routes:", "  - to: 198.18.2.1/24", "    via: 198.18.2.1"),
			[]string{`t.yaml:7: routes.to: "198.18.2.1/24" has host bits set; the prefix is 198.18.2.0/24`}},
		{"no way out", one("routes:", "  - to: default"),
			[]string{`t.yaml:7: route to 0.0.0.0/0: give via (a gateway), interface, or both`}},
		{"blackhole with a gateway", one("routes:", "  - to: default", "    type: blackhole", "    via: 198.18.2.1"),
			[]string{`t.yaml:7: route to 0.0.0.0/0: a blackhole route has no gateway or interface; remove via and interface`}},
		{"bad gateway", one("routes:", "  - to: default", "    via: fd00:18::1"),
			[]string{`t.yaml:8: routes.via: "fd00:18::1" is not an IPv4 address`}},
		{"bad table", one("routes:", "  - to: default", "    via: 198.18.2.1", "    table: wan"),
			[]string{`t.yaml:9: routes.table: "wan" is not a table; use a number 1..4294967295 or main, default, local`}},
		{"table zero", one("routes:", "  - to: default", "    via: 198.18.2.1", "    table: 0"),
			[]string{`t.yaml:9: routes.table: 0 is out of range 1..4294967295`}},
		{"bad scope", one("routes:", "  - to: default", "    via: 198.18.2.1", "    scope: nowhere"),
			[]string{`t.yaml:9: routes.scope: "nowhere" is not a scope; use global, site, link or host`}},
		{"bad type", one("routes:", "  - to: default", "    type: nat"),
			[]string{`t.yaml:8: routes.type: "nat" is not a route type; use unicast, blackhole, unreachable, prohibit`}},
		{"route twice", one("routes:", "  - to: default", "    via: 198.18.2.1", "  - to: 0.0.0.0/0", "    interface: eth1"),
			[]string{`t.yaml:9: route to 0.0.0.0/0 (table 254, metric 0) is listed twice (first at line 7)`}},
		{"rule without table", one("rules:", "  - from: 198.51.100.10"),
			[]string{`t.yaml:7: missing required key "table" in rule`}},
		{"rule in the local table", one("rules:", "  - from: 198.51.100.10", "    table: local"),
			[]string{`t.yaml:8: rules.table: the local table is the kernel's; use another table`}},
		{"rule priority zero", one("rules:", "  - table: 100", "    priority: 0"),
			[]string{`t.yaml:8: rules.priority: 0 is out of range 1..32765`}},
		{"bad fwmark", one("rules:", "  - table: 100", "    fwmark: 0x10/zz"),
			[]string{`t.yaml:8: rules.fwmark: "0x10/zz" has a mask that is not a number (e.g. 0x10/0xff)`}},
		{"bad iif", one("rules:", "  - table: 100", "    iif: a/b"),
			[]string{`t.yaml:8: rules.iif: "a/b" is not a valid interface name (1 to 15 bytes, no '/', ':' or whitespace, not "." or "..")`}},
		{"route in two instances", "instances:\n" +
			"  - {name: a, interface: eth0, vrid: 1, vips: [198.51.100.10], routes: [{to: default, via: 198.18.2.1, table: 100}]}\n" +
			"  - {name: b, interface: eth0, vrid: 2, vips: [198.51.100.11], routes: [{to: default, interface: eth1, table: 100}]}\n",
			[]string{`t.yaml:3: route to 0.0.0.0/0 (table 100, metric 0) is also in instance a at line 2; a route belongs to one instance`}},
		{"rule static and in an instance", one("rules:", "  - {from: 198.51.100.10, table: 100}") + "static_rules:\n  - {from: 198.51.100.10/32, table: 100}\n",
			[]string{`t.yaml:7: this rule is also in static_routes/static_rules at line 9; a rule belongs to one instance`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tt.in))
			if err == nil {
				t.Fatal("accepted")
			}
			var got []string
			for _, e := range err.(Errors) {
				got = append(got, e.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("errors:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}
