package convert

import (
	"net/netip"
	"strings"

	"github.com/vipd/vipd/internal/kaconf"
)

// IPv6 in keepalived and in vipd. keepalived gives an instance a family from
// the first of its virtual_ipaddress entries, unicast_peer entries or
// native_ipv6, ignores virtual_ipaddress and unicast_peer entries of the
// other family, and takes virtual_ipaddress_excluded of either. vipd's
// instance runs over IPv6 when its advertised VIPs are IPv6 and carries the
// other family only unadvertised (advertise: false), which is what
// virtual_ipaddress_excluded becomes. An IPv6 keepalived instance runs
// version 3 unless version 2 is set (non-standard VRRPv2 over IPv6, which
// vipd does not do).

// msgOtherFamilyVIP reports a virtual_ipaddress entry keepalived ignores.
const msgOtherFamilyVIP = "not of the instance's address family, which keepalived takes from its first address: keepalived ignores it in virtual_ipaddress (it belongs in virtual_ipaddress_excluded, which vipd carries as advertise: false); left out"

// family is an instance's address family as keepalived decides it.
type family uint8

const (
	familyUnset family = iota
	familyIPv4
	familyIPv6
)

func (f family) String() string {
	if f == familyIPv6 {
		return "IPv6"
	}
	return "IPv4"
}

func familyOf(a netip.Addr) family {
	if a.Unmap().Is4() {
		return familyIPv4
	}
	return familyIPv6
}

// claimFamily applies keepalived's rule to an address of a
// virtual_ipaddress or unicast_peer entry n: the first one sets the
// instance's family, and an entry of the other family is reported and
// left out (false), as keepalived ignores it.
func (c *conv) claimFamily(in *instance, n *kaconf.Node, a netip.Addr, what string) bool {
	f := familyOf(a)
	switch in.family {
	case familyUnset:
		in.family = f
		return true
	case f:
		return true
	}
	if what == "VIP" {
		c.drop(n, msgOtherFamilyVIP)
	} else {
		c.drop(n, "an %s %s in an %s instance: keepalived skips it; left out", f, what, in.family)
	}
	return false
}

// nativeIPv6 handles native_ipv6: the instance is IPv6 even before (or
// without) an IPv6 address; keepalived refuses it after IPv4 ones.
func (c *conv) nativeIPv6(in *instance, n *kaconf.Node) {
	if in.family == familyIPv4 {
		c.warn(n, "keepalived refuses native_ipv6 in an instance with IPv4 addresses and ignores it")
		return
	}
	in.family = familyIPv6
	in.nativeIPv6 = n
}

// finishFamily settles what depends on the family once the instance is
// read: its version, its source address, and whether vipd, whose family
// follows the advertised VIPs, runs it over the same family as keepalived.
// versionSet says whether version or vrrp_version was given.
func (c *conv) finishFamily(in *instance, versionSet bool) {
	if in.family == familyUnset {
		in.family = familyIPv4
	}
	if in.sourceAddr.IsValid() {
		if familyOf(in.sourceAddr) != in.family {
			c.drop(in.sourceNode, "an %s source address in an %s instance: keepalived cannot send from it; left out", familyOf(in.sourceAddr), in.family)
			in.source = ""
		} else if in.family == familyIPv6 && len(in.peers) == 0 && !in.sourceAddr.IsLinkLocalUnicast() {
			c.drop(in.sourceNode, "multicast adverts over IPv6 go from a link-local address (RFC 5798), which vipd takes from the interface; left out")
			in.source = ""
		}
	}
	if in.family != familyIPv6 {
		return
	}
	switch {
	case in.version == 2 && versionSet:
		c.drop(in.node, "keepalived sends non-standard VRRPv2 over IPv6 for this instance; vipd runs IPv6 instances with version 3 only (RFC 5798), so its keepalived peers need version 3")
		in.version = 3
	case in.version == 2:
		in.version = 3
		in.notes["version"] = []string{"an IPv6 instance: keepalived and vipd run version 3 over IPv6"}
	}
	advertised6, advertised := false, false
	for _, v := range in.vips {
		if v.excluded {
			continue
		}
		advertised = true
		if a, ok := parseAddr(stripLen(v.addr)); ok && familyOf(a) == familyIPv6 {
			advertised6 = true
		}
	}
	if !advertised6 {
		what := "no VIP"
		if advertised {
			what = "no IPv6 VIP"
		}
		c.drop(in.node, "keepalived runs this instance over IPv6 but it has %s in virtual_ipaddress; a vipd instance runs over IPv6 only when its advertised VIPs are IPv6, so the converted one runs over IPv4", what)
	} else if in.nativeIPv6 != nil {
		in.note("", "native_ipv6: a vipd instance whose advertised VIPs are all IPv6 runs over IPv6 with no key for it")
	}
}

// ipv6VIP checks the IPv6 VIP pfx of entry a as vipd would and returns the
// prefix to write: vipd refuses the subnet-router anycast address, which
// keepalived adds, so that is written as a /128.
func (c *conv) ipv6VIP(a *kaconf.Node, pfx netip.Prefix) netip.Prefix {
	addr := pfx.Addr()
	if pfx.Bits() < 127 && addr == pfx.Masked().Addr() {
		c.drop(a, "the subnet-router anycast address of %s, which vipd refuses as a VIP; written as %s/128, so the VIP brings no on-link route for %s", pfx.Masked(), addr, pfx.Masked())
		return netip.PrefixFrom(addr, 128)
	}
	return pfx
}

// stripLen is the address of an "A[/len]" entry.
func stripLen(s string) string {
	a, _, _ := strings.Cut(s, "/")
	return a
}
