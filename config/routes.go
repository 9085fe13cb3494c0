package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Route is a route vipd installs: an instance's while it is master (after
// its VIPs, before announcing them) and removed when it leaves master; a
// static one (top-level static_routes) for as long as vipd runs.
type Route struct {
	To        netip.Prefix // "default" is 0.0.0.0/0
	Via       netip.Addr   // gateway; invalid when none
	Interface string       // output device; "" lets the kernel choose from Via
	Source    netip.Addr   // preferred source; invalid when none
	Table     uint32       // 0 = main
	Metric    uint32
	Scope     RouteScope
	Type      RouteType
	Line      int
}

// RouteType is the kind of a route.
type RouteType uint8

// The route types vipd installs.
const (
	RouteUnicast RouteType = iota
	RouteBlackhole
	RouteUnreachable
	RouteProhibit
)

var routeTypeNames = []string{"unicast", "blackhole", "unreachable", "prohibit"}

func (t RouteType) String() string {
	if int(t) < len(routeTypeNames) {
		return routeTypeNames[t]
	}
	return "RouteType(" + strconv.Itoa(int(t)) + ")"
}

// RouteScope is a route's scope, with the kernel's numbers (RT_SCOPE_*).
type RouteScope uint8

// The route scopes.
const (
	ScopeGlobal RouteScope = 0
	ScopeSite   RouteScope = 200
	ScopeLink   RouteScope = 253
	ScopeHost   RouteScope = 254
)

var scopeNames = map[string]RouteScope{"global": ScopeGlobal, "site": ScopeSite, "link": ScopeLink, "host": ScopeHost}

func (s RouteScope) String() string {
	for k, v := range scopeNames {
		if v == s {
			return k
		}
	}
	return strconv.Itoa(int(s))
}

// Rule is a routing policy rule vipd installs, like Route.
type Rule struct {
	From     netip.Prefix // invalid: any source
	To       netip.Prefix // invalid: any destination
	Table    uint32       // the table looked up (the only action vipd installs)
	Priority uint32       // 0 when not set: the kernel picks one
	IIF, OIF string
	FwMark   uint32
	FwMask   uint32 // with FwMark; 0 when no mark is matched
	HasMark  bool
	Line     int
}

// Routing tables by name, as in iproute2's rt_tables.
var tableNames = map[string]uint32{"main": 254, "default": 253, "local": 255}

// routes reads a list of routes (an instance's "routes" or the top-level
// "static_routes").
func (p *parser) routes(f field) []Route {
	const where = "in route"
	var out []Route
	for _, it := range p.items(f, where, "to", "via", "interface", "source", "table", "metric", "scope", "type") {
		p.required(it, where, "to")
		r := Route{Line: it.line}
		good := true
		if tf, ok := it.fs["to"]; ok {
			if s, ok := p.str(tf); ok {
				pfx, problem := parseRouteDst(s)
				if problem != "" {
					p.errorf(tf.line, "%s: %q %s", tf.name, s, problem)
					good = false
				}
				r.To = pfx
			}
		}
		if vf, ok := it.fs["via"]; ok {
			if a, ok := p.ipv4(vf, false); ok {
				r.Via = a
			} else {
				good = false
			}
		}
		if sf, ok := it.fs["source"]; ok {
			if a, ok := p.ipv4(sf, false); ok {
				r.Source = a
			}
		}
		if nf, ok := it.fs["interface"]; ok {
			if s, ok := p.str(nf); ok {
				if validIfname(s) {
					r.Interface = s
				} else {
					p.errorf(nf.line, "%s: %q is %s", nf.name, s, notIfname)
					good = false
				}
			}
		}
		if tf, ok := it.fs["table"]; ok {
			r.Table, _ = p.table(tf)
		}
		if mf, ok := it.fs["metric"]; ok {
			if v, ok := p.integer(mf); ok && p.inRange(mf, v, 0, 1<<32-1) {
				r.Metric = uint32(v)
			}
		}
		if sf, ok := it.fs["scope"]; ok {
			if s, ok := p.str(sf); ok {
				if sc, known := scopeNames[s]; known {
					r.Scope = sc
				} else {
					p.errorf(sf.line, "%s: %q is not a scope; use global, site, link or host", sf.name, s)
				}
			}
		}
		if yf, ok := it.fs["type"]; ok {
			if s, ok := p.str(yf); ok {
				i := slices.Index(routeTypeNames, s)
				if i < 0 {
					p.errorf(yf.line, "%s: %q is not a route type; use %s", yf.name, s, strings.Join(routeTypeNames, ", "))
					good = false
				} else {
					r.Type = RouteType(i)
				}
			}
		}
		switch {
		case !good:
		case r.Type != RouteUnicast && (r.Via.IsValid() || r.Interface != ""):
			p.errorf(it.line, "route to %s: a %s route has no gateway or interface; remove via and interface", r.To, r.Type)
		case r.Type == RouteUnicast && !r.Via.IsValid() && r.Interface == "":
			p.errorf(it.line, "route to %s: give via (a gateway), interface, or both", r.To)
		}
		out = append(out, r)
	}
	p.duplicateRoutes(out)
	return out
}

