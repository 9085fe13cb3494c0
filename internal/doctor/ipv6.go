package doctor

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"

	"github.com/vipd/vipd/config"
	"github.com/vipd/vipd/vip"
	"github.com/vipd/vipd/vrrp"
)

// advertFamilies are the families the instances advertise in on one
// interface, IPv4 first; IPv4 alone when there is none.
func advertFamilies(insts []config.Instance) []config.Family {
	var fams []config.Family
	for _, f := range []config.Family{config.FamilyIPv4, config.FamilyIPv6} {
		if slices.ContainsFunc(insts, func(in config.Instance) bool { return in.Family() == f }) {
			fams = append(fams, f)
		}
	}
	if len(fams) == 0 {
		fams = []config.Family{config.FamilyIPv4}
	}
	return fams
}

// listenAll is listen for each family in fams at once, each for the
// instances advertising in it, the verdicts in fams' order.
func (d doctor) listenAll(ifi *net.Interface, fams []config.Family, insts []config.Instance) ([]Verdict, map[uint8]map[netip.Addr]*heard) {
	if len(fams) == 1 {
		return d.listen(ifi, fams[0], insts)
	}
	type result struct {
		vs   []Verdict
		seen map[uint8]map[netip.Addr]*heard
	}
	out := make([]result, len(fams))
	var wg sync.WaitGroup
	for i, fam := range fams {
		mine := slices.DeleteFunc(slices.Clone(insts), func(in config.Instance) bool { return in.Family() != fam })
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i].vs, out[i].seen = d.listen(ifi, fam, mine)
		}()
	}
	wg.Wait()
	var vs []Verdict
	seen := map[uint8]map[netip.Addr]*heard{}
	for _, r := range out {
		vs = append(vs, r.vs...)
		for vrid, hs := range r.seen {
			seen[vrid] = hs // a VRID is used once per interface
		}
	}
	return vs, seen
}

// carriesIPv6 reports whether any of the instances has an IPv6 VIP.
func carriesIPv6(insts []config.Instance) bool {
	return slices.ContainsFunc(insts, func(in config.Instance) bool {
		return slices.ContainsFunc(in.VIPs, func(v config.VIP) bool { return config.FamilyOf(v.Address.Addr()) == config.FamilyIPv6 })
	})
}

// sourceVerdict reports the address adverts leave from: the primary IPv4
// address, or over IPv6 the usable link-local (RFC 5798 §5.1.2).
func sourceVerdict(name string, fam config.Family, addrs []vip.Addr, configured map[netip.Addr]bool) (netip.Addr, Verdict) {
	skip := func(a netip.Addr) bool { return configured[a] }
	if fam == config.FamilyIPv6 {
		ll, ok := vip.LinkLocal(addrs, skip)
		if !ok {
			return ll, Verdict{Fail, fmt.Sprintf("interface %s has no usable IPv6 link-local address to send adverts from (its IPv6 instances stay in fault)", name),
				"turn IPv6 on (sysctl -w net.ipv6.conf." + name + ".disable_ipv6=0) with a link-local (addr_gen_mode not 1), and wait for duplicate address detection to finish"}
		}
		return ll, Verdict{OK, fmt.Sprintf("interface %s sends adverts from its link-local %s", name, ll), ""}
	}
	p, ok := vip.Primary(addrs, skip)
	if !ok {
		return p, Verdict{Fail, fmt.Sprintf("interface %s has no IPv4 address of its own to send adverts from", name),
			"give it one: ip addr add ADDR/LEN dev " + name}
	}
	return p, Verdict{OK, fmt.Sprintf("interface %s sends adverts from %s", name, p), ""}
}

