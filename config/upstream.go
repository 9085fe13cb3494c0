package config

import "net/netip"

// The upstream check (upstreams): after a takeover the new master sends
// each upstream a targeted ARP request with the VIP as sender, and checks
// with an ICMP echo from the VIP that the upstream now sends the VIP's
// traffic here. Absent, the upstream is the default gateway of the
// instance's interface; an empty list turns the check off.

// upstreams reads an instance's upstreams into in, with the line of each.
func (p *parser) upstreams(f field, in *Instance) []int {
	items, ok := p.list(f)
	if !ok {
		return nil
	}
	if len(items) == 0 {
		in.NoUpstreams = true
		return nil
	}
	var lines []int
	first := make(map[netip.Addr]int)
	for _, item := range items {
		s, ok := p.str(field{name: "upstreams", line: item.Line, node: resolve(item)})
		if !ok {
			continue
		}
		a, problem := parsePeer(s)
		if problem != "" || a.Is6() {
			// parsePeer speaks of peers; say what the address is for here.
			switch {
			case a.IsValid() && a.Is6():
				problem = "IPv6 upstreams are not supported yet"
			case a.IsValid() && a.IsMulticast():
				problem = "a multicast address cannot be an upstream; name the router's own address"
			case a.IsValid():
				problem = "not a unicast address of a neighbour"
			default:
				problem = "not an IPv4 address (e.g. 198.18.0.1)"
			}
			p.errorf(item.Line, "upstream %q: %s", s, problem)
			continue
		}
		if line, dup := first[a]; dup {
			p.errorf(item.Line, "upstream %s is listed twice in this instance (first at line %d)", a, line)
			continue
		}
		first[a] = item.Line
		in.Upstreams = append(in.Upstreams, a)
		lines = append(lines, item.Line)
	}
	return lines
}

// crossCheckUpstreams refuses an upstream that is a VIP of any instance or
// the instance's own source_address: the check asks a neighbour.
func (p *parser) crossCheckUpstreams(ins []parsedInstance) {
	vips := make(map[netip.Addr]string)
	for _, in := range ins {
		for _, v := range in.VIPs {
			vips[v.Address.Addr()] = in.Name
		}
	}
	for _, in := range ins {
		for k, a := range in.Upstreams {
			if k >= len(in.upstreamLines) {
				break
			}
			if owner, ok := vips[a]; ok {
				p.errorf(in.upstreamLines[k], "upstream %s is a VIP (instance %s); name the router or firewall in front of the VIPs", a, owner)
			}
			if a == in.SourceAddress {
				p.errorf(in.upstreamLines[k], "upstream %s is this instance's source_address; name the router or firewall in front of the VIPs", a)
			}
		}
	}
}