// duplicateRoutes reports two routes of one list that the kernel would take
// for the same one: same table, destination and metric.
func (p *parser) duplicateRoutes(rs []Route) {
	type key struct {
		table  uint32
		to     netip.Prefix
		metric uint32
	}
	first := make(map[key]int)
	for _, r := range rs {
		if !r.To.IsValid() {
			continue
		}
		k := key{tableOrMain(r.Table), r.To, r.Metric}
		if line, dup := first[k]; dup {
			p.errorf(r.Line, "route to %s (table %d, metric %d) is listed twice (first at line %d)", r.To, k.table, r.Metric, line)
			continue
		}
		first[k] = r.Line
	}
}

func tableOrMain(t uint32) uint32 {
	if t == 0 {
		return 254
	}
	return t
}

// rules reads a list of rules (an instance's "rules" or the top-level
// "static_rules").
func (p *parser) rules(f field) []Rule {
	const where = "in rule"
	var out []Rule
	for _, it := range p.items(f, where, "from", "to", "table", "priority", "iif", "oif", "fwmark") {
		p.required(it, where, "table")
		r := Rule{Line: it.line}
		for _, key := range []string{"from", "to"} {
			ff, ok := it.fs[key]
			if !ok {
				continue
			}
			s, ok := p.str(ff)
			if !ok {
				continue
			}
			pfx, problem := parseRouteDst(s)
			if problem != "" {
				p.errorf(ff.line, "%s: %q %s", ff.name, s, problem)
				continue
			}
			if key == "from" {
				r.From = pfx
			} else {
				r.To = pfx
			}
		}
		if tf, ok := it.fs["table"]; ok {
			if t, ok := p.table(tf); ok && t == 255 {
				p.errorf(tf.line, "%s: the local table is the kernel's; use another table", tf.name)
			} else {
				r.Table = t
			}
		}
		if pf, ok := it.fs["priority"]; ok {
			if v, ok := p.integer(pf); ok && p.inRange(pf, v, 1, 32765) {
				r.Priority = uint32(v)
			}
		}
		for _, key := range []string{"iif", "oif"} {
			nf, ok := it.fs[key]
			if !ok {
				continue
			}
			if s, ok := p.str(nf); ok {
				if !validIfname(s) {
					p.errorf(nf.line, "%s: %q is %s", nf.name, s, notIfname)
				} else if key == "iif" {
					r.IIF = s
				} else {
					r.OIF = s
				}
			}
		}
		if mf, ok := it.fs["fwmark"]; ok {
			if s, ok := p.scalarText(mf); ok {
				mark, mask, problem := parseFwmark(s)
				if problem != "" {
					p.errorf(mf.line, "%s: %q %s", mf.name, s, problem)
				} else {
					r.FwMark, r.FwMask, r.HasMark = mark, mask, true
				}
			}
		}
		out = append(out, r)
	}
	return out
}

// table reads a routing table: a number 1..2^32-1 or main, default, local.
func (p *parser) table(f field) (uint32, bool) {
	if f.node != nil && f.node.ShortTag() == "!!str" {
		if t, ok := tableNames[f.node.Value]; ok {
			return t, true
		}
		p.errorf(f.line, "%s: %q is not a table; use a number 1..4294967295 or main, default, local", f.name, f.node.Value)
		return 0, false
	}
	v, ok := p.integer(f)
	if ok && p.inRange(f, v, 1, 1<<32-1) {
		return uint32(v), true
	}
	return 0, false
}

