package e2e

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/e2e/pair"
)

// The third daemon a node of an interop pair can run: FRR's vrrpd (with
// zebra), from Debian's frr package. See pair.StartFRR for the set-up.
const frr = "frr"

// newFRRPair is newInteropPair for pairs with FRR in them: vipd's log is
// scanned for dropped packets; FRR's lines are not scanned.
func newFRRPair(t *testing.T, short string) *pair.Pair {
	t.Helper()
	needLab(t)
	if _, err := pair.FRRPath(); err != nil {
		t.Fatal(err)
	}
	return newInteropPair(t, short)
}

// runFRRNode configures n for daemon d (vipd or frr) at priority prio,
// VRRPv3 at interval, and starts it; vipd with virtual_mac if vmac.
func runFRRNode(t *testing.T, p *pair.Pair, n *pair.Node, d string, prio uint8, vmac bool) {
	t.Helper()
	switch d {
	case vipd:
		must(t, p.Configure(n, pair.NodeConfig{Priority: prio, AdvertInterval: interval, VirtualMAC: vmac}))
		must(t, p.Start(n))
	case frr:
		must(t, p.ConfigureFRR(n, pair.FRRConfig{Priority: prio, AdvertInterval: interval}))
		must(t, p.StartFRR(n))
	default:
		t.Fatalf("unknown daemon %q", d)
	}
}

func otherFRR(d string) string {
	if d == vipd {
		return frr
	}
	return vipd
}

// frrWait is a generous timeout for anything that takes a few
// Master_Down_Intervals at interval.
var frrWait = 3*pair.MasterDownInterval(1, interval) + time.Second

// assertServing checks that the VIP answers the client and that the
// client's ARP entry for it is n's service MAC: the virtual MAC for FRR,
// eth0's for vipd.
func assertServing(t *testing.T, p *pair.Pair, n *pair.Node) {
	t.Helper()
	probe, err := p.Client.StartProbe(pair.VIP, 10*time.Millisecond)
	must(t, err)
	time.Sleep(100 * time.Millisecond)
	if r := probe.Stop(); r.Received == 0 {
		t.Fatalf("client got no reply from %s (sent %d)", pair.VIP, r.Sent)
	}
	mac, err := n.ServiceMAC()
	must(t, err)
	got, err := p.ClientNeighbour(pair.VIP)
	must(t, err)
	if got != mac.String() {
		t.Fatalf("client's ARP entry for %s is %q, want %s's (%s) %s", pair.VIP, got, n.Host.Name, n.Daemon(), mac)
	}
}

