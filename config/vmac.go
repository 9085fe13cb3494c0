package config

import (
	"net"
	"strconv"
)

// The virtual MAC (virtual_mac, keepalived's use_vmac): vipd makes a
// macvlan on the instance's interface with RFC 5798's MAC for the
// instance's family, 00:00:5e:00:01:<VRID> over IPv4 and
// 00:00:5e:00:02:<VRID> over IPv6, and the VIPs that live on the
// instance's interface live on that macvlan instead (those of the other
// family too, with the same MAC). virtual_mac_name names the macvlan; by
// default it is "vrrp4.<VRID>" or "vrrp6.<VRID>".

// DefaultVirtualMACName is the macvlan's name for vrid when
// virtual_mac_name is not given, for an instance running over fam.
func DefaultVirtualMACName(vrid uint8, fam Family) string {
	if fam == FamilyIPv6 {
		return "vrrp6." + strconv.Itoa(int(vrid))
	}
	return "vrrp4." + strconv.Itoa(int(vrid))
}

// VirtualMAC is RFC 5798's virtual router MAC for vrid over fam:
// 00:00:5e:00:01:<VRID> for IPv4 (§7.3), 00:00:5e:00:02:<VRID> for IPv6.
func VirtualMAC(vrid uint8, fam Family) net.HardwareAddr {
	if fam == FamilyIPv6 {
		return net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x02, vrid}
	}
	return net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x01, vrid}
}

// virtualMAC reads virtual_mac and virtual_mac_name into pi.
func (p *parser) virtualMAC(fs map[string]field, pi *parsedInstance) {
	in := &pi.Instance
	if f, ok := fs["virtual_mac"]; ok {
		if b, ok := p.boolean(f); ok {
			in.VirtualMAC, pi.vmacLine = b, f.line
		}
	}
	f, ok := fs["virtual_mac_name"]
	if !ok {
		if in.VirtualMAC && in.VRID != 0 {
			// The VIPs are parsed: the family is known.
			in.VirtualMACName = DefaultVirtualMACName(in.VRID, in.Family())
		}
		return
	}
	s, ok := p.str(f)
	if !ok {
		return
	}
	switch {
	case !validIfname(s):
		p.errorf(f.line, "virtual_mac_name: %q is %s", s, notIfname)
	case !in.VirtualMAC:
		p.errorf(f.line, "virtual_mac_name: %q names the macvlan of virtual_mac, which is not on in this instance (add virtual_mac: true or remove virtual_mac_name)", s)
	default:
		in.VirtualMACName, pi.vmacLine = s, f.line
	}
}

// crossCheckVirtualMAC refuses two instances whose macvlans would have the
// same name, and a macvlan name that is an interface the configuration
// names (an instance's interface or a VIP's).
func (p *parser) crossCheckVirtualMAC(ins []parsedInstance) {
	used := make(map[string]bool)
	for _, in := range ins {
		used[in.Interface] = true
		for _, v := range in.VIPs {
			if v.Interface != "" {
				used[v.Interface] = true
			}
		}
	}
	first := make(map[string]int)
	for i, in := range ins {
		name := in.VirtualMACName
		if name == "" {
			continue
		}
		if j, dup := first[name]; dup {
			p.errorf(in.vmacLine, "virtual_mac: instance %s's macvlan %s has the name of instance %s's (line %d); set virtual_mac_name on one of them",
				in.Name, name, ins[j].Name, ins[j].Line)
			continue
		}
		first[name] = i
		if used[name] {
			p.errorf(in.vmacLine, "virtual_mac: instance %s's macvlan %s has the name of an interface this configuration uses; set another virtual_mac_name", in.Name, name)
		}
	}
}
