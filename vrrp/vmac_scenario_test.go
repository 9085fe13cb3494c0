package vrrp

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/vip"
)

// virtual_mac on the simulated segment (vmac.go, simvmac_test.go).

const vmacName = "vrrp4.51"

var parentSysctls = []string{"net/ipv4/conf/eth0/arp_ignore", "net/ipv4/conf/eth0/arp_filter", "net/ipv4/conf/eth0/arp_announce"}

// vmacLink is h's macvlan, or nil.
func vmacLink(h *simNode) *LinkInfo { return h.links[vmacName] }

// vipOn reports whether address a is on h's link index.
func vipOn(h *simNode, index int, a string) bool {
	return slices.ContainsFunc(h.addrs[index], func(x vip.Addr) bool { return x.Prefix.Addr() == netip.MustParseAddr(a) })
}

// vmacPair starts a (priority 150) and b (100) with virtual_mac, each with
// a state_dir of its own, and returns their configurations' YAML.
func vmacPair(t *testing.T) (s *simNet, a, b *simNode, ya, yb string) {
	s = newSimNet(t)
	a = s.host("a", "10.0.0.1")
	b = s.host("b", "10.0.0.2")
	ya = "state_dir: " + t.TempDir() + "\n" + scnConfig(scnInstance("web", 51, 150, "virtual_mac: true"))
	yb = "state_dir: " + t.TempDir() + "\n" + scnConfig(scnInstance("web", 51, 100, "virtual_mac: true"))
	a.start(s.config(ya))
	b.start(s.config(yb))
	s.run(4 * time.Second)
	return s, a, b, ya, yb
}

