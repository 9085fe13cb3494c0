package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/e2e/lab"
	"github.com/vipd/vipd/e2e/pair"
)

// The IPv6 lab: the pair's hosts get fd00:18::/64 addresses beside their
// IPv4 ones, and VRRPv3 runs over IPv6 from their link-locals.
var (
	vip6      = netip.MustParseAddr("fd00:18::100")
	v6Addrs   = map[string]netip.Prefix{"a": netip.MustParsePrefix("fd00:18::11/64"), "b": netip.MustParsePrefix("fd00:18::12/64"), "client": netip.MustParsePrefix("fd00:18::50/64")}
	v6Bound   = 30 * time.Millisecond // the bound beyond Master_Down_Interval for a link cut
	v6StopGap = 15 * time.Millisecond // and for a graceful stop (make before break)
)

// newPair6 is newPair with IPv6 on in a, b and the client.
func newPair6(t *testing.T, short string) *pair.Pair {
	t.Helper()
	p := newPair(t, short)
	for _, h := range []*lab.Host{p.A.Host, p.B.Host, p.Client} {
		if _, err := h.EnableIPv6(v6Addrs[h.Name]); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// configure6 writes n's configuration: one instance, VRID 51, at interval,
// with the VIPs given as YAML flow items.
func configure6(t *testing.T, p *pair.Pair, n *pair.Node, prio uint8, vips ...string) {
	t.Helper()
	configure6Extra(t, p, n, prio, "", vips...)
}

// configure6Extra is configure6 with more instance keys, extra (YAML,
// indented by 4, each line ending in a newline).
func configure6Extra(t *testing.T, p *pair.Pair, n *pair.Node, prio uint8, extra string, vips ...string) {
	t.Helper()
	n.Priority = prio
	var b strings.Builder
	fmt.Fprintf(&b, "metrics_listen: \"\"\ncontrol_socket: %s\nstate_dir: %s\ninstances:\n",
		filepath.Join(p.Dir, n.Host.Name+".sock"), filepath.Join(p.Dir, n.Host.Name+"-state"))
	fmt.Fprintf(&b, "  - name: web\n    interface: eth0\n    vrid: 51\n    priority: %d\n    advert_interval: %s\n%s    vips:\n", prio, interval, extra)
	for _, v := range vips {
		fmt.Fprintf(&b, "      - %s\n", v)
	}
	must(t, os.WriteFile(n.Config, []byte(b.String()), 0o600))
}

// configureTwo writes n's configuration with two instances on eth0: web
// (VRID 51) with the IPv4 VIP and web6 (VRID 52) with the IPv6 one.
func configureTwo(t *testing.T, p *pair.Pair, n *pair.Node, prio uint8) {
	t.Helper()
	n.Priority = prio
	var b strings.Builder
	fmt.Fprintf(&b, "metrics_listen: \"\"\ncontrol_socket: %s\nstate_dir: %s\ninstances:\n",
		filepath.Join(p.Dir, n.Host.Name+".sock"), filepath.Join(p.Dir, n.Host.Name+"-state"))
	for i, v := range []netip.Addr{pair.VIP, vip6} {
		name := []string{"web", "web6"}[i]
		fmt.Fprintf(&b, "  - name: %s\n    interface: eth0\n    vrid: %d\n    priority: %d\n    advert_interval: %s\n    vips: [\"%s\"]\n",
			name, 51+i, prio, interval, v)
	}
	must(t, os.WriteFile(n.Config, []byte(b.String()), 0o600))
}

// startPair6 starts A (150) and B (100) with vips and waits until A alone
// holds each of want.
func startPair6(t *testing.T, p *pair.Pair, want []netip.Addr, vips ...string) {
	t.Helper()
	configure6(t, p, p.A, 150, vips...)
	configure6(t, p, p.B, 100, vips...)
	must(t, p.Start(p.A))
	must(t, p.Start(p.B))
	for _, v := range want {
		must(t, p.WaitHolder(p.A, v, 5*time.Second))
	}
}

// outage6 is what the client saw of one VIP when it moved.
type outage6 struct {
	gap         time.Duration
	land        time.Time // the VIP on the new master
	landToReply time.Duration
}

// failoverVIPs pings each of vips from the client every 5 ms, injects
// fault, waits until to alone holds each and the client has had replies
// for 200 ms after it landed, and reports each VIP's outage and the fault
// time. With FRR on to, the landing is when WaitHolder saw FRR's macvlan
// up, a few ms late.
func failoverVIPs(t *testing.T, p *pair.Pair, to *pair.Node, vips []netip.Addr, fault func() error) (time.Time, map[netip.Addr]outage6) {
	t.Helper()
	probes := map[netip.Addr]*lab.Probe{}
	watches := map[netip.Addr]*lab.AddrWatch{}
	for _, v := range vips {
		w, err := to.Host.WatchAddr(v)
		must(t, err)
		defer w.Stop()
		watches[v] = w
		pr, err := p.Client.StartProbe(v, pair.ProbeInterval)
		must(t, err)
		defer pr.Stop()
		probes[v] = pr
	}
	start := time.Now()
	time.Sleep(150 * time.Millisecond)
	for v, pr := range probes {
		if pr.Snapshot().RepliesBetween(start, time.Now()) == 0 {
			t.Fatalf("the client got no reply from %s before the fault", v)
		}
	}
	at := time.Now()
	must(t, fault())
	out := map[netip.Addr]outage6{}
	deadline := time.Now().Add(5 * time.Second)
	for _, v := range vips {
		must(t, p.WaitHolder(to, v, 5*time.Second))
		var land time.Time
		if to.Daemon() == frr {
			// FRR's VIPs stay on its macvlan; what lands is the
			// macvlan coming up, seen here by polling.
			land = time.Now()
		}
		for land.IsZero() {
			for _, ev := range watches[v].Events() {
				if ev.Added && ev.Time.After(at) {
					land = ev.Time
					break
				}
			}
			if land.IsZero() {
				if time.Now().After(deadline) {
					t.Fatalf("no address event showed %s landing on %s", v, to.Host.Name)
				}
				time.Sleep(2 * time.Millisecond)
			}
		}
		for {
			r := probes[v].Snapshot()
			if first, ok := r.FirstReplyAfter(land); ok && time.Since(first) >= 200*time.Millisecond {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the client got no reply from %s after it landed on %s", v, to.Host.Name)
			}
			time.Sleep(10 * time.Millisecond)
		}
		out[v] = outage6{land: land}
	}
	for _, v := range vips {
		res := probes[v].Stop()
		o := out[v]
		o.gap = res.LongestGap(at.Add(-50*time.Millisecond), res.End)
		if first, ok := res.FirstReplyAfter(o.land); ok {
			o.landToReply = first.Sub(o.land)
		}
		out[v] = o
	}
	return at, out
}

// assertClientOn checks that v answers the client and that the client's
// neighbour entry for it (ARP or NDP) is n's MAC.
func assertClientOn(t *testing.T, p *pair.Pair, n *pair.Node, v netip.Addr) {
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
		t.Fatalf("client got no reply from %s (sent %d)", v, r.Sent)
	}
	mac, err := n.Host.MAC()
	must(t, err)
	got, err := p.ClientNeighbour(v)
	must(t, err)
	if got != mac.String() {
		t.Fatalf("client's neighbour entry for %s is %q, want %s's MAC %s", v, got, n.Host.Name, mac)
	}
}

// assertNoDrops fails if a node logged a refused advert.
func assertNoDrops(t *testing.T, p *pair.Pair) {
	t.Helper()
	for _, n := range p.Nodes() {
		b, err := os.ReadFile(n.Log)
		must(t, err)
		if strings.Contains(string(b), "dropped VRRP packet") {
			t.Errorf("%s dropped adverts:\n%s", n.Host.Name, b)
		}
	}
}

// A vipd pair over IPv6: the higher priority wins, adverts go from the
// link-locals; a link cut moves the VIP within Master_Down_Interval + 30 ms
// and a graceful stop within 15 ms (make before break), and each time the
// client's neighbour entry follows to the new master's MAC (unsolicited
// neighbour advertisements).
func TestIPv6PairFailover(t *testing.T) {
	p := newPair6(t, "sx")
	startPair6(t, p, []netip.Addr{vip6}, vip6.String())
	if ok, err := p.B.Host.HasAddr(vip6); err != nil || ok {
		t.Fatalf("the backup holds %s too (err %v)", vip6, err)
	}
	// The VIP is added without DAD and deprecated (never a source).
	out, err := p.A.Host.Run("ip", "-6", "addr", "show", "dev", "eth0", "to", vip6.String()+"/128")
	must(t, err)
	if !strings.Contains(out, "deprecated") || !strings.Contains(out, "nodad") || strings.Contains(out, "tentative") {
		t.Errorf("the VIP on a is not nodad and deprecated:\n%s", out)
	}
	assertClientOn(t, p, p.A, vip6)
	// vipd doctor on the backup: the link-local, the IPv6 settings and
	// the master heard on ff02::12.
	lla, err := p.A.Host.LinkLocal()
	must(t, err)
	llb, err := p.B.Host.LinkLocal()
	must(t, err)
	doc, code := doctor(t, p, p.B)
	for _, want := range []string{"sends adverts from its link-local " + llb.String(), "accept_dad is 0 on eth0", "IPv6 forwarding is off on eth0",
		"VRID 51 advertised by " + lla.String() + " (priority 150)"} {
		if !strings.Contains(doc, want) {
			t.Errorf("doctor on the IPv6 backup (exit %d) lacks %q:\n%s", code, want, doc)
		}
	}
	if strings.Contains(doc, "fe80::") && strings.Contains(doc, "which no vipd instance owns") && strings.Contains(doc, "carries fe80") {
		t.Errorf("doctor reports the link-local as an unowned address:\n%s", doc)
	}

	bound := pair.MasterDownInterval(100, interval)
	_, o := failoverVIPs(t, p, p.B, []netip.Addr{vip6}, p.A.Host.CutLink)
	t.Logf("IPv6 link cut: client gap %v (bound %v + %v), landing → first reply %v", o[vip6].gap, bound, v6Bound, o[vip6].landToReply)
	if o[vip6].gap > bound+v6Bound {
		t.Errorf("client gap %v after a link cut, want at most %v + %v", o[vip6].gap, bound, v6Bound)
	}
	assertClientOn(t, p, p.B, vip6)

	must(t, p.A.Host.RestoreLink())
	must(t, p.WaitHolder(p.A, vip6, 5*time.Second))
	assertClientOn(t, p, p.A, vip6)

	old, err := p.A.Host.WatchAddr(vip6)
	must(t, err)
	defer old.Stop()
	at, o := failoverVIPs(t, p, p.B, []netip.Addr{vip6}, func() error { return p.Stop(p.A) })
	var released time.Time
	for _, ev := range old.Events() {
		if !ev.Added && ev.Time.After(at) {
			released = ev.Time
		}
	}
	t.Logf("IPv6 graceful stop: client gap %v, VIP on b %v after the signal, off a %v after it", o[vip6].gap, o[vip6].land.Sub(at), released.Sub(at))
	if o[vip6].gap > v6StopGap {
		t.Errorf("client gap %v after a graceful stop, want at most %v", o[vip6].gap, v6StopGap)
	}
	switch {
	case released.IsZero():
		t.Error("no address event showed the VIP leaving a")
	case released.Before(o[vip6].land.Add(-watchSkew)):
		t.Errorf("a let the VIP go %v before b took it, want after", o[vip6].land.Sub(released))
	}
	assertClientOn(t, p, p.B, vip6)
	assertNoDrops(t, p)
}

// A dual-stack instance: IPv4 adverts carry the IPv4 VIP; the IPv6 VIP
// (advertise: false) moves with it and is announced with neighbour
// advertisements, so both clients follow a link cut and a graceful stop.
func TestIPv6DualStackFailover(t *testing.T) {
	p := newPair6(t, "sy")
	both := []netip.Addr{pair.VIP, vip6}
	startPair6(t, p, both, pair.VIP.String(), "{address: \""+vip6.String()+"\", advertise: false}")
	for _, v := range both {
		assertClientOn(t, p, p.A, v)
	}
	bound := pair.MasterDownInterval(100, interval)
	_, o := failoverVIPs(t, p, p.B, both, p.A.Host.CutLink)
	for _, v := range both {
		t.Logf("dual stack link cut: %s client gap %v (bound %v + %v)", v, o[v].gap, bound, v6Bound)
		if o[v].gap > bound+v6Bound {
			t.Errorf("%s: client gap %v after a link cut, want at most %v + %v", v, o[v].gap, bound, v6Bound)
		}
		assertClientOn(t, p, p.B, v)
	}
	must(t, p.A.Host.RestoreLink())
	for _, v := range both {
		must(t, p.WaitHolder(p.A, v, 5*time.Second))
		assertClientOn(t, p, p.A, v)
	}
	_, o = failoverVIPs(t, p, p.B, both, func() error { return p.Stop(p.A) })
	for _, v := range both {
		t.Logf("dual stack graceful stop: %s client gap %v", v, o[v].gap)
		if o[v].gap > v6StopGap {
			t.Errorf("%s: client gap %v after a graceful stop, want at most %v", v, o[v].gap, v6StopGap)
		}
		assertClientOn(t, p, p.B, v)
	}
	assertNoDrops(t, p)
}

// An IPv4 and an IPv6 instance on one interface: each elects in its own
// family on the one link, and both VIPs follow a link cut and a graceful
// stop.
func TestIPv6BesideIPv4Instance(t *testing.T) {
	p := newPair6(t, "sw")
	both := []netip.Addr{pair.VIP, vip6}
	configureTwo(t, p, p.A, 150)
	configureTwo(t, p, p.B, 100)
	must(t, p.Start(p.A))
	must(t, p.Start(p.B))
	for _, v := range both {
		must(t, p.WaitHolder(p.A, v, 5*time.Second))
		assertClientOn(t, p, p.A, v)
	}
	bound := pair.MasterDownInterval(100, interval)
	_, o := failoverVIPs(t, p, p.B, both, p.A.Host.CutLink)
	for _, v := range both {
		t.Logf("two instances, link cut: %s client gap %v (bound %v + %v)", v, o[v].gap, bound, v6Bound)
		if o[v].gap > bound+v6Bound {
			t.Errorf("%s: client gap %v after a link cut, want at most %v + %v", v, o[v].gap, bound, v6Bound)
		}
		assertClientOn(t, p, p.B, v)
	}
	must(t, p.A.Host.RestoreLink())
	for _, v := range both {
		must(t, p.WaitHolder(p.A, v, 5*time.Second))
	}
	_, o = failoverVIPs(t, p, p.B, both, func() error { return p.Stop(p.A) })
	for _, v := range both {
		t.Logf("two instances, graceful stop: %s client gap %v", v, o[v].gap)
		if o[v].gap > v6StopGap {
			t.Errorf("%s: client gap %v after a graceful stop, want at most %v", v, o[v].gap, v6StopGap)
		}
		assertClientOn(t, p, p.B, v)
	}
	assertNoDrops(t, p)
}

// An IPv6 instance on an interface without a link-local goes to fault and
// says why; given one, it runs.
func TestIPv6NoLinkLocalFault(t *testing.T) {
	p := newPair(t, "sz")
	// IPv6 on, but no link-local: addr_gen_mode 1 (none) before eth0
	// gets IPv6.
	for _, k := range []string{"net.ipv6.conf.eth0.addr_gen_mode=1", "net.ipv6.conf.eth0.accept_dad=0", "net.ipv6.conf.all.disable_ipv6=0", "net.ipv6.conf.eth0.disable_ipv6=0"} {
		_, err := p.A.Host.Run("sysctl", "-qw", k)
		must(t, err)
	}
	configure6(t, p, p.A, 150, vip6.String())
	must(t, p.Start(p.A))
	deadline := time.Now().Add(3 * time.Second)
	for {
		b, err := os.ReadFile(p.A.Log)
		must(t, err)
		if strings.Contains(string(b), "no usable IPv6 link-local") && strings.Contains(string(b), "reason=no_link_local") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("vipd did not say why the instance is in fault:\n%s", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ok, err := p.A.Host.HasAddr(vip6); err != nil || ok {
		t.Fatalf("the VIP is on while in fault (err %v)", err)
	}
	_, err := p.A.Host.Run("ip", "-6", "addr", "add", "fe80::11/64", "dev", "eth0", "nodad")
	must(t, err)
	must(t, p.WaitHolder(p.A, vip6, 3*time.Second))
}

// keepalived 2.2.7 as the peer over IPv6, each daemon in turn the preferred
// master: the higher priority wins, a link cut and a graceful stop hand
// over within the bounds, the client's neighbour entry follows, the
// master takes the VIP back when it returns, and neither daemon complains
// about the other's packets.
func TestIPv6KeepalivedHandOver(t *testing.T) {
	for _, master := range []string{vipd, keepalived} {
		t.Run(master+"-master", func(t *testing.T) {
			p := newInteropPair(t, "s6"+master[:1])
			for _, h := range []*lab.Host{p.A.Host, p.B.Host, p.Client} {
				if _, err := h.EnableIPv6(v6Addrs[h.Name]); err != nil {
					t.Fatal(err)
				}
			}
			run := func(n *pair.Node, d string, prio uint8) {
				t.Helper()
				if d == vipd {
					configure6(t, p, n, prio, vip6.String())
					must(t, p.Start(n))
					return
				}
				must(t, p.ConfigureKeepalived(n, pair.KeepalivedConfig{Priority: prio, AdvertInterval: interval, VIPs: []netip.Addr{vip6}}))
				must(t, p.StartKeepalived(n))
			}
			backup := other(master)
			run(p.B, backup, 100)
			must(t, p.WaitHolder(p.B, vip6, 5*time.Second))
			run(p.A, master, 150)
			must(t, p.WaitHolder(p.A, vip6, 5*time.Second))
			assertClientOn(t, p, p.A, vip6)

			bound := pair.MasterDownInterval(100, interval)
			_, o := failoverVIPs(t, p, p.B, []netip.Addr{vip6}, p.A.Host.CutLink)
			t.Logf("%s→%s IPv6 link cut: client gap %v (bound %v + %v)", master, backup, o[vip6].gap, bound, v6Bound)
			if o[vip6].gap > bound+v6Bound {
				t.Errorf("%s→%s link cut: client gap %v, want at most %v + %v", master, backup, o[vip6].gap, bound, v6Bound)
			}
			assertClientOn(t, p, p.B, vip6)
			must(t, p.A.Host.RestoreLink())
			must(t, p.WaitHolder(p.A, vip6, 5*time.Second))
			assertClientOn(t, p, p.A, vip6)

			skew := pair.SkewTime(100, interval)
			_, o = failoverVIPs(t, p, p.B, []netip.Addr{vip6}, func() error { return p.Stop(p.A) })
			t.Logf("%s→%s IPv6 graceful stop: client gap %v (Skew_Time %v)", master, backup, o[vip6].gap, skew)
			want := skew + v6Bound // keepalived lets go at once: the client waits out Skew_Time
			if master == vipd {
				want = v6StopGap // vipd makes before it breaks, whoever takes over
			}
			if o[vip6].gap > want {
				t.Errorf("%s→%s graceful stop: client gap %v, want at most %v", master, backup, o[vip6].gap, want)
			}
			assertClientOn(t, p, p.B, vip6)
			must(t, p.Restart(p.A))
			must(t, p.WaitHolder(p.A, vip6, 5*time.Second))
			assertClientOn(t, p, p.A, vip6)
		})
	}
}

// tshark, on what the client captured of an IPv6 pair's election and a
// graceful stop, finds every advert well formed (link-local source,
// ff02::12, hop limit 255, version 3, good checksum, the VIP listed) and
// every neighbour advertisement for the VIP unsolicited, with Override,
// without Router (no forwarding), a good checksum and the sender's MAC as
// target link-layer address, from both masters in turn.
func TestIPv6WireFormat(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed")
	}
	p := newPair6(t, "sv")
	pcap := filepath.Join(p.Dir, "client.pcap")
	dump, err := p.Client.Start(filepath.Join(p.Dir, "tcpdump.log"), "tcpdump", "-i", "eth0", "--immediate-mode", "-U", "-n", "-w", pcap, "ip6")
	must(t, err)
	time.Sleep(500 * time.Millisecond) // tcpdump listening
	startPair6(t, p, []netip.Addr{vip6}, vip6.String())
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
	lla, err := p.A.Host.LinkLocal()
	must(t, err)
	llb, err := p.B.Host.LinkLocal()
	must(t, err)
	adverts := fields("vrrp", "ipv6.src", "ipv6.dst", "ipv6.hlim", "vrrp.version", "vrrp.checksum.status", "vrrp.ipv6_addr", "vrrp.prio")
	from := map[string]int{}
	for _, r := range adverts {
		if (r[0] != lla.String() && r[0] != llb.String()) || r[1] != "ff02::12" || r[2] != "255" || r[3] != "3" || r[4] != "1" || r[5] != vip6.String() {
			t.Errorf("advert %v: want from a link-local to ff02::12, hop limit 255, v3, good checksum, listing %s", r, vip6)
		}
		from[r[0]]++
	}
	if from[lla.String()] == 0 || from[llb.String()] == 0 {
		t.Errorf("adverts by source %v: want both nodes' link-locals", from)
	}
	macA, err := p.A.Host.MAC()
	must(t, err)
	macB, err := p.B.Host.MAC()
	must(t, err)
	nas := fields("icmpv6.type == 136 && ipv6.src == "+vip6.String(), "eth.src", "ipv6.dst", "ipv6.hlim", "icmpv6.checksum.status",
		"icmpv6.nd.na.flag.r", "icmpv6.nd.na.flag.s", "icmpv6.nd.na.flag.o", "icmpv6.nd.na.target_address", "icmpv6.opt.linkaddr")
	byMAC := map[string]int{}
	for _, r := range nas {
		if r[6] != "1" && r[6] != "True" {
			continue // a solicited answer from the kernel, not vipd's
		}
		if r[1] != "ff02::1" || r[2] != "255" || r[3] != "1" || (r[4] != "0" && r[4] != "False") || (r[5] != "0" && r[5] != "False") || r[7] != vip6.String() || r[8] != r[0] {
			t.Errorf("neighbour advertisement %v: want to ff02::1, hop limit 255, good checksum, R and S clear, O set, target %s, link-layer address = sender", r, vip6)
		}
		byMAC[r[0]]++
	}
	if byMAC[macA.String()] == 0 || byMAC[macB.String()] == 0 {
		t.Errorf("unsolicited neighbour advertisements by MAC %v: want a's (%s) and then b's (%s)", byMAC, macA, macB)
	}
	t.Logf("%d adverts (%v), %d unsolicited NAs (%v)", len(adverts), from, len(nas), byMAC)
	if t.Failed() {
		all, _ := exec.Command(tshark, "-n", "-r", pcap).CombinedOutput()
		t.Logf("capture:\n%s", all)
	}
}
