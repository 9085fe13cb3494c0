package e2e

import (
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/e2e/lab"
	"github.com/vipd/vipd/e2e/pair"
)

// virtual_mac on IPv6 instances (issue 17): the VIP lives on vrrp6.51
// with 00:00:5e:00:02:51, which has no link-local of its own; the adverts
// leave from that MAC and from each node's eth0 link-local.

// assertClientOnVMAC6 checks that v answers the client and that the
// client's neighbour entry for it is the IPv6 virtual MAC.
func assertClientOnVMAC6(t *testing.T, p *pair.Pair, v netip.Addr, when string) {
	t.Helper()
	pr, err := p.Client.StartProbe(v, 10*time.Millisecond)
	must(t, err)
	// The first request may wait for neighbour discovery, and a busy
	// machine for the probe: up to 2 s for a reply, at least 100 ms.
	time.Sleep(100 * time.Millisecond)
	for deadline := time.Now().Add(2 * time.Second); pr.Snapshot().Received == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if r := pr.Stop(); r.Received == 0 {
		t.Fatalf("%s: client got no reply from %s (sent %d)", when, v, r.Sent)
	}
	got, err := p.ClientNeighbour(v)
	must(t, err)
	if got != pair.VirtualMAC6.String() {
		t.Errorf("%s: client's entry for %s is %q, want the virtual MAC %s", when, v, got, pair.VirtualMAC6)
	}
}

// assertMacvlan6 checks n's vrrp6.51: the virtual MAC, address generation
// none, no link-local or other address but the VIP while up, and up (with
// the VIP) exactly when master.
func assertMacvlan6(t *testing.T, n *pair.Node, master bool) {
	t.Helper()
	out, err := n.Host.Run("ip", "-d", "-o", "link", "show", "dev", pair.VMACLink6)
	must(t, err)
	for _, want := range []string{pair.VirtualMAC6.String(), "macvlan mode bridge", "addrgenmode none", "alias vipd:web"} {
		if !strings.Contains(out, want) {
			t.Errorf("%s's %s lacks %q:\n%s", n.Host.Name, pair.VMACLink6, want, out)
		}
	}
	if up := strings.Contains(out, ",UP"); up != master {
		t.Errorf("%s's %s up=%v, want %v:\n%s", n.Host.Name, pair.VMACLink6, up, master, out)
	}
	addrs, err := n.Host.Run("ip", "-6", "-o", "addr", "show", "dev", pair.VMACLink6)
	must(t, err)
	for _, l := range strings.Split(strings.TrimSpace(addrs), "\n") {
		if l != "" && !strings.Contains(l, vip6.String()+"/128") {
			t.Errorf("%s's %s has an address that is not the VIP: %s", n.Host.Name, pair.VMACLink6, l)
		}
	}
	if has := strings.Contains(addrs, vip6.String()); has != master {
		t.Errorf("%s's %s has the VIP %v, want %v", n.Host.Name, pair.VMACLink6, has, master)
	}
}