// expectClean fails unless h has no macvlan, its parent's sysctls are the
// kernel's defaults, and state_dir holds no record.
func expectClean(t *testing.T, h *simNode, stateDir string) {
	t.Helper()
	if len(h.vm.macvlans) != 0 || vmacLink(h) != nil {
		t.Errorf("%s: macvlans left: %v", h.name, h.vm.macvlans)
	}
	for _, k := range parentSysctls {
		if got := h.sysctl(k); got != "0" {
			t.Errorf("%s: %s = %s after stop, want 0 (as before vipd)", h.name, k, got)
		}
	}
	if _, err := os.Stat(filepath.Join(stateDir, vmacStateFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s: the record is still in state_dir: %v", h.name, err)
	}
}

func stateDirOf(yaml string) string {
	line, _, _ := strings.Cut(yaml, "\n")
	return strings.TrimPrefix(line, "state_dir: ")
}

func TestVirtualMACMasterHoldsVIPsOnMacvlan(t *testing.T) {
	s, a, b, _, _ := vmacPair(t)
	a.expect("web", StateMaster)
	b.expect("web", StateBackup)
	for _, h := range []*simNode{a, b} {
		l := vmacLink(h)
		if l == nil {
			t.Fatalf("%s: no macvlan %s", h.name, vmacName)
		}
		m := h.vm.macvlans[vmacName]
		if l.MAC.String() != "00:00:5e:00:01:33" || m.alias != "vipd:web" || m.parent != h.links["eth0"].Index {
			t.Errorf("%s: macvlan MAC %s alias %q parent %d; want 00:00:5e:00:01:33, vipd:web, eth0", h.name, l.MAC, m.alias, m.parent)
		}
		for k, want := range map[string]string{
			"net/ipv4/conf/eth0/arp_ignore": "1", "net/ipv4/conf/eth0/arp_filter": "1", "net/ipv4/conf/eth0/arp_announce": "2",
			"net/ipv4/conf/" + vmacName + "/arp_ignore": "1", "net/ipv4/conf/" + vmacName + "/arp_announce": "2",
			"net/ipv4/conf/" + vmacName + "/accept_local": "1", "net/ipv4/conf/" + vmacName + "/rp_filter": "0",
		} {
			if got := h.sysctl(k); got != want {
				t.Errorf("%s: %s = %s, want %s", h.name, k, got, want)
			}
		}
	}
	// The master's VIP is on its macvlan, which is up; the backup's is
	// down and has none.
	if l := vmacLink(a); !l.Up || !vipOn(a, l.Index, scnVIP) || vipOn(a, a.links["eth0"].Index, scnVIP) {
		t.Errorf("master: macvlan up=%v, VIP on macvlan %v, on eth0 %v; want up, on the macvlan only", l.Up, vipOn(a, l.Index, scnVIP), vipOn(a, 2, scnVIP))
	}
	if l := vmacLink(b); l.Up || b.has(scnVIP) {
		t.Errorf("backup: macvlan up=%v, has VIP %v; want down, none", l.Up, b.has(scnVIP))
	}
	// Gratuitous ARP from the virtual MAC, out of the macvlan; the
	// macvlan came up before the VIP went on.
	for _, an := range s.anns {
		if an.node == "a" && (an.link != vmacName || an.mac != "00:00:5e:00:01:33") {
			t.Errorf("a announced on %s from %s, want %s from 00:00:5e:00:01:33", an.link, an.mac, vmacName)
		}
	}
	if s.announced(a, scnVIP, simT0) == 0 {
		t.Error("a announced nothing")
	}
	up, add := slices.Index(a.ops, "up "+vmacName), slices.Index(a.ops, "addr+ "+scnVIP)
	if up < 0 || add < 0 || up > add {
		t.Errorf("a's operations %q: want the macvlan up before the VIP is added", a.ops)
	}
}

func TestVirtualMACFailoverAndStop(t *testing.T) {
	s, a, b, ya, _ := vmacPair(t)
	a.stop()
	s.run(time.Second)
	b.expect("web", StateMaster)
	if l := vmacLink(b); l == nil || !l.Up || !vipOn(b, l.Index, scnVIP) {
		t.Fatalf("new master b: macvlan %+v, want up with the VIP", l)
	}
	expectClean(t, a, stateDirOf(ya))
	// The old master took the VIP off before its macvlan went.
	del, rm := slices.Index(a.ops, "addr- "+scnVIP), slices.Index(a.ops, "macvlan- "+vmacName)
	if del < 0 || rm < 0 || del > rm {
		t.Errorf("a's operations %q: want the VIP removed, then the macvlan", a.ops)
	}

	// a comes back and preempts: b's macvlan goes down without the VIP.
	a.start(s.config(ya))
	s.run(4 * time.Second)
	a.expect("web", StateMaster)
	if l := vmacLink(b); l.Up || b.has(scnVIP) {
		t.Errorf("b back to backup: macvlan up=%v, has VIP %v; want down, none", l.Up, b.has(scnVIP))
	}
	down := slices.Index(b.ops, "down "+vmacName)
	if del := slices.Index(b.ops, "addr- "+scnVIP); del < 0 || down < del {
		t.Errorf("b's operations %q: want the VIP removed, then the macvlan down", b.ops)
	}
}

func TestVirtualMACKillAndRestartLeavesNothing(t *testing.T) {
	s, a, _, ya, _ := vmacPair(t)
	a.kill()
	oldIdx := vmacLink(a).Index
	if a.sysctl(parentSysctls[0]) != "1" {
		t.Fatal("the killed run's sysctl is not set; the test proves nothing")
	}
	// Restarted with the same configuration: the old macvlan goes with
	// its VIP, a new one comes, and the sysctls' values before vipd (not
	// those the killed run left) are recorded.
	a.start(s.config(ya))
	s.run(4 * time.Second)
	if l := vmacLink(a); l == nil || l.Index == oldIdx {
		t.Fatalf("after restart: macvlan %+v, want a new one (old index %d)", l, oldIdx)
	}
	if !slices.Contains(a.ops, "macvlan- "+vmacName) {
		t.Errorf("the stale macvlan was not removed: %q", a.ops)
	}
	a.stop()
	s.run(time.Second)
	expectClean(t, a, stateDirOf(ya))

	// Killed again, then restarted without virtual_mac: nothing is left.
	a.start(s.config(ya))
	s.run(4 * time.Second)
	a.kill()
	plain := strings.Replace(ya, "    virtual_mac: true\n", "", 1)
	a.start(s.config(plain))
	s.run(4 * time.Second)
	expectClean(t, a, stateDirOf(ya))
	if !a.has(scnVIP) || !vipOn(a, a.links["eth0"].Index, scnVIP) {
		t.Error("without virtual_mac the master's VIP is not on eth0")
	}
}

func TestVirtualMACSysctlChangedByAdminIsLeft(t *testing.T) {
	s, a, _, ya, _ := vmacPair(t)
	// An administrator sets arp_announce to 1 while vipd runs; vipd
	// leaves it so, and restores the others.
	if err := a.WriteSysctl(parentSysctls[2], "1"); err != nil {
		t.Fatal(err)
	}
	a.stop()
	s.run(time.Second)
	if got := a.sysctl(parentSysctls[2]); got != "1" {
		t.Errorf("arp_announce = %s, want the administrator's 1", got)
	}
	if got := a.sysctl(parentSysctls[0]); got != "0" {
		t.Errorf("arp_ignore = %s, want 0 restored", got)
	}
	if !a.logs.has("changed since") {
		t.Error("no warning about the sysctl changed since")
	}
	expectRecordGone(t, stateDirOf(ya))
}

func expectRecordGone(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, vmacStateFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the record is still in state_dir: %v", err)
	}
}

