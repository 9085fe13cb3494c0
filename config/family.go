package config

import (
	"fmt"
	"net/netip"
)

// The address family an instance runs over. It follows the instance's
// VIPs, with no key of its own: an instance whose advertised VIPs are all
// IPv6 runs VRRPv3 over IPv6 (RFC 5798 §5.1.2); any other runs over IPv4.
// VIPs of the other family move with the master like the rest but are never
// listed in adverts (an advert carries one family), as keepalived's
// virtual_ipaddress_excluded does: the parser marks them NotAdvertised.

// Family is an address family, IPv4 or IPv6.
type Family uint8

const (
	FamilyIPv4 Family = 4
	FamilyIPv6 Family = 6
)

// String returns "IPv4" or "IPv6".
func (f Family) String() string {
	switch f {
	case FamilyIPv4:
		return "IPv4"
	case FamilyIPv6:
		return "IPv6"
	}
	return fmt.Sprintf("Family(%d)", uint8(f))
}

// FamilyOf returns the family of a; an IPv4-mapped IPv6 address counts as
// IPv4.
func FamilyOf(a netip.Addr) Family {
	if a.Unmap().Is4() {
		return FamilyIPv4
	}
	return FamilyIPv6
}

// Family returns the family the instance runs VRRP over: IPv6 when it has
// VIPs and those it advertises (all of them, if it advertises none) are all
// IPv6; otherwise IPv4. An instance without VIPs runs over IPv4.
func (in *Instance) Family() Family {
	advertised, all := 0, 0
	v6Advertised, v6All := 0, 0
	for _, v := range in.VIPs {
		six := FamilyOf(v.Address.Addr()) == FamilyIPv6
		all++
		if six {
			v6All++
		}
		if !v.NotAdvertised {
			advertised++
			if six {
				v6Advertised++
			}
		}
	}
	switch {
	case advertised > 0 && v6Advertised == advertised:
		return FamilyIPv6
	case advertised == 0 && all > 0 && v6All == all:
		return FamilyIPv6
	}
	return FamilyIPv4
}

// SendsFromGlobal6 reports whether the instance's adverts come from its
// interface's first global IPv6 address: an IPv6 instance without
// source_address whose unicast_peers are not all link-locals (a peer
// accepts only adverts from an address it lists, and it lists the
// address it sends to).
func (in *Instance) SendsFromGlobal6() bool {
	if in.SourceAddress.IsValid() || in.Family() != FamilyIPv6 {
		return false
	}
	for _, p := range in.UnicastPeers {
		if !p.IsLinkLocalUnicast() {
			return true
		}
	}
	return false
}

// family applies the instance's family once it is parsed: VIPs of the other
// family are not advertised (an explicit advertise: true on one is an
// error), and version, v3_checksum, unicast_peers and source_address must
// suit the family. fs are the instance's fields, for the lines of version
// and v3_checksum.
func (p *parser) family(pi *parsedInstance, fs map[string]field) {
	in := &pi.Instance
	fam := in.Family()
	why := "its VIPs are IPv4"
	switch {
	case fam == FamilyIPv6:
		why = "its advertised VIPs are all IPv6"
	case len(in.VIPs) == 0:
		why = "an instance without VIPs runs over IPv4"
	}
	for i := range in.VIPs {
		v := &in.VIPs[i]
		a := v.Address.Addr()
		if v.Label != "" && FamilyOf(a) == FamilyIPv6 {
			p.errorf(v.Line, "VIP %s: label %s: Linux keeps no label on an IPv6 address; drop the label", a, v.Label)
		}
		if FamilyOf(a) == fam {
			continue
		}
		if p.advertiseTrue[v.Line] {
			p.errorf(v.Line, "VIP %s is %s but the instance runs over %s (%s): an advert lists only addresses of its own family; drop advertise: true (the address still moves with the master)", a, FamilyOf(a), fam, why)
		}
		v.NotAdvertised = true
	}
	if fam != FamilyIPv6 {
		p.checkPeerFamilies(pi, fam, why)
		return
	}
	if f, ok := fs["version"]; ok && in.Version == 2 {
		p.errorf(f.line, "version: 2 cannot run over IPv6 (VRRPv2 is IPv4 only) and this instance runs over IPv6 (%s); use version 3", why)
	}
	if f, ok := fs["v3_checksum"]; ok && in.V3Checksum == ChecksumMessageOnly {
		p.errorf(f.line, "v3_checksum: message-only applies to IPv4; over IPv6 the checksum always covers the pseudo-header and this instance runs over IPv6 (%s)", why)
	}
	p.checkPeerFamilies(pi, fam, why)
	if s := in.SourceAddress; s.IsValid() && FamilyOf(s) == FamilyIPv6 && len(in.UnicastPeers) == 0 && !s.IsLinkLocalUnicast() {
		p.errorf(pi.sourceLine, "source_address %s: multicast adverts over IPv6 must come from a link-local address (RFC 5798 §5.1.2); omit source_address for the interface's link-local, or use unicast_peers", s)
	}
}

// checkPeerFamilies reports unicast peers and a source address of the
// other family than the instance's.
func (p *parser) checkPeerFamilies(pi *parsedInstance, fam Family, why string) {
	for k, a := range pi.UnicastPeers {
		if FamilyOf(a) != fam {
			p.errorf(pi.peerLines[k], "unicast peer %s is %s but the instance runs over %s (%s); adverts go to peers of the instance's family", a, FamilyOf(a), fam, why)
		}
	}
	if s := pi.SourceAddress; s.IsValid() && FamilyOf(s) != fam {
		p.errorf(pi.sourceLine, "source_address %s is %s but the instance runs over %s (%s)", s, FamilyOf(s), fam, why)
	}
}

// vip6Problem says what is wrong with an IPv6 VIP, if anything, as a phrase.
// A bare address is a /128.
func vip6Problem(pfx netip.Prefix) string {
	a := pfx.Addr()
	if p := addr6Problem(a, "a VIP"); p != "" {
		return p
	}
	if pfx.Bits() == 0 {
		return "a /0 prefix would cover every address"
	}
	if pfx.Bits() < 127 && a == pfx.Masked().Addr() {
		// RFC 4291 §2.6.1: every router on the link answers it.
		return "this is the subnet-router anycast address of " + pfx.Masked().String()
	}
	return ""
}

// addr6Problem says what keeps the IPv6 address a from being what (a VIP, a
// peer, a source), if anything.
func addr6Problem(a netip.Addr, what string) string {
	switch {
	case a.Zone() != "":
		return "a zone (%" + a.Zone() + ") cannot be given; the instance's interface is the scope"
	case a.Is4In6():
		return "an IPv4-mapped IPv6 address; write the IPv4 address " + a.Unmap().String()
	case a.IsUnspecified():
		return "the unspecified address cannot be " + what
	case a.IsLoopback():
		return "a loopback address cannot be " + what
	case a.IsMulticast():
		return "a multicast address cannot be " + what
	}
	return ""
}

// markAdvertised records that the VIP at line was written with advertise:
// true.
func (p *parser) markAdvertised(line int) {
	if p.advertiseTrue == nil {
		p.advertiseTrue = make(map[int]bool)
	}
	p.advertiseTrue[line] = true
}
