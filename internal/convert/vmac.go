package convert

import (
	"slices"
	"strconv"
	"strings"

	"github.com/vipd/vipd/internal/kaconf"
)

// keepalived's virtual MAC keywords and what vipd makes of them:
//
//	use_vmac [[name] NAME] [MAC] [netlink_notify_msg] [group G]
//	    virtual_mac: true, virtual_mac_name: NAME. vipd's macvlan always
//	    has RFC 5798's 00:00:5e:00:01:<VRID> (00:00:5e:00:02:<VRID> for an
//	    IPv6 instance, as keepalived) and the parent's link group.
//	use_vmac_addr, a VIP's "use_vmac"
//	    macvlans for VIPs on other interfaces: vipd makes one macvlan, on
//	    the instance's interface.
//	vmac_xmit_base
//	    adverts from the parent's MAC: vipd sends them from the virtual MAC.
//	use_ipvlan [[name] NAME] [ADDRESS] [bridge|private|vepa] [group G]
//	    an ipvlan has the parent's MAC, as the parent itself: vipd puts the
//	    VIPs on the interface; the ipvlan's own address is not carried.

// vmacSettings is what an instance's virtual MAC keywords say.
type vmacSettings struct {
	on       bool
	name     string // "" for vipd's default
	nameNode *kaconf.Node
	addr     *kaconf.Node   // use_vmac_addr
	vipVMAC  []*kaconf.Node // virtual_ipaddress lines with use_vmac
}

// defaultVMACPrefix is keepalived's vmac_prefix when global_defs sets none.
const defaultVMACPrefix = "vrrp"

// validIfname is keepalived's (and the kernel's, and vipd's) test of an
// interface name.
func validIfname(s string) bool {
	if s == "" || len(s) > 15 || s == "." || s == ".." {
		return false
	}
	return !strings.ContainsAny(s, "/: \t\n\v\f\r")
}

// useVMAC reads an instance's use_vmac line.
func (c *conv) useVMAC(in *instance, k *kaconf.Node) {
	in.vmac.on = true
	for i := 0; i < len(k.Args); i++ {
		a := k.Args[i]
		switch {
		case strings.Contains(a, ":"):
			// keepalived refuses RFC 5798's own prefix here and then uses
			// 00:00:5e:00:01:<VRID>, which is what vipd does.
			if strings.HasPrefix(strings.ToLower(a), "00:00:5e:00:01") || strings.HasPrefix(strings.ToLower(a), "00:00:5e:00:02") {
				c.warn(k, "keepalived ignores %s (an RFC 5798 MAC cannot be set) and uses 00:00:5e:00:01:<VRID> (00:00:5e:00:02:<VRID> over IPv6), as vipd does", a)
				continue
			}
			c.drop(k, "vipd's macvlan always has RFC 5798's MAC 00:00:5e:00:01:<VRID> (00:00:5e:00:02:<VRID> over IPv6); the MAC %s is not used, so clients of a mixed pair see the MAC change at a failover", a)
		case a == "netlink_notify_msg":
			c.warn(k, "netlink_notify_msg works around keepalived's own netlink handling; vipd needs nothing of the kind")
		case a == "group":
			g := ""
			if i+1 < len(k.Args) {
				i++
				g = k.Args[i]
			}
			c.drop(k, "vipd makes the macvlan in its parent's link group; group %s is not set", g)
		default:
			if a == "name" && i+1 < len(k.Args) {
				i++
				a = k.Args[i]
			}
			switch {
			case in.vmac.name != "":
				c.warn(k, "a second name %q; keepalived keeps the first, %q, and so does the converted file", a, in.vmac.name)
			case !validIfname(a):
				c.warn(k, "%q is not a valid interface name; keepalived ignores it and so does the converted file (vipd's default name)", a)
			default:
				in.vmac.name, in.vmac.nameNode = a, k
			}
		}
	}
}

// useIPVLAN reads an instance's use_ipvlan line: an L2 ipvlan answers with
// its parent's MAC, as vipd does with the VIPs on the interface itself.
func (c *conv) useIPVLAN(in *instance, k *kaconf.Node) {
	var name, addr string
	for i := 0; i < len(k.Args); i++ {
		a := k.Args[i]
		switch {
		case a == "bridge" || a == "private" || a == "vepa":
		case a == "group":
			i++
		case a == "name" && i+1 < len(k.Args):
			i++
			name = k.Args[i]
		default:
			if p, _, _ := strings.Cut(a, "/"); strings.ContainsAny(a, ".:") {
				if _, ok := parseAddr(p); ok {
					addr = a
					continue
				}
			}
			if name == "" {
				name = a
			}
		}
	}
	what := "an ipvlan"
	if name != "" {
		what = "the ipvlan " + name
	}
	c.warn(k, "vipd makes no ipvlan: the VIPs go on %s itself, which answers with the same MAC as %s would (virtual_mac: true gives the VRRP virtual MAC instead)", in.iface, what)
	if addr != "" {
		c.drop(k, "%s is not added by vipd; it sends adverts from %s's primary address unless source_address names one the host already has", addr, in.iface)
	}
}