func TestVirtualMACStrictSysctlIsKept(t *testing.T) {
	s := newSimNet(t)
	a := s.host("a", "10.0.0.1")
	if err := a.WriteSysctl(parentSysctls[0], "2"); err != nil {
		t.Fatal(err)
	}
	a.start(s.config(scnConfig(scnInstance("web", 51, 150, "virtual_mac: true"))))
	s.run(4 * time.Second)
	if got := a.sysctl(parentSysctls[0]); got != "2" {
		t.Errorf("arp_ignore = %s, want the stricter 2 kept", got)
	}
	if slices.ContainsFunc(a.n.vmacRec.Sysctls, func(c sysctlChange) bool { return c.Key == parentSysctls[0] }) {
		t.Error("arp_ignore recorded as changed though vipd did not change it")
	}
}

func TestVirtualMACRefusesForeignLink(t *testing.T) {
	s := newSimNet(t)
	a := s.host("a", "10.0.0.1")
	a.links[vmacName] = &LinkInfo{Name: vmacName, Index: 50}
	err := a.create(s.config(scnConfig(scnInstance("web", 51, 150, "virtual_mac: true"))))
	if err == nil || !strings.Contains(err.Error(), "interface vrrp4.51 exists and is not vipd's") {
		t.Fatalf("got %v, want a refusal naming the interface", err)
	}
	if a.links[vmacName].Index != 50 || len(a.vm.macvlans) != 0 || a.sysctl(parentSysctls[0]) != "0" {
		t.Error("the host changed although start-up was refused")
	}
	// A start that fails after the macvlans were made (here: a VIP that
	// is eth1's own address) undoes them.
	delete(a.links, vmacName)
	db := strings.Replace(scnInstance("db", 52, 150, "vips: [10.0.1.1/32]"), "eth0", "eth1", 1)
	err = a.create(s.config(scnConfig(scnInstance("web", 51, 150, "virtual_mac: true"), db)))
	if err == nil || !strings.Contains(err.Error(), "own address") {
		t.Fatalf("got %v, want the own-address refusal", err)
	}
	if !slices.Contains(a.ops, "macvlan+ "+vmacName) {
		t.Fatalf("operations %q: the macvlan was never made; the test proves nothing", a.ops)
	}
	if len(a.vm.macvlans) != 0 || a.sysctl(parentSysctls[0]) != "0" || a.sysctl(parentSysctls[2]) != "0" {
		t.Errorf("after the refused start: macvlans %v, arp_ignore %s, arp_announce %s; want none, 0, 0",
			a.vm.macvlans, a.sysctl(parentSysctls[0]), a.sysctl(parentSysctls[2]))
	}
}