// TestVirtualMACIPv6Pair: both vipd nodes with virtual_mac on an IPv6
// instance. The client's neighbour entry for the VIP is the IPv6 virtual
// MAC before and after a link cut, the link's return, a graceful stop and
// a preempt back, within the IPv6 pair's bounds (link cut
// Master_Down_Interval + 30 ms, graceful stop 15 ms) and the IPv4
// virtual-MAC test's for preemption; every
// advert comes from the virtual MAC and the sender's own link-local but
// the one a preempted master sends on its way out (from eth0); the
// parents' ARP settings are not touched; nothing is left after a stop, nor
// after kill -9, a restart and a stop.
func TestVirtualMACIPv6Pair(t *testing.T) {
	p := newPair6(t, "m6p")
	before := map[*pair.Node]map[string]string{}
	for _, n := range p.Nodes() {
		before[n] = sysctls(t, n.Host, vmacSysctls)
		n.UseVirtualMAC(pair.VMACLink6)
	}
	w, err := p.Client.WatchAdverts()
	must(t, err)
	defer w.Stop()
	configure6Extra(t, p, p.A, 150, "    virtual_mac: true\n", vip6.String())
	configure6Extra(t, p, p.B, 100, "    virtual_mac: true\n", vip6.String())
	must(t, p.Start(p.A))
	must(t, p.Start(p.B))
	must(t, p.WaitHolder(p.A, vip6, 5*time.Second))
	// b has made its macvlan once its control socket answers (Start).
	assertMacvlan6(t, p.A, true)
	assertMacvlan6(t, p.B, false)
	for _, n := range p.Nodes() {
		if got := sysctls(t, n.Host, vmacSysctls); !mapsEqual(got, before[n]) {
			t.Errorf("%s: the parent's ARP settings changed for an IPv6-only instance: %v, before %v", n.Host.Name, got, before[n])
		}
	}
	assertClientOnVMAC6(t, p, vip6, "a master")
	// vipd doctor on both: the macvlan, its address generation, and the
	// parent's link-local as the adverts' source.
	for _, n := range p.Nodes() {
		state := "down (backup"
		if n == p.A {
			state = "up (master"
		}
		doc, code := doctor(t, p, n)
		for _, want := range []string{"macvlan vrrp6.51 on eth0 with 00:00:5e:00:02:33, bridge mode, " + state,
			"addr_gen_mode is 1 (none) on vrrp6.51", "sends adverts from its link-local"} {
			if !strings.Contains(doc, want) {
				t.Errorf("doctor on %s (exit %d) lacks %q:\n%s", n.Host.Name, code, want, doc)
			}
		}
		if strings.Contains(doc, "FAIL") || strings.Contains(doc, "arp_ignore is 0 on eth0") {
			t.Errorf("doctor on %s (exit %d) fails something or judges the parent's ARP settings:\n%s", n.Host.Name, code, doc)
		}
	}

	bound := pair.MasterDownInterval(100, interval)
	_, o := failoverVIPs(t, p, p.B, []netip.Addr{vip6}, p.A.Host.CutLink)
	t.Logf("IPv6 virtual MAC, link cut: client gap %v (bound %v + %v)", o[vip6].gap, bound, v6Bound)
	if o[vip6].gap > bound+v6Bound {
		t.Errorf("link cut: client gap %v, want at most %v + %v", o[vip6].gap, bound, v6Bound)
	}
	// b's macvlan, down while backup, must not answer before b takes over.
	if least := bound - interval - 10*time.Millisecond; o[vip6].gap < least {
		t.Errorf("link cut: client gap %v, shorter than b's takeover can be (%v): b's macvlan answered as backup", o[vip6].gap, least)
	}
	assertClientOnVMAC6(t, p, vip6, "b master after a's link cut")
	assertMacvlan6(t, p.B, true)

	_, o = failoverVIPs(t, p, p.A, []netip.Addr{vip6}, p.A.Host.RestoreLink)
	t.Logf("IPv6 virtual MAC, link back, a preempts: client gap %v (bound %v)", o[vip6].gap, preemptGap)
	if o[vip6].gap > preemptGap {
		t.Errorf("link back: client gap %v, want at most %v", o[vip6].gap, preemptGap)
	}
	assertClientOnVMAC6(t, p, vip6, "a master after its link returned")
	assertMacvlan6(t, p.B, false)

	_, o = failoverVIPs(t, p, p.B, []netip.Addr{vip6}, func() error { return p.Stop(p.A) })
	t.Logf("IPv6 virtual MAC, graceful stop: client gap %v (bound %v)", o[vip6].gap, v6StopGap)
	if o[vip6].gap > v6StopGap {
		t.Errorf("graceful stop: client gap %v, want at most %v", o[vip6].gap, v6StopGap)
	}
	assertClientOnVMAC6(t, p, vip6, "b master after a stopped")
	assertVMACClean(t, p.A, before[p.A], "a stopped")

	_, o = failoverVIPs(t, p, p.A, []netip.Addr{vip6}, func() error { return p.Start(p.A) })
	t.Logf("IPv6 virtual MAC, a restarted, preempts: client gap %v (bound %v)", o[vip6].gap, preemptGap)
	if o[vip6].gap > preemptGap {
		t.Errorf("preempt back: client gap %v, want at most %v", o[vip6].gap, preemptGap)
	}
	assertClientOnVMAC6(t, p, vip6, "a master after its restart")

	// Every IPv6 advert came from the virtual MAC, from its sender's own
	// eth0 link-local, but the one a preempted master sends on its way
	// out, right after the better advert, from its eth0.
	lls := map[netip.Addr]bool{}
	for _, n := range p.Nodes() {
		ll, err := n.Host.LinkLocal()
		must(t, err)
		lls[ll] = true
	}
	var ads []lab.Advert
	for _, ad := range w.Adverts() {
		if ad.VRID == 51 && ad.Src.Is6() {
			ads = append(ads, ad)
		}
	}
	from := map[string]int{}
	yields := 0
	for i, ad := range ads {
		from[ad.Src.String()]++
		if !lls[ad.Src] {
			t.Errorf("advert from %s, not a node's eth0 link-local %v", ad.Src, lls)
		}
		if ad.MAC.String() == pair.VirtualMAC6.String() {
			continue
		}
		better := false
		for j := i - 1; j >= 0 && ad.Time.Sub(ads[j].Time) < interval; j-- {
			if ads[j].Src != ad.Src && ads[j].Priority > ad.Priority {
				better = true
				break
			}
		}
		if !better || ad.Priority == 0 {
			t.Errorf("advert from %s (priority %d) with Ethernet source %s, want %s (only the advert on yielding may come from eth0)",
				ad.Src, ad.Priority, ad.MAC, pair.VirtualMAC6)
			continue
		}
		yields++
	}
	t.Logf("IPv6 adverts heard by the client, by sender: %v; on yielding, from eth0: %d", from, yields)
	if len(from) != 2 || yields != 2 {
		t.Errorf("the client heard adverts from %v and %d yields from eth0, want both nodes and 2", from, yields)
	}
	assertNoDrops(t, p)

	must(t, p.Stop(p.A))
	must(t, p.Stop(p.B))
	for _, n := range p.Nodes() {
		assertVMACClean(t, n, before[n], "after stop")
	}
	for _, n := range p.Nodes() {
		must(t, p.Start(n))
	}
	must(t, p.WaitHolder(p.A, vip6, 5*time.Second))
	for _, n := range p.Nodes() {
		must(t, p.Kill(n))
		if _, err := n.Proc.Wait(5 * time.Second); err != nil {
			t.Fatalf("%s: vipd did not die on SIGKILL: %v", n.Host.Name, err)
		}
		if !n.Host.LinkExists(pair.VMACLink6) {
			t.Errorf("%s: no %s after kill -9: the clean-up below proves nothing", n.Host.Name, pair.VMACLink6)
		}
	}
	for _, n := range p.Nodes() {
		must(t, p.Start(n))
	}
	must(t, p.WaitHolder(p.A, vip6, 5*time.Second))
	assertClientOnVMAC6(t, p, vip6, "after kill -9 and restart")
	for _, n := range p.Nodes() {
		must(t, p.Stop(n))
		assertVMACClean(t, n, before[n], "after kill -9, restart and stop")
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestVirtualMACDualStack: an IPv4 instance with virtual_mac carrying an
// IPv6 VIP (advertise: false) on both nodes. Both VIPs live on vrrp4.51
// with the instance's MAC, 00:00:5e:00:01:51: the clients' ARP and
// neighbour entries are that MAC after a link cut and a graceful stop,
// within the dual-stack bounds.
func TestVirtualMACDualStack(t *testing.T) {
	p := newPair6(t, "m6d")
	both := []netip.Addr{pair.VIP, vip6}
	vips := []string{pair.VIP.String(), "{address: \"" + vip6.String() + "\", advertise: false}"}
	for _, n := range p.Nodes() {
		n.UseVirtualMAC(pair.VMACLink)
	}
	configure6Extra(t, p, p.A, 150, "    virtual_mac: true\n", vips...)
	configure6Extra(t, p, p.B, 100, "    virtual_mac: true\n", vips...)
	must(t, p.Start(p.A))
	must(t, p.Start(p.B))
	for _, v := range both {
		must(t, p.WaitHolder(p.A, v, 5*time.Second))
	}
	onVMAC := func(when string) {
		t.Helper()
		for _, v := range both {
			pr, err := p.Client.StartProbe(v, 10*time.Millisecond)
			must(t, err)
			time.Sleep(100 * time.Millisecond)
			if r := pr.Stop(); r.Received == 0 {
				t.Fatalf("%s: client got no reply from %s", when, v)
			}
			got, err := p.ClientNeighbour(v)
			must(t, err)
			if got != pair.VirtualMAC.String() {
				t.Errorf("%s: client's entry for %s is %q, want the instance's virtual MAC %s", when, v, got, pair.VirtualMAC)
			}
		}
	}
	onVMAC("a master")
	out, err := p.A.Host.Run("ip", "-d", "-o", "link", "show", "dev", pair.VMACLink)
	must(t, err)
	if !strings.Contains(out, "addrgenmode none") {
		t.Errorf("a's %s is not addrgenmode none:\n%s", pair.VMACLink, out)
	}
	bound := pair.MasterDownInterval(100, interval)
	_, o := failoverVIPs(t, p, p.B, both, p.A.Host.CutLink)
	for _, v := range both {
		t.Logf("virtual MAC dual stack, link cut: %s client gap %v (bound %v + %v)", v, o[v].gap, bound, v6Bound)
		if o[v].gap > bound+v6Bound {
			t.Errorf("%s: client gap %v after a link cut, want at most %v + %v", v, o[v].gap, bound, v6Bound)
		}
	}
	onVMAC("b master after a's link cut")
	must(t, p.A.Host.RestoreLink())
	for _, v := range both {
		must(t, p.WaitHolder(p.A, v, 5*time.Second))
	}
	onVMAC("a master after its link returned")
	_, o = failoverVIPs(t, p, p.B, both, func() error { return p.Stop(p.A) })
	for _, v := range both {
		t.Logf("virtual MAC dual stack, graceful stop: %s client gap %v (bound %v)", v, o[v].gap, v6StopGap)
		if o[v].gap > v6StopGap {
			t.Errorf("%s: client gap %v after a graceful stop, want at most %v", v, o[v].gap, v6StopGap)
		}
	}
	onVMAC("b master after a stopped")
	assertNoDrops(t, p)
	must(t, p.Stop(p.B))
	out, err = p.B.Host.Run("ip", "-o", "link", "show", "type", "macvlan")
	must(t, err)
	if strings.TrimSpace(out) != "" {
		t.Errorf("b stopped: macvlans left:\n%s", out)
	}
}

// TestVirtualMACIPv6WireFormat: tshark on the client's capture finds every
// advert of a vipd pair with virtual_mac over IPv6 well formed (hop limit
// 255, version 3, good checksum, from a node's eth0 link-local) and sent
// from the virtual MAC while master, and every unsolicited neighbour
// advertisement for the VIP from the virtual MAC naming it as target
// link-layer address, with a good checksum.
func TestVirtualMACIPv6WireFormat(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed")
	}
	p := newPair6(t, "m6w")
	pcap := filepath.Join(p.Dir, "client.pcap")
	dump, err := p.Client.Start(filepath.Join(p.Dir, "tcpdump.log"), "tcpdump", "-i", "eth0", "--immediate-mode", "-U", "-n", "-w", pcap, "ip6")
	must(t, err)
	time.Sleep(500 * time.Millisecond) // tcpdump listening
	for _, n := range p.Nodes() {
		n.UseVirtualMAC(pair.VMACLink6)
	}
	configure6Extra(t, p, p.A, 150, "    virtual_mac: true\n", vip6.String())
	configure6Extra(t, p, p.B, 100, "    virtual_mac: true\n", vip6.String())
	must(t, p.Start(p.A))
	must(t, p.Start(p.B))
	must(t, p.WaitHolder(p.A, vip6, 5*time.Second))
	time.Sleep(300 * time.Millisecond)
	must(t, p.Stop(p.A))
	must(t, p.WaitHolder(p.B, vip6, 3*time.Second))
	time.Sleep(300 * time.Millisecond)
	must(t, dump.Signal(syscall.SIGINT))
	if _, err := dump.Wait(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	fields := func(filter string, fs ...string) [][]string {
		t.Helper()
		args := []string{"-n", "-r", pcap, "-Y", filter, "-T", "fields", "-E", "separator=|"}
		for _, f := range fs {
			args = append(args, "-e", f)
		}
		out, err := exec.Command(tshark, args...).Output()
		if err != nil {
			t.Fatalf("tshark %s: %v", filter, err)
		}
		var rows [][]string
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if l != "" {
				rows = append(rows, strings.Split(l, "|"))
			}
		}
		return rows
	}
	lls := map[string]bool{}
	for _, n := range p.Nodes() {
		ll, err := n.Host.LinkLocal()
		must(t, err)
		lls[ll.String()] = true
	}
	vmac := pair.VirtualMAC6.String()
	fromVMAC := map[string]int{}
	for _, r := range fields("vrrp", "eth.src", "ipv6.src", "ipv6.dst", "ipv6.hlim", "vrrp.version", "vrrp.checksum.status", "vrrp.ipv6_addr", "vrrp.prio") {
		if !lls[r[1]] || r[2] != "ff02::12" || r[3] != "255" || r[4] != "3" || r[5] != "1" || r[6] != vip6.String() {
			t.Errorf("advert %v: want from a node's link-local to ff02::12, hop limit 255, v3, good checksum, listing %s", r, vip6)
		}
		if r[0] == vmac {
			fromVMAC[r[1]]++
		}
	}
	if len(fromVMAC) != 2 {
		t.Errorf("adverts from the virtual MAC by source %v: want both nodes' link-locals", fromVMAC)
	}
	nas := fields("icmpv6.type == 136 && ipv6.src == "+vip6.String(), "eth.src", "icmpv6.checksum.status", "icmpv6.nd.na.flag.o", "icmpv6.opt.linkaddr")
	if len(nas) == 0 {
		t.Fatal("no unsolicited neighbour advertisement for the VIP in the capture")
	}
	for _, r := range nas {
		if r[0] != vmac || r[1] != "1" || (r[2] != "1" && r[2] != "True") || r[3] != vmac {
			t.Errorf("neighbour advertisement %v: want from %s, good checksum, Override, target link-layer address %s", r, vmac, vmac)
		}
	}
	t.Logf("adverts from the virtual MAC by source: %v; %d neighbour advertisements, all from it", fromVMAC, len(nas))
}