// assertFRRStatus checks FRR's own view of its virtual router on n.
func assertFRRStatus(t *testing.T, p *pair.Pair, n *pair.Node, want string) {
	t.Helper()
	if n.Daemon() != frr {
		return
	}
	deadline := time.Now().Add(frrWait)
	for {
		got, err := p.FRRStatus(n)
		if err == nil && got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("FRR on %s: status %q (err %v), want %s", n.Host.Name, got, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFRRHandOver runs a vipd node and an FRR node as one pair at 100 ms
// adverts, each daemon in turn the preferred master (150 against 100):
// the higher priority wins whichever daemon it is and the other stays
// backup (FRR's own status says so, so it accepted vipd's adverts); a
// link cut and a graceful stop of the master hand over within the
// protocol's bounds, and the master takes the VIP back when it returns.
// After FRR's link cut the return is the heal case of TestFRRHeal, only
// waited for here.
func TestFRRHandOver(t *testing.T) {
	for _, m := range vmacModes {
		for _, master := range []string{vipd, frr} {
			t.Run(m.name+"/"+master+"-master", func(t *testing.T) { frrHandOver(t, master, m.vmac) })
		}
	}
}

// frrHandOver is one case of TestFRRHandOver: master (vipd or frr) at
// 150, the other daemon at 100, vipd with virtual_mac if vmac.
func frrHandOver(t *testing.T, master string, vmac bool) {
	short := "fr" + master[:1]
	if vmac {
		short += "v"
	}
	p := newFRRPair(t, short)
	backup := otherFRR(master)

	// The lower priority starts first and alone; the higher one
	// must still win when it joins.
	runFRRNode(t, p, p.B, backup, 100, vmac)
	must(t, p.WaitHolder(p.B, pair.VIP, frrWait))
	assertFRRStatus(t, p, p.B, "Master")
	runFRRNode(t, p, p.A, master, 150, vmac)
	must(t, p.WaitHolder(p.A, pair.VIP, frrWait))
	assertFRRStatus(t, p, p.A, "Master")
	assertFRRStatus(t, p, p.B, "Backup")
	// Several Master_Down_Intervals: the backup stays backup.
	time.Sleep(3 * pair.MasterDownInterval(100, interval))
	must(t, p.WaitHolder(p.A, pair.VIP, 0))
	assertFRRStatus(t, p, p.B, "Backup")
	assertServing(t, p, p.A)

	// Link cut on the master: the backup takes over when it has
	// heard nothing for its Master_Down_Interval.
	bound := pair.MasterDownInterval(100, interval)
	o, err := p.Failover(p.B, p.A.Host.CutLink, frrWait, 200*time.Millisecond)
	must(t, err)
	t.Logf("%s→%s link cut: client gap %v (bound Master_Down_Interval %v), VIP landing → first reply %v",
		master, backup, o.Gap, bound, o.LandToReply)
	if o.Gap > bound+slack {
		t.Errorf("%s→%s link cut: client gap %v, want at most %v + %v", master, backup, o.Gap, bound, slack)
	}
	if master == frr {
		st, err := p.FRRStatus(p.A)
		t.Logf("FRR cut off from the segment: status %s (err %v)", st, err)
	}
	assertServing(t, p, p.B)

	// Link back: the higher priority preempts.
	if master == frr {
		o, err = p.Failover(p.A, p.A.Host.RestoreLink, 20*time.Second, 200*time.Millisecond)
		must(t, err)
		bound := healBoundEth0
		if vmac {
			bound = healBoundVMAC
		}
		t.Logf("FRR's link back (the heal case, see TestFRRHeal): client gap %v (bound %v)", o.Gap, bound)
		if o.Gap > bound {
			t.Errorf("FRR's link back: client gap %v, want at most %v", o.Gap, bound)
		}
	} else {
		o, err = p.Failover(p.A, p.A.Host.RestoreLink, frrWait, 200*time.Millisecond)
		must(t, err)
		t.Logf("%s preempts %s after the link returns: client gap %v", master, backup, o.Gap)
		if o.Gap > preemptGap {
			t.Errorf("%s preempting %s: client gap %v, want at most %v", master, backup, o.Gap, preemptGap)
		}
	}
	assertFRRStatus(t, p, p.B, "Backup")
	assertServing(t, p, p.A)

	// Graceful stop: the master resigns with a priority-0 advert
	// and the backup takes over after its Skew_Time.
	bound = pair.SkewTime(100, interval)
	o, err = p.Failover(p.B, func() error { return p.Stop(p.A) }, frrWait, 200*time.Millisecond)
	must(t, err)
	t.Logf("%s→%s graceful stop: client gap %v (bound Skew_Time %v), VIP landing → first reply %v",
		master, backup, o.Gap, bound, o.LandToReply)
	if o.Gap > bound+slack {
		t.Errorf("%s→%s graceful stop: client gap %v, want at most Skew_Time %v + %v", master, backup, o.Gap, bound, slack)
	}
	assertFRRStatus(t, p, p.B, "Master")
	assertServing(t, p, p.B)

	// Back again: preempt.
	o, err = p.Failover(p.A, func() error { return p.Restart(p.A) }, frrWait, 200*time.Millisecond)
	must(t, err)
	t.Logf("restarted %s preempts %s: client gap %v", master, backup, o.Gap)
	if o.Gap > preemptGap {
		t.Errorf("restarted %s preempting %s: client gap %v, want at most %v", master, backup, o.Gap, preemptGap)
	}
	assertFRRStatus(t, p, p.A, "Master")
	assertFRRStatus(t, p, p.B, "Backup")
	assertServing(t, p, p.A)
}

// healTrials is how many times TestFRRHeal cuts and restores FRR's link.
const healTrials = 3

// vmacModes are vipd's two modes against FRR: without virtual_mac (the
// VIP on eth0, at eth0's MAC) and with it.
var vmacModes = []struct {
	name string
	vmac bool
}{{"eth0-mac", false}, {"virtual-mac", true}}

// healBoundEth0 is the heal case's measured bound without virtual_mac:
// vipd yields on FRR's first advert after the link returns and announces
// the VIP at FRR's MAC, learned from FRR's next advert, one interval
// later; the client loses at most that interval, and slack.
const healBoundEth0 = interval + slack

// healBoundVMAC is the bound with virtual_mac: one advert
// interval and 30 ms.
const healBoundVMAC = interval + 30*time.Millisecond

// TestFRRHeal is the heal case of issue 16: FRR at 150, vipd at 100,
// FRR's link cut and restored. FRR does not leave master when its link
// drops, so both are master during the cut and the client moves to vipd;
// when the link returns vipd yields, and FRR, master all along, announces
// nothing. With virtual_mac the client's entry is the virtual MAC on both
// sides and FRR's first advert moves the bridge: the outage after the
// link returns is at most healBoundVMAC. Without it vipd announces the VIP
// at FRR's MAC as it yields (vrrp/heal.go): at most healBoundEth0, not the
// client's neighbour timers (seconds).
func TestFRRHeal(t *testing.T) {
	for _, m := range vmacModes {
		t.Run(m.name, func(t *testing.T) {
			bound := healBoundEth0
			if m.vmac {
				bound = healBoundVMAC
			}
			p := newFRRPair(t, "frh"+m.name[:1])
			runFRRNode(t, p, p.B, vipd, 100, m.vmac)
			must(t, p.WaitHolder(p.B, pair.VIP, frrWait))
			runFRRNode(t, p, p.A, frr, 150, false)
			must(t, p.WaitHolder(p.A, pair.VIP, frrWait))
			assertServing(t, p, p.A)

			var gaps []time.Duration
			for i := range healTrials {
				o, err := p.Failover(p.B, p.A.Host.CutLink, frrWait, 300*time.Millisecond)
				must(t, err)
				st, _ := p.FRRStatus(p.A)
				assertServing(t, p, p.B)
				// A little more time on vipd, as a real cut would last.
				time.Sleep(500 * time.Millisecond)
				cutGap := o.Gap
				o, err = p.Failover(p.A, p.A.Host.RestoreLink, 30*time.Second, 300*time.Millisecond)
				must(t, err)
				mac, err := p.ClientNeighbour(pair.VIP)
				must(t, err)
				t.Logf("trial %d: cut: client gap %v, FRR's status while cut %s; heal: client gap %v, %d of %d pings lost, client's entry now %s",
					i+1, cutGap, st, o.Gap, o.Lost, o.Sent, mac)
				gaps = append(gaps, o.Gap)
				assertServing(t, p, p.A)
			}
			slices.Sort(gaps)
			t.Logf("heal case, %s, FRR 150 / vipd 100, %d trials at %v adverts: client outage after the link returns min %v, median %v, max %v (bound %v)",
				m.name, len(gaps), interval, gaps[0], gaps[len(gaps)/2], gaps[len(gaps)-1], bound)
			if gaps[len(gaps)-1] > bound {
				t.Errorf("heal case, %s: client outage up to %v after FRR's link returned, want at most %v", m.name, gaps[len(gaps)-1], bound)
			}
			logb, err := os.ReadFile(p.B.Log)
			must(t, err)
			if strings.Contains(string(logb), "address conflict") {
				t.Errorf("vipd took FRR's answer at the virtual MAC (or its own announcement of it) for an address conflict")
			}
			if !m.vmac {
				if n := strings.Count(string(logb), "announced the VIPs at the new master's MAC"); n < healTrials {
					t.Errorf("vipd's log says %d times that it announced the VIP at FRR's MAC, want %d", n, healTrials)
				}
			}
		})
	}
}