func TestVirtualMACReloadRefused(t *testing.T) {
	s, a, _, ya, _ := vmacPair(t)
	off := strings.Replace(ya, "    virtual_mac: true\n", "", 1)
	if err := a.n.applyConfig(s.config(off), s.now); err == nil || !strings.Contains(err.Error(), "virtual_mac changes") {
		t.Errorf("reload turning virtual_mac off: %v, want a refusal", err)
	}
	if l := vmacLink(a); l == nil || !l.Up || !vipOn(a, l.Index, scnVIP) {
		t.Error("the refused reload changed the macvlan or the VIP")
	}
}

// advertMACs returns the Ethernet sources of the adverts h sent since
// since, and how many of them had priority 0.
func advertMACs(s *simNet, h *simNode, since time.Time) (macs map[string]int, zero int) {
	macs = map[string]int{}
	for _, f := range s.sent {
		if f.from != h.name || f.at.Before(since) {
			continue
		}
		macs[f.mac]++
		if f.data[20+2] == 0 {
			zero++
		}
	}
	return macs, zero
}

// With virtual_mac the adverts leave from the virtual MAC, the priority-0
// one at stop too, whoever is master; without it, from the link's MAC.
func TestVirtualMACAdvertsFromVirtualMAC(t *testing.T) {
	s, a, b, ya, _ := vmacPair(t)
	macs, _ := advertMACs(s, a, simT0)
	if len(macs) != 1 || macs["00:00:5e:00:01:33"] < 10 {
		t.Errorf("master a's adverts by Ethernet source: %v, want all from 00:00:5e:00:01:33", macs)
	}
	if macs, _ := advertMACs(s, b, simT0.Add(2*time.Second)); len(macs) != 0 {
		t.Errorf("backup b sent adverts: %v", macs)
	}
	at := s.now
	a.stop()
	s.run(time.Second)
	b.expect("web", StateMaster)
	if macs, zero := advertMACs(s, a, at); zero != 1 || len(macs) != 1 || macs["00:00:5e:00:01:33"] != 1 {
		t.Errorf("a's adverts at stop: %v (%d of priority 0), want one of priority 0 from 00:00:5e:00:01:33", macs, zero)
	}
	if macs, _ := advertMACs(s, b, at); len(macs) != 1 || macs["00:00:5e:00:01:33"] == 0 {
		t.Errorf("new master b's adverts by Ethernet source: %v, want all from 00:00:5e:00:01:33", macs)
	}
	// a returns and preempts: b's advert on its way out, its VIPs gone,
	// leaves from eth0's MAC, not to draw the switches back to b.
	at = s.now
	a.start(s.config(ya))
	s.run(4 * time.Second)
	a.expect("web", StateMaster)
	b.expect("web", StateBackup)
	if macs, _ := advertMACs(s, b, b.became("web", StateBackup)); len(macs) != 1 || macs[b.links["eth0"].MAC.String()] != 1 {
		t.Errorf("b's adverts from its yield on, by Ethernet source: %v, want its one advert on yielding, from eth0's %s", macs, b.links["eth0"].MAC)
	}
	if macs, _ := advertMACs(s, a, at); len(macs) != 1 || macs["00:00:5e:00:01:33"] == 0 {
		t.Errorf("a, master again: adverts by Ethernet source %v, want all from 00:00:5e:00:01:33", macs)
	}

	s = newSimNet(t)
	c := s.host("c", "10.0.0.3")
	c.start(s.config(scnConfig(scnInstance("web", 51, 150))))
	s.run(4 * time.Second)
	c.expect("web", StateMaster)
	want := c.links["eth0"].MAC.String()
	if macs, _ := advertMACs(s, c, simT0); len(macs) != 1 || macs[want] == 0 {
		t.Errorf("without virtual_mac: adverts by Ethernet source %v, want all from eth0's %s", macs, want)
	}
}
