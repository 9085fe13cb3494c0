package doctor

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/vipd/vipd/config"
)

// The virtual MAC checks (instances with virtual_mac): the kernel can make
// a macvlan; the macvlan, when it exists, is vipd's, on the right parent,
// with RFC 5798's MAC and in bridge mode; and the sysctls that keep
// clients on the virtual MAC. vipd makes the macvlan and raises the
// sysctls at start and undoes both at stop, so with no macvlan (vipd not
// running) lower values are only reported.

// virtualMAC is RFC 5798's virtual router MAC of in: 00:00:5e:00:01:<VRID>
// for an IPv4 instance, 00:00:5e:00:02:<VRID> for an IPv6 one.
func virtualMAC(in config.Instance) net.HardwareAddr {
	return config.VirtualMAC(in.VRID, in.Family())
}

// vmacAliasPrefix marks the macvlans vipd makes (vrrp/vmac.go).
const vmacAliasPrefix = "vipd:"

// vmacLink is what the host says about a link with the macvlan's name.
type vmacLink struct {
	kind   string // netlink's type: "macvlan", "dummy", ...
	mode   netlink.MacvlanMode
	mac    net.HardwareAddr
	parent int // parent link's index
	alias  string
	up     bool           // administratively up
	addrs6 []netip.Prefix // its IPv6 addresses
}

// lookupVMAC reads the link called name; nil when there is none.
func lookupVMAC(name string) (*vmacLink, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil, nil
		}
		return nil, err
	}
	a := l.Attrs()
	v := &vmacLink{kind: l.Type(), mac: a.HardwareAddr, parent: a.ParentIndex, alias: a.Alias, up: a.Flags&net.FlagUp != 0}
	if mv, ok := l.(*netlink.Macvlan); ok {
		v.mode = mv.Mode
	}
	as, err := netlink.AddrList(l, netlink.FAMILY_V6)
	if err != nil {
		return nil, err
	}
	for _, a := range as {
		if p, ok := netipx(a.IPNet); ok {
			v.addrs6 = append(v.addrs6, p)
		}
	}
	return v, nil
}

// vmacParentSysctl is one sysctl vipd raises on a virtual-MAC parent.
type vmacParentSysctl struct {
	key  string
	want int
	why  string
}

var vmacParentSysctls = []vmacParentSysctl{
	{"arp_ignore", 1, "the parent answers ARP only for its own addresses, so it never answers for a VIP (which is on the macvlan) with its real MAC"},
	{"arp_filter", 1, "the parent answers ARP only when its route back to the asker leaves through it"},
	{"arp_announce", 2, "the host's own ARP requests never give a VIP as sender with the parent's MAC; without it clients that cache such a request leave the virtual MAC (keepalived's use_vmac leaves this out)"},
}

// vmacMacvlanSysctls are the ones vipd sets on the macvlan itself.
var vmacMacvlanSysctls = []vmacParentSysctl{
	{"arp_ignore", 1, "the macvlan does not answer for the parent's addresses with the virtual MAC"},
	{"arp_announce", 2, "ARP requests from the macvlan use a VIP as sender, never the parent's address"},
}

// effective is the value the kernel acts on: arp_filter is on if either
// all or the interface has it; arp_ignore and arp_announce take the larger.
func (d doctor) effective(ifname, key string) (int, bool) {
	all, err1 := d.sysctl("net.ipv4.conf.all." + key)
	dev, err2 := d.sysctl("net.ipv4.conf." + ifname + "." + key)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	if key == "arp_filter" {
		return min(max(all, dev), 1), true
	}
	return max(all, dev), true
}

// vmacSysctls judges the parent's (and, if it exists, the macvlan's) ARP
// sysctls. running: vipd's macvlan exists, so vipd should have set them.
func (d doctor) vmacSysctls(parent string, insts []string, macvlans []string, running bool) []Verdict {
	var vs []Verdict
	who := "virtual_mac of " + strings.Join(insts, ", ")
	check := func(ifname string, s vmacParentSysctl, onMacvlan bool) {
		v, ok := d.effective(ifname, s.key)
		if !ok {
			return
		}
		fix := fmt.Sprintf("sysctl -w net.ipv4.conf.%s.%s=%d", ifname, s.key, s.want)
		switch {
		case v >= s.want:
			vs = append(vs, Verdict{OK, fmt.Sprintf("%s is %d on %s (%s): %s", s.key, v, ifname, who, s.why), ""})
		case running:
			level := Fail
			if s.key == "arp_filter" || onMacvlan {
				level = Warn
			}
			vs = append(vs, Verdict{level, fmt.Sprintf("%s is %d on %s while vipd runs with %s: vipd sets %d because %s; someone changed it since",
				s.key, v, ifname, who, s.want, s.why), fix + " (or restart vipd, which sets it)"})
		default:
			vs = append(vs, Verdict{OK, fmt.Sprintf("%s is %d on %s: vipd raises it to %d while it runs (%s) and puts it back at stop: %s",
				s.key, v, ifname, s.want, who, s.why), ""})
		}
	}
	if parent != "" {
		for _, s := range vmacParentSysctls {
			check(parent, s, false)
		}
	}
	for _, m := range macvlans {
		for _, s := range vmacMacvlanSysctls {
			check(m, s, true)
		}
	}
	return vs
}

