package vrrp

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// virtual_mac on IPv6 instances and on dual-stack ones, on the simulated
// segment (vmac.go, simvmac_test.go, sim6_test.go).

const vmac6Name = "vrrp6.51"

// vmac6Pair starts a (priority 150, link-local fe80::1) and b (100,
// fe80::2), each with an IPv6 instance with virtual_mac and a state_dir of
// its own, and returns a's configuration.
func vmac6Pair(t *testing.T) (s *simNet, a, b *simNode, ya string) {
	s = newSimNet(t)
	a = s.host6("a", "10.0.0.1", "fe80::1")
	b = s.host6("b", "10.0.0.2", "fe80::2")
	inst := func(prio int) string {
		return scnConfig(scnInstance("web", 51, prio, "vips: ["+sim6VIP+"]", "virtual_mac: true"))
	}
	ya = "state_dir: " + t.TempDir() + "\n" + inst(150)
	a.start(s.config(ya))
	b.start(s.config("state_dir: " + t.TempDir() + "\n" + inst(100)))
	s.run(4 * time.Second)
	return s, a, b, ya
}

// advert6Sources returns the Ethernet and IPv6 sources of the adverts h
// sent since since.
func advert6Sources(s *simNet, h *simNode, since time.Time) map[string]int {
	out := map[string]int{}
	for _, f := range s.sent {
		if f.from == h.name && !f.at.Before(since) && f.six {
			out[f.mac+" "+f.src.String()]++
		}
	}
	return out
}

// An IPv6 instance's macvlan is vrrp6.<VRID> with 00:00:5e:00:02:<VRID>;
// it gets no address of its own (addr_gen_mode none, no router
// advertisements nor autoconfiguration), the parent's ARP settings are
// left alone, the master's VIP lives on it and is announced from the
// virtual MAC, and the adverts leave from the virtual MAC but from each
// node's own link-local, so the two nodes still tell their adverts apart.
func TestVirtualMACIPv6Instance(t *testing.T) {
	s, a, b, _ := vmac6Pair(t)
	a.expect("web", StateMaster)
	b.expect("web", StateBackup)
	for _, h := range []*simNode{a, b} {
		l := h.links[vmac6Name]
		if l == nil {
			t.Fatalf("%s: no macvlan %s (links %v)", h.name, vmac6Name, h.links)
		}
		if l.MAC.String() != "00:00:5e:00:02:33" || h.vm.macvlans[vmac6Name].alias != "vipd:web" {
			t.Errorf("%s: macvlan MAC %s alias %q, want 00:00:5e:00:02:33 and vipd:web", h.name, l.MAC, h.vm.macvlans[vmac6Name].alias)
		}
		for k, want := range map[string]string{
			"net/ipv6/conf/" + vmac6Name + "/addr_gen_mode": "1", "net/ipv6/conf/" + vmac6Name + "/accept_ra": "0",
			"net/ipv6/conf/" + vmac6Name + "/autoconf": "0", "net/ipv6/conf/" + vmac6Name + "/disable_ipv6": "0",
			"net/ipv4/conf/" + vmac6Name + "/arp_ignore": "1",
		} {
			if got := h.sysctl(k); got != want {
				t.Errorf("%s: %s = %s, want %s", h.name, k, got, want)
			}
		}
		for _, k := range parentSysctls {
			if got := h.sysctl(k); got != "0" {
				t.Errorf("%s: %s = %s: the parent's ARP settings changed for an instance with IPv6 VIPs only", h.name, k, got)
			}
		}
		if len(h.n.vmacRec.Sysctls) != 0 {
			t.Errorf("%s: recorded parent sysctls %v, want none", h.name, h.n.vmacRec.Sysctls)
		}
	}
	if l := a.links[vmac6Name]; !l.Up || !vipOn(a, l.Index, sim6VIP) || vipOn(a, a.links["eth0"].Index, sim6VIP) {
		t.Errorf("master: macvlan up=%v, VIP on it %v; want up, with the VIP, none on eth0", l.Up, vipOn(a, l.Index, sim6VIP))
	}
	if l := b.links[vmac6Name]; l.Up || b.has(sim6VIP) {
		t.Errorf("backup: macvlan up=%v, has VIP %v; want down, none", l.Up, b.has(sim6VIP))
	}
	if s.announcedOn(a, vmac6Name, sim6VIP, simT0) == 0 {
		t.Error("the master announced nothing on its macvlan")
	}
	for _, an := range s.anns {
		if an.node == "a" && (an.link != vmac6Name || an.mac != "00:00:5e:00:02:33") {
			t.Errorf("a announced on %s from %s, want %s from 00:00:5e:00:02:33", an.link, an.mac, vmac6Name)
		}
	}
	if got := advert6Sources(s, a, simT0); len(got) != 1 || got["00:00:5e:00:02:33 fe80::1"] < 10 {
		t.Errorf("master a's adverts by Ethernet and IPv6 source: %v, want all from 00:00:5e:00:02:33 and fe80::1", got)
	}

	// a stops: b takes over from its own link-local and the virtual MAC;
	// a leaves nothing.
	at := s.now
	a.stop()
	s.run(time.Second)
	b.expect("web", StateMaster)
	if got := advert6Sources(s, b, at); len(got) != 1 || got["00:00:5e:00:02:33 fe80::2"] == 0 {
		t.Errorf("new master b's adverts: %v, want all from 00:00:5e:00:02:33 and fe80::2", got)
	}
	if len(a.vm.macvlans) != 0 || a.links[vmac6Name] != nil {
		t.Errorf("a stopped: macvlans left %v", a.vm.macvlans)
	}
}

