package doctor

import (
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/vipd/vipd/config"
)

var vmac6Inst = config.Instance{Name: "web6", Interface: "eth0", VRID: 51, VirtualMAC: true, VirtualMACName: "vrrp6.51",
	VIPs: []config.VIP{{Address: netip.MustParsePrefix("fd00:18::100/128")}}}

func sysctlMap(values map[string]int) func(string) (int, error) {
	return func(k string) (int, error) {
		v, ok := values[k]
		if !ok {
			return 0, errors.New("no such sysctl")
		}
		return v, nil
	}
}

// An IPv6 instance's macvlan has the IPv6 virtual MAC and no address of
// its own: addr_gen_mode 1, no router advertisements, no link-local
// derived from the shared MAC.
func TestVMAC6Checks(t *testing.T) {
	mac := net.HardwareAddr{0, 0, 0x5e, 0, 2, 51}
	if v := vmacLinkVerdict(vmac6Inst, 2, &vmacLink{kind: "macvlan", mode: netlink.MACVLAN_MODE_BRIDGE, mac: mac, parent: 2, alias: "vipd:web6"}); v.Level != OK ||
		!hasVerdict([]Verdict{v}, OK, "macvlan vrrp6.51 on eth0 with 00:00:5e:00:02:33") {
		t.Errorf("IPv6 macvlan: %+v", v)
	}
	if v := vmacLinkVerdict(vmac6Inst, 2, &vmacLink{kind: "macvlan", mode: netlink.MACVLAN_MODE_BRIDGE, mac: net.HardwareAddr{0, 0, 0x5e, 0, 1, 51}, parent: 2, alias: "vipd:web6"}); v.Level != Fail {
		t.Errorf("IPv6 macvlan with the IPv4 virtual MAC: %+v, want FAIL", v)
	}

	good := map[string]int{"net.ipv6.conf.vrrp6.51.addr_gen_mode": 1, "net.ipv6.conf.vrrp6.51.accept_ra": 0, "net.ipv6.conf.vrrp6.51.autoconf": 0}
	l := &vmacLink{mac: mac, addrs6: []netip.Prefix{netip.MustParsePrefix("fd00:18::100/128")}}
	vs := doctor{sysctl: sysctlMap(good)}.vmac6Checks(vmac6Inst, l)
	if !hasVerdict(vs, OK, "addr_gen_mode is 1 (none) on vrrp6.51") || hasVerdict(vs, Fail, "") || hasVerdict(vs, Warn, "") {
		t.Errorf("vipd's macvlan: %+v", vs)
	}

	bad := map[string]int{"net.ipv6.conf.vrrp6.51.addr_gen_mode": 0, "net.ipv6.conf.vrrp6.51.accept_ra": 1, "net.ipv6.conf.vrrp6.51.autoconf": 0}
	l.addrs6 = append(l.addrs6, netip.MustParsePrefix("fe80::200:5eff:fe00:233/64"), netip.MustParsePrefix("fe80::1/64"))
	vs = doctor{sysctl: sysctlMap(bad)}.vmac6Checks(vmac6Inst, l)
	for _, w := range []struct{ level, want string }{
		{Fail, "addr_gen_mode is 0 on vrrp6.51, vipd sets 1"},
		{Warn, "accept_ra is 1 on vrrp6.51"},
		{Fail, "vrrp6.51 has the link-local fe80::200:5eff:fe00:233, derived from the virtual MAC"},
		{Warn, "vrrp6.51 has the link-local fe80::1, which vipd did not give it"},
	} {
		if !hasVerdict(vs, w.level, w.want) {
			t.Errorf("lacks %s %q: %+v", w.level, w.want, vs)
		}
	}

	// Without IPv6 in the kernel an IPv6 VIP cannot work; an IPv4-only
	// macvlan does not care.
	if vs := (doctor{sysctl: sysctlMap(nil)}).vmac6Checks(vmac6Inst, &vmacLink{mac: mac}); !hasVerdict(vs, Fail, "reading addr_gen_mode of vrrp6.51") {
		t.Errorf("no IPv6 sysctls, IPv6 VIP: %+v", vs)
	}
	if vs := (doctor{sysctl: sysctlMap(nil)}).vmac6Checks(vmacInst, &vmacLink{mac: net.HardwareAddr{0, 0, 0x5e, 0, 1, 51}}); len(vs) != 0 {
		t.Errorf("no IPv6 sysctls, IPv4 VIP: %+v, want nothing", vs)
	}
}

// The parent's ARP settings are checked for a macvlan with IPv4 VIPs only;
// the macvlan's own always.
func TestVMACParentSysctlsIPv4Only(t *testing.T) {
	d := doctor{sysctl: sysctlMap(map[string]int{
		"net.ipv4.conf.all.arp_ignore": 0, "net.ipv4.conf.eth0.arp_ignore": 0,
		"net.ipv4.conf.all.arp_announce": 0, "net.ipv4.conf.eth0.arp_announce": 0,
		"net.ipv4.conf.vrrp6.51.arp_ignore": 1, "net.ipv4.conf.vrrp6.51.arp_announce": 2,
	}), lookupLink: func(string) (*vmacLink, error) { return nil, nil }}
	vs, _ := d.virtualMACChecks("eth0", 2, []config.Instance{vmac6Inst})
	if hasVerdict(vs, OK, "is 0 on eth0") || hasVerdict(vs, Fail, "is 0 on eth0") {
		t.Errorf("IPv6-only instance: the parent's ARP settings judged: %+v", vs)
	}
	vs, _ = d.virtualMACChecks("eth0", 2, []config.Instance{vmacInst})
	if !hasVerdict(vs, OK, "arp_ignore is 0 on eth0: vipd raises it to 1") {
		t.Errorf("IPv4 instance: the parent's ARP settings not judged: %+v", vs)
	}
	if has4, has6 := vmacFamilies(vmac6Inst); has4 || !has6 {
		t.Errorf("vmacFamilies of an IPv6 instance: %v %v", has4, has6)
	}
	if eui64LinkLocal(net.HardwareAddr{0, 0, 0x5e, 0, 2, 51}).String() != "fe80::200:5eff:fe00:233" {
		t.Error("eui64LinkLocal")
	}
}
