package vip

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Routes and rules carry vipd's mark too: the route protocol (RTM_NEWROUTE's
// rtm_protocol) and the rule protocol (FRA_PROTOCOL, Linux >= 4.17) are
// Proto. vipd removes, replaces or takes over only routes and rules with the
// mark, so a route the administrator added by hand is never touched.

// Route is an IPv4 route vipd installs.
type Route struct {
	Dst       netip.Prefix // 0.0.0.0/0 for the default route
	Gw        netip.Addr   // invalid: none
	LinkIndex int          // 0: none (the kernel picks it from Gw)
	Src       netip.Addr   // preferred source; invalid: none
	Table     int          // 0: main
	Metric    int
	Scope     uint8 // RT_SCOPE_*
	Type      int   // RTN_UNICAST (0 reads as unicast), RTN_BLACKHOLE, ...
}

func (r Route) String() string {
	s := r.Dst.String()
	if r.Gw.IsValid() {
		s += " via " + r.Gw.String()
	}
	if r.LinkIndex != 0 {
		s += fmt.Sprintf(" dev #%d", r.LinkIndex)
	}
	return s + fmt.Sprintf(" table %d metric %d", tableOrMain(r.Table), r.Metric)
}

func tableOrMain(t int) int {
	if t == 0 {
		return unix.RT_TABLE_MAIN
	}
	return t
}

// Rule is an IPv4 routing policy rule vipd installs: a table lookup.
type Rule struct {
	From, To netip.Prefix // invalid: any
	Table    int
	Priority int // 0: the kernel picks it
	IIF, OIF string
	Mark     uint32
	Mask     uint32
	HasMark  bool
}

func (r Rule) String() string {
	from, to := "all", "all"
	if r.From.IsValid() {
		from = r.From.String()
	}
	if r.To.IsValid() {
		to = r.To.String()
	}
	s := fmt.Sprintf("from %s to %s", from, to)
	if r.IIF != "" {
		s += " iif " + r.IIF
	}
	if r.OIF != "" {
		s += " oif " + r.OIF
	}
	if r.HasMark {
		s += fmt.Sprintf(" fwmark %#x/%#x", r.Mark, r.Mask)
	}
	if r.Priority != 0 {
		s += fmt.Sprintf(" priority %d", r.Priority)
	}
	return s + fmt.Sprintf(" lookup %d", r.Table)
}

// Router adds and removes vipd's routes and rules in the network namespace
// it was created in.
type Router struct {
	h *netlink.Handle
}

// NewRouter opens its netlink socket in the current network namespace.
func NewRouter() (*Router, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("vip: open netlink for routes: %w", err)
	}
	return &Router{h: h}, nil
}

// Close releases the socket.
func (r *Router) Close() { r.h.Close() }

func ipNet(p netip.Prefix) *net.IPNet {
	if !p.IsValid() {
		return nil
	}
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func ip(a netip.Addr) net.IP {
	if !a.IsValid() {
		return nil
	}
	return a.AsSlice()
}

func (rt Route) netlink() *netlink.Route {
	typ := rt.Type
	if typ == 0 {
		typ = unix.RTN_UNICAST
	}
	return &netlink.Route{
		Family:    unix.AF_INET,
		Dst:       ipNet(rt.Dst),
		Gw:        ip(rt.Gw),
		LinkIndex: rt.LinkIndex,
		Src:       ip(rt.Src),
		Table:     tableOrMain(rt.Table),
		Priority:  rt.Metric,
		Scope:     netlink.Scope(rt.Scope),
		Type:      typ,
		Protocol:  netlink.RouteProtocol(Proto),
	}
}

// sameKey reports whether the kernel would take x for the route rt: the
// same table, destination and metric (IPv4 routes also differ by TOS,
// which vipd leaves at 0).
func sameKey(rt Route, x netlink.Route) bool {
	dst := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	if x.Dst != nil {
		a, ok := netip.AddrFromSlice(x.Dst.IP)
		bits, _ := x.Dst.Mask.Size()
		if !ok {
			return false
		}
		dst = netip.PrefixFrom(a.Unmap(), bits)
	}
	return dst == rt.Dst && x.Table == tableOrMain(rt.Table) && x.Priority == rt.Metric && x.Tos == 0
}

// sameRoute reports whether x is rt as vipd would install it.
func sameRoute(rt Route, x netlink.Route) bool {
	want := rt.netlink()
	return sameKey(rt, x) && want.Gw.Equal(x.Gw) && want.Src.Equal(x.Src) &&
		(rt.LinkIndex == 0 || rt.LinkIndex == x.LinkIndex) && want.Type == x.Type && want.Scope == x.Scope
}

// findRoute returns the route the kernel holds under rt's key.
func (r *Router) findRoute(rt Route) (netlink.Route, bool, error) {
	filter := &netlink.Route{Table: tableOrMain(rt.Table)}
	rs, err := r.h.RouteListFiltered(unix.AF_INET, filter, netlink.RT_FILTER_TABLE)
	if err != nil {
		return netlink.Route{}, false, fmt.Errorf("list routes of table %d: %w", tableOrMain(rt.Table), err)
	}
	for _, x := range rs {
		if sameKey(rt, x) {
			return x, true, nil
		}
	}
	return netlink.Route{}, false, nil
}

// AddRoute installs rt, marked as vipd's. It is idempotent; a route of
// vipd's under the same key that differs (a reload changed the gateway) is
// replaced; a route under the same key without vipd's mark is left as it is
// and the error wraps ErrNotOurs.
func (r *Router) AddRoute(rt Route) error {
	err := r.h.RouteAdd(rt.netlink())
	if errors.Is(err, unix.EEXIST) {
		x, found, lerr := r.findRoute(rt)
		switch {
		case lerr != nil:
			err = fmt.Errorf("%w; then %w", err, lerr)
		case !found:
			err = fmt.Errorf("%w, but then not listed", err)
		case x.Protocol != netlink.RouteProtocol(Proto):
			err = ErrNotOurs
		case sameRoute(rt, x):
			return nil
		default:
			err = r.h.RouteReplace(rt.netlink())
		}
	}
	if err != nil {
		return fmt.Errorf("vip: add route %s: %w", rt, err)
	}
	return nil
}

// RemoveRoute deletes rt if the kernel holds it as vipd's. A route that is
// not there is not an error; one without vipd's mark stays, and the error
// wraps ErrNotOurs.
func (r *Router) RemoveRoute(rt Route) error {
	x, found, err := r.findRoute(rt)
	switch {
	case err != nil:
		return fmt.Errorf("vip: remove route %s: %w", rt, err)
	case !found:
		return nil
	case x.Protocol != netlink.RouteProtocol(Proto):
		return fmt.Errorf("vip: remove route %s: %w", rt, ErrNotOurs)
	}
	if err := r.h.RouteDel(&x); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("vip: remove route %s: %w", rt, err)
	}
	return nil
}