// global6Verdict reports the address IPv6 unicast adverts to peers that
// are not link-locals leave from (config.Instance.SendsFromGlobal6): the
// interface's first usable global address (vip.Global6), as vipd picks it.
func global6Verdict(name string, addrs []vip.Addr, configured map[netip.Addr]bool) (netip.Addr, Verdict) {
	g, ok := vip.Global6(addrs, func(a netip.Addr) bool { return configured[a] })
	if !ok {
		return g, Verdict{Fail, fmt.Sprintf("interface %s has no usable global IPv6 address to send unicast adverts to its peers from (those instances stay in fault, no_global_address)", name),
			"give it one (ip -6 addr add ADDR/LEN dev " + name + "), or set source_address"}
	}
	return g, Verdict{OK, fmt.Sprintf("interface %s sends IPv6 unicast adverts to its peers from %s", name, g), ""}
}

// unowned reports whether a is an address of the interface that the
// "no vipd instance owns" warning is about: one of a family adverts use
// (fams) or that the instances carry VIPs of, not a link-local, not an
// advert source.
func unowned(a netip.Addr, sources map[netip.Addr]bool, fams []config.Family, configured map[netip.Addr]bool) bool {
	if sources[a] || configured[a] || a.IsLinkLocalUnicast() {
		return false
	}
	if slices.Contains(fams, config.FamilyOf(a)) {
		return true
	}
	for c := range configured {
		if config.FamilyOf(c) == config.FamilyOf(a) {
			return true
		}
	}
	return false
}

// ipv6Settings reports the IPv6 sysctls that matter to an interface with
// IPv6 VIPs or IPv6 adverts: IPv6 on, duplicate address detection (vipd
// adds its VIPs without it; the link-local waits for it after link up),
// and forwarding, which sets the Router flag of vipd's neighbour
// advertisements.
func (d doctor) ipv6Settings(ifname string) []Verdict {
	var vs []Verdict
	if v, err := d.sysctl("net.ipv6.conf." + ifname + ".disable_ipv6"); err == nil && v != 0 {
		return append(vs, Verdict{Fail, fmt.Sprintf("IPv6 is disabled on %s: its IPv6 VIPs cannot be added", ifname),
			"sysctl -w net.ipv6.conf." + ifname + ".disable_ipv6=0"})
	} else if err != nil {
		return append(vs, Verdict{Fail, fmt.Sprintf("cannot read %s's IPv6 settings (%v): is IPv6 off in this kernel?", ifname, err), "boot without ipv6.disable=1"})
	}
	if dad, err := d.sysctl("net.ipv6.conf." + ifname + ".accept_dad"); err == nil {
		if dad > 0 {
			vs = append(vs, Verdict{OK, fmt.Sprintf("accept_dad is %d on %s: the link-local waits for duplicate address detection after link up (about a second); vipd adds VIPs without it", dad, ifname), ""})
		} else {
			vs = append(vs, Verdict{OK, fmt.Sprintf("accept_dad is 0 on %s: no duplicate address detection", ifname), ""})
		}
	}
	if fw, err := d.sysctl("net.ipv6.conf." + ifname + ".forwarding"); err == nil {
		if fw != 0 {
			vs = append(vs, Verdict{OK, fmt.Sprintf("IPv6 forwarding is on on %s: vipd's neighbour advertisements carry the Router flag", ifname), ""})
		} else {
			vs = append(vs, Verdict{OK, fmt.Sprintf("IPv6 forwarding is off on %s: vipd's neighbour advertisements carry no Router flag (a host, as keepalived sends)", ifname), ""})
		}
	}
	return vs
}

// hear6 records one datagram of the IPv6 advert socket if it is a valid
// advert with hop limit 255.
func hear6(seen map[uint8]map[netip.Addr]*heard, a *vrrp.Advert, payload, name, oob []byte) {
	src, _, _ := vrrp.SourceIPv6(name)
	b, src, dst, hops, ok := vrrp.ParseIPv6(payload, src, oob)
	if !ok || hops != vrrp.HopLimit {
		return
	}
	if err := a.UnmarshalIPv6(b, src, dst); err != nil {
		return
	}
	record(seen, a, src)
}
