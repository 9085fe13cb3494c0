package doctor

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/vipd/vipd/config"
	"github.com/vipd/vipd/vip"
	"github.com/vipd/vipd/vrrp"
)

// advertFamily is the family the instances advertise in on one interface
// (config.Load refuses two on one interface): IPv6 when the first one runs
// over IPv6.
func advertFamily(insts []config.Instance) config.Family {
	if len(insts) > 0 && insts[0].Family() == config.FamilyIPv6 {
		return config.FamilyIPv6
	}
	return config.FamilyIPv4
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

// unowned reports whether a is an address of the interface that the
// "no vipd instance owns" warning is about: one of the family adverts use
// (fam) or that the instances carry VIPs of, not a link-local, not the
// advert source.
func unowned(a netip.Addr, source netip.Addr, fam config.Family, configured map[netip.Addr]bool) bool {
	if a == source || configured[a] || a.IsLinkLocalUnicast() {
		return false
	}
	if config.FamilyOf(a) == fam {
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