// finishVMAC judges, once the whole instance is read, what depends on the
// instance's interface and VIPs: use_vmac_addr and the VIPs' own use_vmac
// (vipd makes a macvlan only on the instance's interface), and the name.
func (c *conv) finishVMAC(in *instance) {
	var elsewhere []string
	for _, v := range in.vips {
		if v.iface != "" {
			elsewhere = append(elsewhere, v.addr+" on "+v.iface)
		}
	}
	if in.vmac.addr != nil {
		if len(elsewhere) > 0 {
			c.drop(in.vmac.addr, "vipd makes a macvlan only on the instance's interface; a VIP on another interface keeps that interface's MAC: %s", strings.Join(elsewhere, ", "))
		} else {
			c.warn(in.vmac.addr, "no VIP of this instance is on another interface; nothing to carry over")
		}
	}
	for _, a := range in.vmac.vipVMAC {
		addrText := a.Keyword
		i := slices.IndexFunc(in.vips, func(v vip) bool { return sameAddr(v.addr, addrText) })
		switch {
		case i < 0:
		case in.vips[i].iface != "" && in.vmac.addr != nil:
			// Reported with use_vmac_addr.
		case in.vips[i].iface != "":
			c.drop(a, "use_vmac: vipd makes a macvlan only on the instance's interface; %s stays on %s with its own MAC", in.vips[i].addr, in.vips[i].iface)
		case !in.vmac.on:
			c.drop(a, "use_vmac: vipd puts a VIP on a macvlan only with the instance's virtual_mac (use_vmac on the instance); %s stays on %s with its own MAC", in.vips[i].addr, in.iface)
		}
	}
	if !in.vmac.on {
		return
	}
	if n := in.vmac.name; n != "" && (n == in.iface || slices.ContainsFunc(in.vips, func(v vip) bool { return v.iface == n })) {
		c.warn(in.vmac.nameNode, "the macvlan's name %s is an interface the instance uses; keepalived ignores it and so does the converted file (vipd's default name)", n)
		in.vmac.name, in.vmac.nameNode = "", nil
	}
	if in.vmac.name == "" {
		in.note("virtual_mac", "use_vmac without a name: keepalived names the macvlan %s.%d, vipd %s (add virtual_mac_name if scripts use keepalived's)", c.vmacPrefix, in.vrid, defaultVMACName(in))
	}
}

// defaultVMACName is the name vipd gives in's macvlan without
// virtual_mac_name: vrrp4.<VRID>, or vrrp6.<VRID> for an IPv6 instance.
func defaultVMACName(in *instance) string {
	if in.family == familyIPv6 {
		return "vrrp6." + strconv.Itoa(in.vrid)
	}
	return "vrrp4." + strconv.Itoa(in.vrid)
}

// vmacNames gives the instances with a virtual MAC distinct macvlan names,
// as keepalived does: vipd refuses two instances with one name (two
// instances on one VRID on two interfaces, or one name written twice).
func (c *conv) vmacNames() {
	used := map[string]bool{}
	for _, in := range c.instances {
		used[in.iface] = true
		for _, v := range in.vips {
			if v.iface != "" {
				used[v.iface] = true
			}
		}
	}
	for _, in := range c.instances {
		if !in.vmac.on {
			continue
		}
		name := in.vmac.name
		if name == "" {
			name = defaultVMACName(in)
		}
		if !used[name] {
			used[name] = true
			continue
		}
		for i := 2; ; i++ {
			alt := defaultVMACName(in) + "." + strconv.Itoa(i)
			if !used[alt] {
				if in.vmac.nameNode != nil {
					c.warn(in.vmac.nameNode, "the macvlan name %s is taken by another instance or interface; keepalived ignores it; the converted file names it %s", name, alt)
				} else {
					in.note("virtual_mac", "%s is another instance's macvlan: named %s", defaultVMACName(in), alt)
				}
				in.vmac.name = alt
				used[alt] = true
				break
			}
		}
	}
}
