package config

import (
	"net/netip"
	"strings"
)

// Network placement: the source of adverts (source_address), the link and
// label of each VIP (vips[].interface, vips[].label), and auth_pass cut to
// the 8 bytes VRRP version 2 carries, as keepalived does.

// authPassMax is what a version 2 advert's authentication data holds.
const authPassMax = 8

// authPass returns the password as sent: a longer one is cut to its first
// 8 bytes with a warning (keepalived does the same, so a peer configured
// with the whole string sends the same 8 bytes).
func (p *parser) authPass(f field, s string) string {
	if len(s) <= authPassMax {
		return s
	}
	p.warnf(f.line, "auth_pass: %d bytes; VRRP version 2 carries 8, so only the first 8 (%q) are sent and checked, as keepalived does", len(s), s[:authPassMax])
	return s[:authPassMax]
}

// sourceAddress reads an instance's source_address, with its line; on an
// error it reports it and returns the zero Addr (the primary address).
func (p *parser) sourceAddress(f field) (netip.Addr, int) {
	s, ok := p.str(f)
	if !ok {
		return netip.Addr{}, 0
	}
	a, err := netip.ParseAddr(s)
	problem := ""
	switch {
	case err != nil:
		problem = "not an IP address (e.g. 198.18.0.21 or fe80::21)"
	case a.Is6():
		problem = addr6Problem(a, "a source")
	case a.IsUnspecified():
		problem = "the unspecified address cannot be a source; omit source_address for the interface's primary address"
	case a.IsLoopback():
		problem = "a loopback address cannot be a source"
	case a.IsMulticast():
		problem = "a multicast address cannot be a source"
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		problem = "the broadcast address cannot be a source"
	}
	if problem != "" {
		p.errorf(f.line, "source_address %q: %s", s, problem)
		return netip.Addr{}, 0
	}
	return a, f.line
}

// vipPlace reads a VIP's interface and label into v. own is the instance's
// interface ("" when it is itself wrong); a VIP on it keeps Interface "".
func (p *parser) vipPlace(fs map[string]field, own string, v *VIP) {
	ifname := own
	ifOK := true
	if f, ok := fs["interface"]; ok {
		if s, ok := p.str(f); ok {
			switch {
			case !validIfname(s):
				p.errorf(f.line, "vip interface: %q is %s", s, notIfname)
				ifOK = false
			case s != own:
				v.Interface = s
				ifname = s
			}
		} else {
			ifOK = false
		}
	}
	f, ok := fs["label"]
	if !ok {
		return
	}
	s, ok := p.str(f)
	if !ok {
		return
	}
	if problem := labelProblem(s, ifname, ifOK && ifname != ""); problem != "" {
		p.errorf(f.line, "vip label %q: %s", s, problem)
		return
	}
	v.Label = s
}

// labelProblem says what is wrong with an address label for a VIP on
// interface ifname, as a phrase. The kernel keeps at most 15 bytes
// (IFNAMSIZ); iproute2 and keepalived show it as the interface name, ':'
// and a suffix (the alias names of ifconfig). checkPrefix is false when the
// interface is unknown (itself wrong), and then only the form is checked.
func labelProblem(s, ifname string, checkPrefix bool) string {
	if len(s) > 15 {
		return "at most 15 bytes (the kernel's limit for a label)"
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c == 0x7f || c == '/' {
			return "no whitespace, control characters or '/'"
		}
	}
	if checkPrefix {
		if !strings.HasPrefix(s, ifname+":") || len(s) == len(ifname)+1 {
			return "must be the VIP's interface name, then ':', then a suffix (e.g. " + ifname + ":1)"
		}
		return ""
	}
	i := strings.IndexByte(s, ':')
	if i <= 0 || i == len(s)-1 {
		return "must be the VIP's interface name, then ':', then a suffix (e.g. eth0:1)"
	}
	return ""
}

// crossCheckSources refuses a source_address that is a VIP (it would move
// with the VIP, and adverts would come from the master's address) or one
// of the instance's own unicast peers.
func (p *parser) crossCheckSources(ins []parsedInstance) {
	vips := make(map[netip.Addr]string)
	for _, in := range ins {
		for _, v := range in.VIPs {
			vips[v.Address.Addr()] = in.Name
		}
	}
	for _, in := range ins {
		a := in.SourceAddress
		if !a.IsValid() {
			continue
		}
		if owner, ok := vips[a]; ok {
			p.errorf(in.sourceLine, "source_address %s is a VIP (instance %s); adverts must come from an address of this node that stays", a, owner)
		}
		for _, peer := range in.UnicastPeers {
			if peer == a {
				p.errorf(in.sourceLine, "source_address %s is also listed in unicast_peers; a peer is another node's address", a)
			}
		}
	}
}
