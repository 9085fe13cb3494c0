package convert

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/vipd/vipd/internal/kaconf"
)

// kv is one key of a route or rule, in the order it is written.
type kv struct{ key, val string }

// entry is a route or a rule as vipd writes it: a flow mapping.
type entry []kv

func (e entry) yaml() string {
	parts := make([]string, len(e))
	for i, p := range e {
		parts[i] = p.key + ": " + p.val
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// writeEntries writes a list of routes or rules under key at indentation
// ind.
func writeEntries(w *writer, ind int, key string, es []entry) {
	if len(es) == 0 {
		return
	}
	w.key(ind, key)
	for _, e := range es {
		w.b.WriteString(strings.Repeat(" ", ind+2) + "- " + e.yaml() + "\n")
	}
}

// routeTypes are the keepalived (iproute2) route types vipd installs.
var routeTypes = map[string]bool{"unicast": true, "blackhole": true, "unreachable": true, "prohibit": true}

// routeScopes maps keepalived's scope names and numbers to vipd's.
var routeScopes = map[string]string{
	"global": "global", "universe": "global", "0": "global",
	"site": "site", "200": "site", "link": "link", "253": "link", "host": "host", "254": "host",
}

// tableName checks a routing table as vipd takes it: a number 1..2^32-1
// or main, default, local. Names from /etc/iproute2/rt_tables are not
// read: the file may differ on the host vipd runs on.
func tableName(s string) (string, bool) {
	switch s {
	case "main", "default", "local":
		return s, true
	}
	if v, err := strconv.ParseUint(s, 10, 32); err == nil && v > 0 {
		return s, true
	}
	return "", false
}

// ipv4Prefix reads "default", "all", an address (a /32) or a prefix;
// ok is false otherwise, six is set for an IPv6 one.
func ipv4Prefix(s string) (out string, ok, six bool) {
	switch s {
	case "default", "all":
		return "default", true, false
	}
	if strings.Contains(s, ":") {
		return "", false, true
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil || !p.Addr().Is4() {
			return "", false, false
		}
		return p.Masked().String(), true, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return "", false, false
	}
	return a.String(), true, false
}

// route maps one line of virtual_routes or static_routes (keepalived's
// `ip route` syntax). An option vipd cannot set is reported as dropped and
// left out; a line vipd cannot install at all is dropped whole.
func (c *conv) route(n *kaconf.Node) (entry, bool) {
	tok := append([]string{n.Keyword}, n.Args...)
	var (
		e        entry
		dst, typ string
		hasWay   bool
	)
	val := func(i int) (string, bool) {
		if i+1 >= len(tok) {
			c.drop(n, "%s without a value; keepalived refuses the route, and it is left out", tok[i])
			return "", false
		}
		return tok[i+1], true
	}
	for i := 0; i < len(tok); i++ {
		t := tok[i]
		switch t {
		case "inet":
		case "inet6":
			c.drop(n, msgIPv6)
			return nil, false
		case "src", "via", "gw", "dev", "oif", "table", "metric", "priority", "preference", "scope", "protocol":
			v, ok := val(i)
			if !ok {
				return nil, false
			}
			i++
			switch t {
			case "src", "via", "gw":
				a, err := netip.ParseAddr(v)
				if err != nil || !a.Is4() {
					if err == nil {
						c.drop(n, msgIPv6)
					} else {
						c.drop(n, "%s %s is not an address; keepalived refuses the route, and it is left out", t, v)
					}
					return nil, false
				}
				if t == "src" {
					e = append(e, kv{"source", a.String()})
				} else {
					e = append(e, kv{"via", a.String()})
					hasWay = true
				}
			case "dev", "oif":
				e = append(e, kv{"interface", str(v)})
				hasWay = true
			case "table":
				tb, ok := tableName(v)
				if !ok {
					c.drop(n, "table %s: vipd takes a table number or main, default, local; the route is left out", v)
					return nil, false
				}
				e = append(e, kv{"table", tb})
			case "metric", "priority", "preference":
				if _, err := strconv.ParseUint(v, 10, 32); err != nil {
					c.drop(n, "%s %s is not a number; keepalived refuses the route, and it is left out", t, v)
					return nil, false
				}
				e = append(e, kv{"metric", v})
			case "scope":
				sc, ok := routeScopes[v]
				if !ok {
					c.drop(n, "scope %s: vipd takes global, site, link or host; the route is left out", v)
					return nil, false
				}
				if sc != "global" {
					e = append(e, kv{"scope", sc})
				}
			case "protocol":
				c.warn(n, "protocol %s: vipd marks its routes with its own protocol (0x76), by which it knows them", v)
			}
		case "no_track":
			c.warn(n, "no_track: vipd puts a removed route back instead of leaving the instance's state to it")
		case "onlink", "mtu", "advmss", "rtt", "rttvar", "reordering", "window", "cwnd", "ssthresh", "realms",
			"rto_min", "initcwnd", "initrwnd", "features", "quickack", "congctl", "pref", "hoplimit", "expires",
			"fastopen_no_cookie", "ttl-propagate", "tos", "dsfield", "encap", "as":
			c.drop(n, "%s: vipd installs the route without this option", t)
			if t != "onlink" {
				i++ // its value
			}
		case "nexthop", "or", "track_group", "vrf":
			c.drop(n, "%s: vipd installs one gateway per route; the route is left out", t)
			return nil, false
		default:
			if t == "to" {
				i++
				if i >= len(tok) {
					c.drop(n, "to without a destination; the route is left out")
					return nil, false
				}
				t = tok[i]
			}
			if routeTypes[t] {
				if t != "unicast" {
					typ = t
				}
				i++
				if i >= len(tok) {
					c.drop(n, "%s without a destination; the route is left out", t)
					return nil, false
				}
				t = tok[i]
			} else if t == "throw" || t == "nat" || t == "local" || t == "broadcast" || t == "anycast" || t == "multicast" {
				c.drop(n, "a %s route: vipd installs unicast, blackhole, unreachable and prohibit routes only; left out", t)
				return nil, false
			}
			p, ok, six := ipv4Prefix(t)
			switch {
			case six:
				c.drop(n, msgIPv6)
				return nil, false
			case !ok:
				c.drop(n, "unknown route keyword %s (keepalived refuses the route too); left out", t)
				return nil, false
			}
			dst = p
		}
	}
	if dst == "" {
		c.drop(n, "no destination; keepalived refuses the route, and it is left out")
		return nil, false
	}
	if typ == "" && !hasWay {
		c.drop(n, "neither a gateway nor a device; vipd cannot install the route, and it is left out")
		return nil, false
	}
	if typ != "" && hasWay {
		c.drop(n, "a %s route with a gateway or device: vipd installs it without them", typ)
		kept := entry{}
		for _, p := range e {
			if p.key != "via" && p.key != "interface" {
				kept = append(kept, p)
			}
		}
		e = kept
	}
	out := entry{{"to", dst}}
	if typ != "" {
		out = append(out, kv{"type", typ})
	}
	return append(out, e...), true
}

// rule maps one line of virtual_rules or static_rules (keepalived's
// `ip rule` syntax). vipd installs table lookups; a rule with anything vipd
// cannot match on is dropped whole, since without it the rule would match
// other traffic.
func (c *conv) rule(n *kaconf.Node) (entry, bool) {
	tok := append([]string{n.Keyword}, n.Args...)
	var e entry
	table := ""
	for i := 0; i < len(tok); i++ {
		t := tok[i]
		if t == "inet" {
			continue
		}
		if t == "inet6" {
			c.drop(n, msgIPv6)
			return nil, false
		}
		if t == "no_track" {
			c.warn(n, "no_track: vipd puts a removed rule back instead of leaving the instance's state to it")
			continue
		}
		if i+1 >= len(tok) {
			c.drop(n, "%s: vipd cannot read this rule; left out", t)
			return nil, false
		}
		v := tok[i+1]
		i++
		switch t {
		case "from", "to":
			if v == "all" {
				continue
			}
			p, ok, six := ipv4Prefix(v)
			switch {
			case six:
				c.drop(n, msgIPv6)
				return nil, false
			case !ok:
				c.drop(n, "%s %s is not an address or prefix; the rule is left out", t, v)
				return nil, false
			}
			e = append(e, kv{t, p})
		case "table", "lookup":
			tb, ok := tableName(v)
			if !ok || tb == "local" {
				c.drop(n, "table %s: vipd takes a table number or main, default; the rule is left out", v)
				return nil, false
			}
			table = tb
		case "priority", "preference", "order":
			p, err := strconv.ParseUint(v, 10, 32)
			if err != nil || p == 0 || p > 32765 {
				c.drop(n, "%s %s: vipd takes 1..32765; the rule is left out", t, v)
				return nil, false
			}
			e = append(e, kv{"priority", v})
		case "fwmark":
			e = append(e, kv{"fwmark", str(v)})
		case "dev", "iif":
			e = append(e, kv{"iif", str(v)})
		case "oif":
			e = append(e, kv{"oif", str(v)})
		default:
			c.drop(n, "%s: vipd matches rules on from, to, iif, oif and fwmark and installs table lookups; the rule is left out", t)
			return nil, false
		}
	}
	if table == "" {
		c.drop(n, "no table: vipd installs table lookups only; the rule is left out")
		return nil, false
	}
	return append(e, kv{"table", table}), true
}

// routesAndRules maps a virtual_routes, virtual_rules, static_routes or
// static_rules block.
func (c *conv) routesAndRules(k *kaconf.Node, routes, rules *[]entry) {
	for _, n := range k.Block {
		if strings.HasSuffix(k.Keyword, "_routes") {
			if e, ok := c.route(n); ok {
				*routes = append(*routes, e)
			}
		} else if e, ok := c.rule(n); ok {
			*rules = append(*rules, e)
		}
	}
}