// An IPv6 master that yields sends its last advert from the parent's MAC,
// its VIP gone and its macvlan down, as over IPv4.
func TestVirtualMACIPv6YieldFromParent(t *testing.T) {
	s, a, b, ya := vmac6Pair(t)
	a.stop()
	s.run(time.Second)
	b.expect("web", StateMaster)
	a.start(s.config(ya))
	s.run(4 * time.Second)
	a.expect("web", StateMaster)
	b.expect("web", StateBackup)
	want := b.links["eth0"].MAC.String() + " fe80::2"
	if got := advert6Sources(s, b, b.became("web", StateBackup)); len(got) != 1 || got[want] != 1 {
		t.Errorf("b's adverts from its yield on: %v, want one, from %s", got, want)
	}
	if l := b.links[vmac6Name]; l.Up || b.has(sim6VIP) {
		t.Errorf("b yielded: macvlan up=%v, VIP %v; want down, none", l.Up, b.has(sim6VIP))
	}
}

// Dual stack: the macvlan's MAC follows the instance's family and carries
// the other family's VIPs too; the parent's ARP settings change only
// where the macvlan carries IPv4 VIPs, and IPv6 is on where it carries
// IPv6 ones.
func TestVirtualMACDualStack(t *testing.T) {
	for _, tt := range []struct {
		name, vips, link, mac, other string
	}{
		{"IPv4 instance with an IPv6 VIP", "vips: [" + scnVIP + ", \"" + sim6VIP + "\"]", "vrrp4.51", "00:00:5e:00:01:33", sim6VIP},
		{"IPv6 instance with an IPv4 VIP", "vips: [\"" + sim6VIP + "\", {address: " + scnVIP + ", advertise: false}]", vmac6Name, "00:00:5e:00:02:33", scnVIP},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newSimNet(t)
			a := s.host6("a", "10.0.0.1", "fe80::1")
			a.start(s.config("state_dir: " + t.TempDir() + "\n" + scnConfig(scnInstance("web", 51, 150, tt.vips, "virtual_mac: true"))))
			s.run(4 * time.Second)
			a.expect("web", StateMaster)
			l := a.links[tt.link]
			if l == nil || l.MAC.String() != tt.mac {
				t.Fatalf("macvlan %s: %+v, want MAC %s", tt.link, l, tt.mac)
			}
			if !vipOn(a, l.Index, scnVIP) || !vipOn(a, l.Index, sim6VIP) {
				t.Errorf("VIPs on %s: %v, want both", tt.link, a.addrs[l.Index])
			}
			if s.announcedOn(a, tt.link, tt.other, simT0) == 0 {
				t.Errorf("the other family's VIP %s was not announced on %s", tt.other, tt.link)
			}
			for k, want := range map[string]string{
				parentSysctls[0]: "1", parentSysctls[2]: "2",
				"net/ipv6/conf/" + tt.link + "/addr_gen_mode": "1", "net/ipv6/conf/" + tt.link + "/disable_ipv6": "0",
			} {
				if got := a.sysctl(k); got != want {
					t.Errorf("%s = %s, want %s", k, got, want)
				}
			}
		})
	}
}

