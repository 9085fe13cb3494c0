package e2e

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/e2e/lab"
	"github.com/vipd/vipd/e2e/pair"
)

// frrComplaint matches what FRR 8.4's vrrpd logs when it refuses a packet
// or fails to send one.
var frrComplaint = regexp.MustCompile(`Datagram invalid|Bad (version|type|authentication|IP address|VRRP checksum)|packet length field does not match|Failed to send|Error sending|Failed to bind|Failed to find address`)

// frrComplaints returns the lines of FRR's runs in the nodes' logs (after
// each "---- frr start" marker) that frrComplaint matches.
func frrComplaints(t *testing.T, p *pair.Pair) []string {
	t.Helper()
	var out []string
	for _, n := range p.Nodes() {
		f, err := os.Open(n.Log)
		if os.IsNotExist(err) {
			continue
		}
		must(t, err)
		inFRR := false
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "---- frr start"):
				inFRR = true
			case strings.HasPrefix(line, "---- "):
				inFRR = false
			case inFRR && frrComplaint.MatchString(line):
				out = append(out, n.Host.Name+": "+line)
			}
		}
		f.Close()
	}
	return out
}

// assertFRRStatus6 is assertFRRStatus for FRR's IPv6 router.
func assertFRRStatus6(t *testing.T, p *pair.Pair, n *pair.Node, want string) {
	t.Helper()
	if n.Daemon() != frr {
		return
	}
	deadline := time.Now().Add(frrWait)
	for {
		got, err := p.FRRStatus6(n)
		if err == nil && got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("FRR on %s: IPv6 status %q (err %v), want %s", n.Host.Name, got, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// assertServing6 checks that the IPv6 VIP answers the client and that the
// client's neighbour entry for it is n's service MAC: FRR's IPv6 virtual
// MAC, vipd's with virtual_mac, or vipd's eth0 MAC.
func assertServing6(t *testing.T, p *pair.Pair, n *pair.Node) {
	t.Helper()
	if n.Daemon() != frr && n.VirtualMACLink() != pair.VMACLink6 {
		assertClientOn(t, p, n, vip6)
		return
	}
	pr, err := p.Client.StartProbe(vip6, 10*time.Millisecond)
	must(t, err)
	time.Sleep(100 * time.Millisecond)
	if r := pr.Stop(); r.Received == 0 {
		t.Fatalf("client got no reply from %s (sent %d)", vip6, r.Sent)
	}
	got, err := p.ClientNeighbour(vip6)
	must(t, err)
	if got != pair.VirtualMAC6.String() {
		t.Fatalf("client's neighbour entry for %s is %q, want %s's IPv6 virtual MAC %s", vip6, got, n.Daemon(), pair.VirtualMAC6)
	}
}

// runFRRNode6 configures n for daemon d (vipd or frr) at priority prio,
// VRRPv3 over IPv6 at interval with vip6 alone, and starts it; vipd with
// virtual_mac if n.UseVirtualMAC(pair.VMACLink6) was called.
func runFRRNode6(t *testing.T, p *pair.Pair, n *pair.Node, d string, prio uint8) {
	t.Helper()
	if d == vipd {
		extra := ""
		if n.VirtualMACLink() == pair.VMACLink6 {
			extra = "    virtual_mac: true\n"
		}
		configure6Extra(t, p, n, prio, extra, vip6.String())
		must(t, p.Start(n))
		return
	}
	must(t, p.ConfigureFRR(n, pair.FRRConfig{Priority: prio, AdvertInterval: interval, VIPs: []netip.Addr{vip6}}))
	must(t, p.StartFRR(n))
}

// TestFRRIPv6HandOver runs a vipd node and an FRR 8.4 node as one VRRPv3
// pair over IPv6 (VRID 51, fd00:18::100, 100 ms adverts), each daemon in
// turn the preferred master (150 against 100). FRR's VIP is on its IPv6
// macvlan (00:00:5e:00:02:33) with a link-local of its own
// (pair.FRRLinkLocal), vipd's on eth0. The higher priority wins and the
// other stays backup (FRR's own status says so); a link cut of the master
// hands over within Master_Down_Interval + 30 ms, a graceful stop
// (SIGTERM: a priority-0 advert) within Skew_Time + 30 ms when FRR
// resigns and within 15 ms when vipd does (it makes before it breaks);
// vipd preempting FRR costs the client at most preemptGap; the client's
// neighbour entry follows each time; vipd drops none of FRR's adverts and
// FRR logs no complaint about vipd's packets.
//
// What FRR 8.4 does on its own side is measured from the client's capture
// and logged, not bounded: after each takeover its first advert is lost
// (vrrpd logs "Failed to find address to bind": zebra reports the
// macvlan's link-local gone while it is protodown and back only after
// vrrpd's first send), and when FRR preempts vipd the client waits for
// FRR's unsolicited neighbour advertisement, or its own neighbour timers
// if that is lost. When FRR keeps master through its own link cut, vipd
// yields as the link returns and announces the VIP at FRR's MAC: bounded
// by healBoundEth0 (see TestFRRIPv6Heal).
//
// With virtual_mac on vipd (subtests vmac/..., issue 17) both daemons
// answer from 00:00:5e:00:02:33, the client's entry never changes, and
// the heal case (FRR master through its own link cut) costs the client at
// most one advert interval + 30 ms.
func TestFRRIPv6HandOver(t *testing.T) {
	for _, vmac := range []bool{false, true} {
		for _, master := range []string{vipd, frr} {
			name := master + "-master"
			if vmac {
				name = "vmac/" + name
			}
			t.Run(name, func(t *testing.T) { frrHandOver6(t, master, vmac) })
		}
	}
}

// frrTakeover is one moment FRR became master, for the capture's report.
type frrTakeover struct {
	what string
	at   time.Time // the fault
}

func frrHandOver6(t *testing.T, master string, vmac bool) {
	prefix := "f6"
	if vmac {
		prefix = "m6"
	}
	p := newFRRPair(t, prefix+master[:1])
	for _, h := range []*lab.Host{p.A.Host, p.B.Host, p.Client} {
		if _, err := h.EnableIPv6(v6Addrs[h.Name]); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		c := frrComplaints(t, p)
		var own []string
		for _, l := range c {
			if strings.Contains(l, "Failed to find address to bind") {
				own = append(own, l)
				continue
			}
			t.Errorf("FRR complained: %s", l)
		}
		t.Logf("FRR 8.4 could not send %d adverts (no link-local in its view of the macvlan as it came up)", len(own))
	})
	pcap := filepath.Join(p.Dir, "client.pcap")
	dump, err := p.Client.Start(filepath.Join(p.Dir, "tcpdump.log"), "tcpdump", "-i", "eth0", "--immediate-mode", "-U", "-n", "-w", pcap, "ip6")
	must(t, err)
	time.Sleep(300 * time.Millisecond) // tcpdump listening
	var takeovers []frrTakeover
	frrNode := p.A
	if master == vipd {
		frrNode = p.B
	}
	defer func() {
		if err := dump.Signal(syscall.SIGINT); err == nil {
			dump.Wait(5 * time.Second)
		}
		reportFRRTakeovers(t, p, pcap, p.FRRLinkLocal(frrNode), takeovers)
	}()
	backup := otherFRR(master)
	if vmac {
		vipdNode := p.A
		if master == frr {
			vipdNode = p.B
		}
		vipdNode.UseVirtualMAC(pair.VMACLink6)
	}

	runFRRNode6(t, p, p.B, backup, 100)
	must(t, p.WaitHolder(p.B, vip6, frrWait))
	assertFRRStatus6(t, p, p.B, "Master")
	at := time.Now()
	runFRRNode6(t, p, p.A, master, 150)
	if master == frr {
		takeovers = append(takeovers, frrTakeover{"FRR starts and preempts vipd", at})
	}
	must(t, p.WaitHolder(p.A, vip6, frrWait))
	assertFRRStatus6(t, p, p.A, "Master")
	assertFRRStatus6(t, p, p.B, "Backup")
	time.Sleep(3 * pair.MasterDownInterval(100, interval))
	must(t, p.WaitHolder(p.A, vip6, 0))
	assertFRRStatus6(t, p, p.B, "Backup")
	waitServing6(t, p, p.A)

	// Link cut on the master.
	bound := pair.MasterDownInterval(100, interval)
	at, o := failoverVIPs(t, p, p.B, []netip.Addr{vip6}, p.A.Host.CutLink)
	if master == vipd {
		takeovers = append(takeovers, frrTakeover{"vipd's link cut", at})
	}
	t.Logf("%s→%s IPv6 link cut: client gap %v (bound Master_Down_Interval %v + %v)", master, backup, o[vip6].gap, bound, v6Bound)
	if o[vip6].gap > bound+v6Bound {
		t.Errorf("%s→%s IPv6 link cut: client gap %v, want at most %v + %v", master, backup, o[vip6].gap, bound, v6Bound)
	}
	assertServing6(t, p, p.B)

	// Link back: the master returns. vipd preempts FRR and announces
	// the VIP. FRR never left master while cut off, so it announces
	// nothing as its link returns and vipd yields, announcing the VIP at
	// FRR's MAC (the heal case, see TestFRRIPv6Heal).
	if master == vipd {
		_, o = failoverVIPs(t, p, p.A, []netip.Addr{vip6}, p.A.Host.RestoreLink)
		t.Logf("vipd preempts FRR after its link returns: client gap %v", o[vip6].gap)
		if o[vip6].gap > preemptGap {
			t.Errorf("vipd preempting FRR over IPv6: client gap %v, want at most %v", o[vip6].gap, preemptGap)
		}
		assertServing6(t, p, p.A)
	} else {
		o := frrTakesBack(t, p, p.A.Host.RestoreLink)
		bound := healBoundEth0
		if vmac {
			bound = interval + 30*time.Millisecond
		}
		t.Logf("FRR's link back (heal case, IPv6, virtual_mac %v): client gap %v, %d of %d pings lost (bound %v)", vmac, o.gap, o.lost, o.sent, bound)
		if o.gap > bound {
			t.Errorf("FRR's link back (heal case, IPv6, virtual_mac %v): client gap %v, want at most %v", vmac, o.gap, bound)
		}
	}
	assertFRRStatus6(t, p, p.B, "Backup")

	// Graceful stop of the master.
	skew := pair.SkewTime(100, interval)
	at, o = failoverVIPs(t, p, p.B, []netip.Addr{vip6}, func() error { return p.Stop(p.A) })
	if master == vipd {
		takeovers = append(takeovers, frrTakeover{"vipd's graceful stop", at})
	}
	want := skew + v6Bound
	switch {
	case master == vipd && vmac:
		// vipd holds the VIP until it hears FRR advertise, and FRR's
		// first advert after a takeover is lost (below), so vipd waits
		// out its hand-over (one interval) while FRR already answers
		// from the same MAC. A reply vipd sends from that MAC after
		// FRR's neighbour advertisement draws the bridge back to vipd's
		// port, and when vipd lets go the client waits for FRR's next
		// frame, its second advert: in 1 of about 10 runs the client
		// lost 55 ms. Still under Skew_Time, which a daemon that lets
		// go at once (keepalived) costs every time.
		want = skew
	case master == vipd:
		want = v6StopGap
	}
	t.Logf("%s→%s IPv6 graceful stop: client gap %v (Skew_Time %v, bound %v)", master, backup, o[vip6].gap, skew, want)
	if o[vip6].gap > want {
		t.Errorf("%s→%s IPv6 graceful stop: client gap %v, want at most %v", master, backup, o[vip6].gap, want)
	}
	assertFRRStatus6(t, p, p.B, "Master")
	assertServing6(t, p, p.B)

	// Back again: the master preempts.
	if master == vipd {
		_, o = failoverVIPs(t, p, p.A, []netip.Addr{vip6}, func() error { return p.Restart(p.A) })
		t.Logf("restarted vipd preempts FRR over IPv6: client gap %v", o[vip6].gap)
		if o[vip6].gap > preemptGap {
			t.Errorf("restarted vipd preempting FRR over IPv6: client gap %v, want at most %v", o[vip6].gap, preemptGap)
		}
		assertServing6(t, p, p.A)
	} else {
		takeovers = append(takeovers, frrTakeover{"FRR restarts and preempts vipd", time.Now()})
		o := frrTakesBack(t, p, func() error { return p.Restart(p.A) })
		t.Logf("restarted FRR preempts vipd over IPv6: client gap %v, %d of %d pings lost", o.gap, o.lost, o.sent)
	}
	assertFRRStatus6(t, p, p.A, "Master")
	assertFRRStatus6(t, p, p.B, "Backup")
	assertNoDrops(t, p)
}

// frrOutage is what the client saw while FRR took the VIP back.
type frrOutage struct {
	gap        time.Duration
	lost, sent int
}

// frrTakesBack pings the VIP every 5 ms, injects fault, waits until A's
// FRR holds the VIP and the client's entry is FRR's virtual MAC (up to
// the client's neighbour timers) and returns the client's outage.
func frrTakesBack(t *testing.T, p *pair.Pair, fault func() error) frrOutage {
	t.Helper()
	pr, err := p.Client.StartProbe(vip6, pair.ProbeInterval)
	must(t, err)
	defer pr.Stop()
	time.Sleep(100 * time.Millisecond)
	at := time.Now()
	must(t, fault())
	must(t, p.WaitHolder(p.A, vip6, frrWait))
	waitServing6(t, p, p.A)
	time.Sleep(100 * time.Millisecond)
	r := pr.Stop()
	return frrOutage{gap: r.LongestGap(at.Add(-50*time.Millisecond), r.End), lost: r.Sent - r.Received, sent: r.Sent}
}

// reportFRRTakeovers logs, from the client's capture, for each time FRR
// became master: when its first unsolicited neighbour advertisement for
// the VIP and its first adverts (from ll) arrived after the fault, and
// whether the first advert came a full interval after the NA (lost).
func reportFRRTakeovers(t *testing.T, p *pair.Pair, pcap string, ll netip.Addr, takeovers []frrTakeover) {
	t.Helper()
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Logf("tshark not installed: no capture report")
		return
	}
	out, err := exec.Command(tshark, "-n", "-r", pcap, "-Y",
		"(vrrp && ipv6.src == "+ll.String()+") || (icmpv6.type == 136 && ipv6.src == "+vip6.String()+" && eth.src == "+pair.VirtualMAC6.String()+")",
		"-T", "fields", "-E", "separator=|", "-e", "frame.time_epoch", "-e", "icmpv6.type", "-e", "vrrp.prio").Output()
	if err != nil {
		t.Logf("tshark on %s: %v", pcap, err)
		return
	}
	type ev struct {
		at   time.Time
		isNA bool
	}
	var evs []ev
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(l, "|")
		if len(f) < 3 {
			continue
		}
		sec, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		evs = append(evs, ev{time.Unix(0, int64(sec*1e9)), f[1] == "136"})
	}
	for i, to := range takeovers {
		end := time.Now()
		if i+1 < len(takeovers) {
			end = takeovers[i+1].at
		}
		var na time.Time
		var adverts []time.Time
		for _, e := range evs {
			if e.at.Before(to.at) || !e.at.Before(end) {
				continue
			}
			if e.isNA && na.IsZero() {
				na = e.at
			}
			if !e.isNA && len(adverts) < 3 {
				adverts = append(adverts, e.at)
			}
		}
		var rel []string
		for _, a := range adverts {
			rel = append(rel, a.Sub(to.at).Round(time.Millisecond).String())
		}
		naRel := "none"
		if !na.IsZero() {
			naRel = na.Sub(to.at).Round(time.Millisecond).String()
		}
		lost := ""
		if !na.IsZero() && len(adverts) > 0 && adverts[0].Sub(na) > interval/2 {
			lost = fmt.Sprintf(" — its first advert came %v after its NA: one advert lost", adverts[0].Sub(na).Round(time.Millisecond))
		}
		t.Logf("FRR takeover (%s): first unsolicited NA %s after the fault, first adverts %v after it%s", to.what, naRel, rel, lost)
	}
}

// waitServing6 pings the IPv6 VIP and waits (up to 40 s, the client's
// neighbour timers) until the client's entry for it is n's, then
// assertServing6.
func waitServing6(t *testing.T, p *pair.Pair, n *pair.Node) {
	t.Helper()
	pr, err := p.Client.StartProbe(vip6, 10*time.Millisecond)
	must(t, err)
	defer pr.Stop()
	want := pair.VirtualMAC6.String()
	if n.Daemon() != frr && n.VirtualMACLink() != pair.VMACLink6 {
		mac, err := n.Host.MAC()
		must(t, err)
		want = mac.String()
	}
	start := time.Now()
	for {
		got, err := p.ClientNeighbour(vip6)
		must(t, err)
		if got == want {
			break
		}
		if time.Since(start) > 40*time.Second {
			t.Fatalf("client's neighbour entry for %s is %q after 40 s, want %s", vip6, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Logf("client's neighbour entry moved to %s's MAC %v after the VIP landed there", n.Daemon(), d.Round(time.Millisecond))
	}
	assertServing6(t, p, n)
}