// HasRoute reports whether rt is installed as vipd installs it.
func (r *Router) HasRoute(rt Route) (bool, error) {
	x, found, err := r.findRoute(rt)
	if err != nil {
		return false, fmt.Errorf("vip: check route %s: %w", rt, err)
	}
	return found && x.Protocol == netlink.RouteProtocol(Proto) && sameRoute(rt, x), nil
}

// OwnedRoutes lists the IPv4 routes of every table that carry vipd's mark.
func (r *Router) OwnedRoutes() ([]Route, error) {
	filter := &netlink.Route{Table: unix.RT_TABLE_UNSPEC, Protocol: netlink.RouteProtocol(Proto)}
	rs, err := r.h.RouteListFiltered(unix.AF_INET, filter, netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return nil, fmt.Errorf("vip: list vipd's routes: %w", err)
	}
	out := make([]Route, 0, len(rs))
	for _, x := range rs {
		rt := Route{Dst: netip.PrefixFrom(netip.IPv4Unspecified(), 0), LinkIndex: x.LinkIndex, Table: x.Table,
			Metric: x.Priority, Scope: uint8(x.Scope), Type: x.Type}
		if x.Dst != nil {
			a, _ := netip.AddrFromSlice(x.Dst.IP)
			bits, _ := x.Dst.Mask.Size()
			rt.Dst = netip.PrefixFrom(a.Unmap(), bits)
		}
		if a, ok := netip.AddrFromSlice(x.Gw); ok {
			rt.Gw = a.Unmap()
		}
		if a, ok := netip.AddrFromSlice(x.Src); ok {
			rt.Src = a.Unmap()
		}
		out = append(out, rt)
	}
	return out, nil
}

func (ru Rule) netlink() *netlink.Rule {
	x := netlink.NewRule()
	x.Family = unix.AF_INET
	x.Src = ipNet(ru.From)
	x.Dst = ipNet(ru.To)
	x.Table = ru.Table
	if ru.Priority != 0 {
		x.Priority = ru.Priority
	}
	x.IifName, x.OifName = ru.IIF, ru.OIF
	if ru.HasMark {
		mask := ru.Mask
		x.Mark, x.Mask = ru.Mark, &mask
	}
	x.Protocol = Proto
	return x
}

// sameRule reports whether x is ru (x's protocol aside).
func sameRule(ru Rule, x netlink.Rule) bool {
	pfx := func(n *net.IPNet) netip.Prefix {
		if n == nil {
			return netip.Prefix{}
		}
		a, _ := netip.AddrFromSlice(n.IP)
		bits, _ := n.Mask.Size()
		return netip.PrefixFrom(a.Unmap(), bits)
	}
	mark := x.Mark != 0 || x.Mask != nil
	var mask uint32
	if x.Mask != nil {
		mask = *x.Mask
	}
	return pfx(x.Src) == ru.From && pfx(x.Dst) == ru.To && x.Table == ru.Table &&
		(ru.Priority == 0 || x.Priority == ru.Priority) && x.IifName == ru.IIF && x.OifName == ru.OIF &&
		mark == ru.HasMark && (!ru.HasMark || x.Mark == ru.Mark && mask == ru.Mask) && !x.Invert && x.Goto < 0
}