// An IPv4-only macvlan gets no link-local either, and a host without IPv6
// (no net/ipv6 keys) still runs it.
func TestVirtualMACIPv4WithoutIPv6(t *testing.T) {
	s, a, _, _, _ := vmacPair(t)
	if got := a.sysctl("net/ipv6/conf/" + vmacName + "/addr_gen_mode"); got != "1" {
		t.Errorf("IPv4 macvlan's addr_gen_mode = %s, want 1 (none)", got)
	}
	if got := a.sysctl("net/ipv6/conf/" + vmacName + "/disable_ipv6"); got != "0" {
		t.Errorf("IPv4 macvlan's disable_ipv6 = %s, want untouched", got)
	}
	c := s.host("c", "10.0.0.3")
	c.vm.noIPv6 = true
	c.start(s.config("state_dir: " + t.TempDir() + "\n" + scnConfig(scnInstance("web", 52, 150, "virtual_mac: true", "vips: [10.0.0.101]"))))
	s.run(4 * time.Second)
	c.expect("web", StateMaster)

	// An IPv6 VIP on a host without IPv6 is an error at start, naming the
	// setting.
	d := s.host("d", "10.0.0.4")
	d.vm.noIPv6 = true
	err := d.create(s.config("state_dir: " + t.TempDir() + "\n" + scnConfig(scnInstance("web", 53, 150, "virtual_mac: true", "vips: [\"fd00:18::53\"]"))))
	if err == nil || !strings.Contains(err.Error(), "net/ipv6/conf/vrrp6.53/addr_gen_mode") {
		t.Fatalf("start with an IPv6 VIP and no IPv6: %v, want an error naming addr_gen_mode", err)
	}
	if len(d.vm.macvlans) != 0 {
		t.Errorf("the refused start left macvlans %v", d.vm.macvlans)
	}
}

// An IPv6 instance's IPv4 VIPs (advertise: false) live on its macvlan with
// the IPv6 virtual MAC: conflict detection takes that MAC answering ARP
// for them as the instance's own, not the IPv4 one.
func TestConflictTargetsIPv6VirtualMAC(t *testing.T) {
	vip := netip.PrefixFrom(cvip, 32)
	s := Status{
		Interfaces: []InterfaceStatus{{Name: "eth0", MAC: macOwn}},
		Instances: []InstanceStatus{
			{Name: "web6", Interface: "eth0", VirtualMACLink: vmac6Name, VRID: 51, State: StateMaster, Family: FamilyIPv6,
				VIPs: []VIPStatus{{Address: vip, Interface: vmac6Name}}},
		},
	}
	ts, own := conflictTargets(s)
	if len(ts) != 1 || !ts[0].six || ts[0].link != "eth0" {
		t.Fatalf("targets %+v, want one on eth0 marked IPv6", ts)
	}
	d := newConflictDetector(0, time.Minute)
	d.set(ts, own)
	w := d.vips[vipKey{"eth0", cvip}]
	if f, known := d.foreign(w, [6]byte(virtualMAC(51, FamilyIPv6))); f || !known {
		t.Errorf("the IPv6 virtual MAC judged foreign %v (known %v)", f, known)
	}
	if f, _ := d.foreign(w, [6]byte(virtualMAC(51, FamilyIPv4))); !f {
		t.Error("the IPv4 virtual MAC of the VRID is not foreign for an IPv6 instance's master")
	}
}