// scalarText returns a scalar's text whatever its YAML type (an fwmark may
// read as an integer or as "0x10/0xff").
func (p *parser) scalarText(f field) (string, bool) {
	if f.node == nil || f.node.Kind != yaml.ScalarNode || isNull(f.node) {
		p.errorf(f.line, "%s: expected a value, got %s", f.name, describe(f.node))
		return "", false
	}
	return f.node.Value, true
}

// ipv4 reads an IPv4 unicast address.
func (p *parser) ipv4(f field, allowEmpty bool) (netip.Addr, bool) {
	s, ok := p.str(f)
	if !ok || (allowEmpty && s == "") {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil || !a.Is4():
		p.errorf(f.line, "%s: %q is not an IPv4 address", f.name, s)
	case a.IsUnspecified() || a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		p.errorf(f.line, "%s: %s is not a unicast address", f.name, s)
	default:
		return a, true
	}
	return netip.Addr{}, false
}

// parseRouteDst reads "default", an address (a host route) or a prefix,
// and says what is wrong with it as a phrase.
func parseRouteDst(s string) (netip.Prefix, string) {
	if s == "default" || s == "all" {
		return netip.PrefixFrom(netip.IPv4Unspecified(), 0), ""
	}
	var pfx netip.Prefix
	if strings.Contains(s, "/") {
		pp, err := netip.ParsePrefix(s)
		if err != nil || !pp.Addr().Is4() {
			return pfx, "is not default, an IPv4 address or an IPv4 prefix"
		}
		if pp.Masked() != pp {
			return pfx, fmt.Sprintf("has host bits set; the prefix is %s", pp.Masked())
		}
		return pp, ""
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return pfx, "is not default, an IPv4 address or an IPv4 prefix"
	}
	return netip.PrefixFrom(a, 32), ""
}

// parseFwmark reads "MARK" or "MARK/MASK", each decimal or 0x hex.
func parseFwmark(s string) (mark, mask uint32, problem string) {
	ms, ks, hasMask := strings.Cut(s, "/")
	m, err := strconv.ParseUint(ms, 0, 32)
	if err != nil {
		return 0, 0, "is not a mark: use a number, or number/mask (e.g. 0x10/0xff)"
	}
	k := uint64(0xffffffff)
	if hasMask {
		if k, err = strconv.ParseUint(ks, 0, 32); err != nil {
			return 0, 0, "has a mask that is not a number (e.g. 0x10/0xff)"
		}
	}
	return uint32(m), uint32(k), ""
}

// crossCheckRoutes reports a route or a rule that two instances, or an
// instance and the static lists, would both install: each would remove it
// when it leaves master while the other still needs it.
func (p *parser) crossCheckRoutes(cfg *Config) {
	type routeKey struct {
		table  uint32
		to     netip.Prefix
		metric uint32
	}
	type owner struct {
		who  string
		line int
	}
	routes := make(map[routeKey]owner)
	rules := make(map[Rule]owner)
	check := func(who string, rs []Route, rls []Rule) {
		for _, r := range rs {
			if !r.To.IsValid() {
				continue
			}
			k := routeKey{tableOrMain(r.Table), r.To, r.Metric}
			if o, dup := routes[k]; dup && o.who != who {
				p.errorf(r.Line, "route to %s (table %d, metric %d) is also in %s at line %d; a route belongs to one instance", r.To, k.table, r.Metric, o.who, o.line)
			} else if !dup {
				routes[k] = owner{who, r.Line}
			}
		}
		for _, r := range rls {
			k := r
			k.Line = 0
			if o, dup := rules[k]; dup {
				p.errorf(r.Line, "this rule is also in %s at line %d; a rule belongs to one instance", o.who, o.line)
			} else {
				rules[k] = owner{who, r.Line}
			}
		}
	}
	check("static_routes/static_rules", cfg.StaticRoutes, cfg.StaticRules)
	for _, in := range cfg.Instances {
		check("instance "+in.Name, in.Routes, in.Rules)
	}
}