// findRule returns the installed rule equal to ru.
func (r *Router) findRule(ru Rule) (netlink.Rule, bool, error) {
	rs, err := r.h.RuleList(unix.AF_INET)
	if err != nil {
		return netlink.Rule{}, false, fmt.Errorf("list rules: %w", err)
	}
	for _, x := range rs {
		if sameRule(ru, x) {
			return x, true, nil
		}
	}
	return netlink.Rule{}, false, nil
}

// AddRule installs ru, marked as vipd's, unless the same rule is there
// already: as vipd's (nil) or as someone else's (ErrNotOurs, left alone).
func (r *Router) AddRule(ru Rule) error {
	x, found, err := r.findRule(ru)
	switch {
	case err != nil:
	case found && x.Protocol == Proto:
		return nil
	case found:
		err = ErrNotOurs
	default:
		err = r.h.RuleAdd(ru.netlink())
	}
	if err != nil {
		return fmt.Errorf("vip: add rule %s: %w", ru, err)
	}
	return nil
}

// RemoveRule deletes ru if it is installed as vipd's; one that is not there
// is not an error, one without vipd's mark stays (ErrNotOurs).
func (r *Router) RemoveRule(ru Rule) error {
	x, found, err := r.findRule(ru)
	switch {
	case err != nil:
		return fmt.Errorf("vip: remove rule %s: %w", ru, err)
	case !found:
		return nil
	case x.Protocol != Proto:
		return fmt.Errorf("vip: remove rule %s: %w", ru, ErrNotOurs)
	}
	// The request names the protocol, so the kernel deletes only a rule
	// with vipd's mark even if the table changed in between.
	if err := r.h.RuleDel(ru.netlinkFound(x)); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("vip: remove rule %s: %w", ru, err)
	}
	return nil
}

// netlinkFound is ru as the request that deletes x, the installed rule: the
// priority the kernel gave it when ru left it to the kernel.
func (ru Rule) netlinkFound(x netlink.Rule) *netlink.Rule {
	d := ru.netlink()
	d.Priority = x.Priority
	return d
}

// HasRule reports whether ru is installed as vipd's.
func (r *Router) HasRule(ru Rule) (bool, error) {
	x, found, err := r.findRule(ru)
	if err != nil {
		return false, fmt.Errorf("vip: check rule %s: %w", ru, err)
	}
	return found && x.Protocol == Proto, nil
}

// OwnedRules lists the IPv4 rules that carry vipd's mark.
func (r *Router) OwnedRules() ([]Rule, error) {
	rs, err := r.h.RuleList(unix.AF_INET)
	if err != nil {
		return nil, fmt.Errorf("vip: list rules: %w", err)
	}
	var out []Rule
	for _, x := range rs {
		if x.Protocol != Proto {
			continue
		}
		ru := Rule{Table: x.Table, Priority: x.Priority, IIF: x.IifName, OIF: x.OifName}
		if x.Src != nil {
			a, _ := netip.AddrFromSlice(x.Src.IP)
			bits, _ := x.Src.Mask.Size()
			ru.From = netip.PrefixFrom(a.Unmap(), bits)
		}
		if x.Dst != nil {
			a, _ := netip.AddrFromSlice(x.Dst.IP)
			bits, _ := x.Dst.Mask.Size()
			ru.To = netip.PrefixFrom(a.Unmap(), bits)
		}
		if x.Mark != 0 || x.Mask != nil {
			ru.HasMark, ru.Mark = true, x.Mark
			if x.Mask != nil {
				ru.Mask = *x.Mask
			}
		}
		out = append(out, ru)
	}
	return out, nil
}

// Matches reports whether x, a route as the kernel lists it (OwnedRoutes),
// is r as vipd installs it: the same table, destination and metric, the
// same gateway, source, type and scope, and r's device if r names one.
func (r Route) Matches(x Route) bool {
	typ := func(t int) int {
		if t == 0 {
			return unix.RTN_UNICAST
		}
		return t
	}
	return r.Dst == x.Dst && tableOrMain(r.Table) == tableOrMain(x.Table) && r.Metric == x.Metric &&
		r.Gw == x.Gw && r.Src == x.Src && typ(r.Type) == typ(x.Type) && r.Scope == x.Scope &&
		(r.LinkIndex == 0 || r.LinkIndex == x.LinkIndex)
}

// SameKey reports whether the kernel holds r and x under one key (table,
// destination, metric): adding one replaces the other.
func (r Route) SameKey(x Route) bool {
	return r.Dst == x.Dst && tableOrMain(r.Table) == tableOrMain(x.Table) && r.Metric == x.Metric
}

// Matches reports whether x, a rule as the kernel lists it (OwnedRules), is
// r: a priority of 0 in r matches the one the kernel chose.
func (r Rule) Matches(x Rule) bool {
	return r.From == x.From && r.To == x.To && r.Table == x.Table && (r.Priority == 0 || r.Priority == x.Priority) &&
		r.IIF == x.IIF && r.OIF == x.OIF && r.HasMark == x.HasMark && (!r.HasMark || r.Mark == x.Mark && r.Mask == x.Mask)
}