// vmacFamilies reports whether in's macvlan carries IPv4 and IPv6 VIPs
// (those without an interface of their own).
func vmacFamilies(in config.Instance) (has4, has6 bool) {
	for _, v := range in.VIPs {
		if v.Interface != "" && v.Interface != in.VirtualMACName {
			continue
		}
		if v.Address.Addr().Unmap().Is4() {
			has4 = true
		} else {
			has6 = true
		}
	}
	return has4, has6
}

// eui64LinkLocal is the link-local the kernel derives from mac (EUI-64,
// RFC 4291 appendix A).
func eui64LinkLocal(mac net.HardwareAddr) netip.Addr {
	var a [16]byte
	a[0], a[1] = 0xfe, 0x80
	a[8], a[9], a[10] = mac[0]^0x02, mac[1], mac[2]
	a[11], a[12] = 0xff, 0xfe
	a[13], a[14], a[15] = mac[3], mac[4], mac[5]
	return netip.AddrFrom16(a)
}

// vmac6Checks judges the IPv6 side of in's macvlan l, which exists: vipd
// gives it no address of its own (addr_gen_mode 1, accept_ra and
// autoconf 0), since every router's macvlan of the VRID has the same MAC
// and would derive the same link-local from it. The adverts leave from the
// parent's link-local with the virtual MAC.
func (d doctor) vmac6Checks(in config.Instance, l *vmacLink) []Verdict {
	var vs []Verdict
	_, has6 := vmacFamilies(in)
	name := in.VirtualMACName
	key := func(k string) string { return "net.ipv6.conf." + name + "." + k }
	mode, err := d.sysctl(key("addr_gen_mode"))
	switch {
	case err != nil && has6:
		vs = append(vs, Verdict{Fail, fmt.Sprintf("instance %s: reading addr_gen_mode of %s: %v (IPv6 off in the kernel?)", in.Name, name, err), "boot without ipv6.disable=1"})
	case err != nil:
	case mode == 1:
		vs = append(vs, Verdict{OK, fmt.Sprintf("instance %s: addr_gen_mode is 1 (none) on %s: no link-local derived from the virtual MAC, which every router's macvlan of VRID %d shares; the adverts leave from %s's own link-local", in.Name, name, in.VRID, in.Interface), ""})
	default:
		vs = append(vs, Verdict{Fail, fmt.Sprintf("instance %s: addr_gen_mode is %d on %s, vipd sets 1 (none): each router's macvlan derives the same link-local from the shared MAC, fails duplicate address detection on it after a split and answers neighbour solicitations for it", in.Name, mode, name),
			"restart vipd: it makes the macvlan again with addr_gen_mode 1"})
	}
	for _, k := range []string{"accept_ra", "autoconf"} {
		if v, err := d.sysctl(key(k)); err == nil && v != 0 {
			vs = append(vs, Verdict{Warn, fmt.Sprintf("instance %s: %s is %d on %s, vipd sets 0: a router advertisement gives the macvlan an address derived from the shared virtual MAC (the same on every router) and a default route", in.Name, k, v, name),
				fmt.Sprintf("sysctl -w net/ipv6/conf/%s/%s=0 (or restart vipd)", name, k)})
		}
	}
	shared := eui64LinkLocal(l.mac)
	for _, p := range l.addrs6 {
		a := p.Addr()
		switch {
		case a == shared:
			vs = append(vs, Verdict{Fail, fmt.Sprintf("instance %s: %s has the link-local %s, derived from the virtual MAC: every router's macvlan of VRID %d has the same one", in.Name, name, a, in.VRID),
				fmt.Sprintf("ip addr del %s dev %s, and restart vipd (it sets addr_gen_mode 1 before the macvlan comes up)", p, name)})
		case a.IsLinkLocalUnicast():
			vs = append(vs, Verdict{Warn, fmt.Sprintf("instance %s: %s has the link-local %s, which vipd did not give it: it answers neighbour solicitations with the virtual MAC while up", in.Name, name, a),
				fmt.Sprintf("ip addr del %s dev %s", p, name)})
		}
	}
	return vs
}

// vmacLinkVerdict judges the link named like in's macvlan (nil: none).
// parent is the index of in's interface. A link vipd would refuse to use
// is a failure: vipd does not start with it there.
func vmacLinkVerdict(in config.Instance, parent int, l *vmacLink) Verdict {
	name, want := in.VirtualMACName, virtualMAC(in)
	alias := vmacAliasPrefix + in.Name
	if l == nil {
		return Verdict{OK, fmt.Sprintf("instance %s: no macvlan %s yet: vipd makes it (%s, bridge mode, on %s) when it starts and removes it at stop", in.Name, name, want, in.Interface), ""}
	}
	remove := fmt.Sprintf("if vipd is stopped, ip link del %s (or set another virtual_mac_name)", name)
	switch {
	case l.kind != "macvlan":
		return Verdict{Fail, fmt.Sprintf("instance %s: %s is a %s link, not vipd's macvlan: vipd refuses to start", in.Name, name, l.kind), remove}
	case l.alias != alias:
		return Verdict{Fail, fmt.Sprintf("instance %s: macvlan %s is not vipd's (alias %q, want %q): vipd refuses to start", in.Name, name, l.alias, alias), remove}
	case l.parent != parent:
		return Verdict{Fail, fmt.Sprintf("instance %s: macvlan %s is not on %s", in.Name, name, in.Interface), "restart vipd: it removes its macvlan and makes it again on the configured interface"}
	case l.mac.String() != want.String():
		return Verdict{Fail, fmt.Sprintf("instance %s: macvlan %s has MAC %s, want %s (00:00:5e:00:01:<VRID> over IPv4, 00:00:5e:00:02:<VRID> over IPv6)", in.Name, name, l.mac, want), "restart vipd: it makes the macvlan again"}
	case l.mode != netlink.MACVLAN_MODE_BRIDGE:
		return Verdict{Fail, fmt.Sprintf("instance %s: macvlan %s is not in bridge mode (mode %d): peers behind other macvlans of %s are not heard", in.Name, name, l.mode, in.Interface), "restart vipd: it makes the macvlan again"}
	}
	state := "down (backup: it neither answers ARP nor takes traffic for the VIPs)"
	if l.up {
		state = "up (master: it carries the VIPs)"
	}
	return Verdict{OK, fmt.Sprintf("instance %s: macvlan %s on %s with %s, bridge mode, %s", in.Name, name, in.Interface, want, state), ""}
}

// macvlanSupport says whether this kernel can make a macvlan, without
// making one: the module is loaded (or built in), or can be loaded.
// stat and read see the host's files; release is uname -r.
func macvlanSupport(stat func(string) bool, read func(string) ([]byte, error), release string) Verdict {
	if stat("/sys/module/macvlan") {
		return Verdict{OK, "the kernel has macvlan (module loaded or built in)", ""}
	}
	mods := filepath.Join("/lib/modules", release)
	if hasModule(read, filepath.Join(mods, "modules.builtin")) {
		return Verdict{OK, "the kernel has macvlan (built in)", ""}
	}
	if hasModule(read, filepath.Join(mods, "modules.dep")) {
		return Verdict{OK, "the kernel has macvlan (module, loaded when vipd makes the first macvlan)", ""}
	}
	return Verdict{Fail, "the kernel has no macvlan (no /sys/module/macvlan, and macvlan.ko is not in " + mods + "): virtual_mac cannot work",
		"install the kernel's extra modules (e.g. linux-modules-extra) or build with CONFIG_MACVLAN; or set virtual_mac: false"}
}

// hasModule looks for drivers/net/macvlan.ko in a modules.builtin or
// modules.dep file.
func hasModule(read func(string) ([]byte, error), path string) bool {
	b, err := read(path)
	if err != nil {
		return false
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		f, _, _ := strings.Cut(sc.Text(), ":")
		if strings.HasSuffix(f, "/macvlan.ko") || strings.Contains(f, "/macvlan.ko.") {
			return true
		}
	}
	return false
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

func pathExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// virtualMACChecks runs the checks for the instances on parent (index
// parentIndex) that have virtual_mac, and returns the macvlans that exist
// (name → index) for the ARP checks.
func (d doctor) virtualMACChecks(parent string, parentIndex int, insts []config.Instance) ([]Verdict, map[string]int) {
	var vs []Verdict
	var names, names4, present []string
	exist := map[string]int{}
	for _, in := range insts {
		if !in.VirtualMAC {
			continue
		}
		names = append(names, in.Name)
		// The parent's ARP settings matter where the macvlan carries
		// IPv4 VIPs; vipd leaves them alone otherwise.
		if has4, _ := vmacFamilies(in); has4 {
			names4 = append(names4, in.Name)
		}
		l, err := d.lookupLink(in.VirtualMACName)
		if err != nil {
			vs = append(vs, Verdict{Fail, fmt.Sprintf("instance %s: reading link %s: %v", in.Name, in.VirtualMACName, err), "run vipd doctor as root"})
			continue
		}
		v := vmacLinkVerdict(in, parentIndex, l)
		vs = append(vs, v)
		if l != nil && v.Level == OK {
			present = append(present, in.VirtualMACName)
			if ifi, err := net.InterfaceByName(in.VirtualMACName); err == nil {
				exist[in.VirtualMACName] = ifi.Index
			}
			vs = append(vs, d.vmac6Checks(in, l)...)
		}
	}
	if len(names) == 0 {
		return nil, nil
	}
	if len(present) == 0 {
		vs = append(vs, macvlanSupport(pathExists, os.ReadFile, kernelRelease()))
	}
	if len(names4) > 0 {
		vs = append(vs, d.vmacSysctls(parent, names4, present, len(present) > 0)...)
	} else {
		vs = append(vs, d.vmacSysctls("", names, present, len(present) > 0)...)
	}
	return vs, exist
}

// netipx converts a netlink address to a prefix.
func netipx(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
}
