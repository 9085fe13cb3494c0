package e2e

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/vipd/vipd/e2e/pair"
)

// keepalived with use_vmac as the peer of vipd with virtual_mac: true.
// Both nodes keep the VIP on a macvlan called vrrp4.51 with
// 00:00:5e:00:01:33 (keepalived's is named explicitly so that one name
// serves both), so the client's ARP entry for the VIP must be the virtual
// MAC whoever is master.

// vmacLink is the macvlan of VRID 51 on both nodes.
const vmacLink = "vrrp4.51"

// TestKeepalivedVirtualMAC: each daemon in turn the preferred master; a
// link cut and a graceful stop hand over within the interop bounds
// (Master_Down_Interval, Skew_Time), the master takes the VIP back, the
// client's entry for the VIP stays the virtual MAC after every move, and
// neither daemon complains about the other's packets.
func TestKeepalivedVirtualMAC(t *testing.T) {
	for _, master := range []string{vipd, keepalived} {
		t.Run(master+"-master", func(t *testing.T) { keepalivedVMAC(t, master) })
	}
}

// runVMACNode configures n for daemon d at priority prio with the virtual
// MAC on, VRRPv3 at interval, and starts it.
func runVMACNode(t *testing.T, p *pair.Pair, n *pair.Node, d string, prio uint8) {
	t.Helper()
	switch d {
	case vipd:
		must(t, p.Configure(n, pair.NodeConfig{Priority: prio, AdvertInterval: interval, Extra: "    virtual_mac: true\n"}))
		must(t, p.Start(n))
	case keepalived:
		must(t, p.ConfigureKeepalived(n, pair.KeepalivedConfig{Priority: prio, AdvertInterval: interval, Extra: "    use_vmac " + vmacLink + "\n"}))
		// keepalived sets arp_ignore and arp_filter on eth0 but not
		// arp_announce: without it the node's own ARP requests (for the
		// client, as it answers from the VIP) carry the VIP with eth0's
		// MAC and the client leaves the virtual MAC. Set as an operator
		// following vipd doctor would; vipd sets it itself.
		_, err := n.Host.Run("sysctl", "-qw", "net.ipv4.conf.eth0.arp_announce=2")
		must(t, err)
		must(t, p.StartKeepalived(n))
	default:
		t.Fatalf("unknown daemon %q", d)
	}
}

// vmacHolds reports whether n serves the VIP: on its macvlan, which is up.
func vmacHolds(n *pair.Node) (bool, error) {
	present, up, err := n.Host.LinkAddr(vmacLink, pair.VIP)
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		return false, nil // vipd removed it at stop; keepalived has not made it yet
	}
	return present && up, err
}

// waitVMACHolder polls until want is the only node serving the VIP.
func waitVMACHolder(p *pair.Pair, want *pair.Node, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var hs []string
		for _, n := range p.Nodes() {
			ok, err := vmacHolds(n)
			if err != nil {
				return err
			}
			if ok {
				hs = append(hs, n.Host.Name)
			}
		}
		if len(hs) == 1 && hs[0] == want.Host.Name {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waiting %v for %s to be the only holder of %s on %s: holders %v: %w", timeout, want.Host.Name, pair.VIP, vmacLink, hs, pair.ErrTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// vmacFailover is pair.Failover for VIPs on the macvlan: the client pings
// the VIP, fault is injected, and once to serves the VIP and the client
// has had replies for 200 ms it returns the client's longest gap around
// the fault.
func vmacFailover(p *pair.Pair, to *pair.Node, fault func() error, timeout time.Duration) (time.Duration, error) {
	probe, err := p.Client.StartProbe(pair.VIP, pair.ProbeInterval)
	if err != nil {
		return 0, err
	}
	stopped := false
	defer func() {
		if !stopped {
			probe.Stop()
		}
	}()
	start := time.Now()
	time.Sleep(150 * time.Millisecond)
	if probe.Snapshot().RepliesBetween(start, time.Now()) == 0 {
		return 0, fmt.Errorf("the client got no reply from %s before the fault", pair.VIP)
	}
	at := time.Now()
	if err := fault(); err != nil {
		return 0, fmt.Errorf("injecting the fault: %w", err)
	}
	if err := waitVMACHolder(p, to, timeout); err != nil {
		return 0, err
	}
	land := time.Now()
	deadline := land.Add(timeout)
	for {
		if first, ok := probe.Snapshot().FirstReplyAfter(land); ok && time.Since(first) >= 200*time.Millisecond {
			break
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("the client got no reply from %s within %v of the landing: %w", pair.VIP, timeout, pair.ErrTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	res := probe.Stop()
	stopped = true
	return res.LongestGap(at.Add(-50*time.Millisecond), res.End), nil
}

func keepalivedVMAC(t *testing.T, master string) {
	p := newInteropPair(t, "kv"+master[:1])
	backup := other(master)
	wait := 3*pair.MasterDownInterval(1, interval) + time.Second
	vipdNode := p.A
	if master != vipd {
		vipdNode = p.B
	}

	runVMACNode(t, p, p.B, backup, 100)
	must(t, waitVMACHolder(p, p.B, wait))
	runVMACNode(t, p, p.A, master, 150)
	must(t, waitVMACHolder(p, p.A, wait))
	assertClientOnVMAC(t, p, master+" master at start")

	// vipd doctor on vipd's node sees its macvlan and the sysctls it set.
	out, _ := doctor(t, p, vipdNode)
	for _, want := range []string{
		"macvlan " + vmacLink + " on eth0 with " + pair.VirtualMAC.String() + ", bridge mode",
		"arp_ignore is 1 on eth0", "arp_announce is 2 on eth0", "arp_filter is 1 on eth0",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("vipd doctor on %s lacks %q:\n%s", vipdNode.Host.Name, want, out)
		}
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "FAIL") && (strings.Contains(l, "macvlan") || strings.Contains(l, "arp_") || strings.Contains(l, "VIP")) {
			t.Errorf("vipd doctor on %s: %s", vipdNode.Host.Name, l)
		}
	}

	// Link cut on the master: the backup takes over after its
	// Master_Down_Interval.
	bound := pair.MasterDownInterval(100, interval)
	gap, err := vmacFailover(p, p.B, p.A.Host.CutLink, wait)
	must(t, err)
	t.Logf("%s→%s link cut: client gap %v (bound Master_Down_Interval %v)", master, backup, gap, bound)
	if gap > bound+slack {
		t.Errorf("%s→%s link cut: client gap %v, want at most %v + %v", master, backup, gap, bound, slack)
	}
	assertClientOnVMAC(t, p, master+"→"+backup+" link cut")

	gap, err = vmacFailover(p, p.A, p.A.Host.RestoreLink, wait)
	must(t, err)
	t.Logf("%s preempts %s after the link returns: client gap %v", master, backup, gap)
	if gap > preemptGap {
		t.Errorf("%s preempting %s: client gap %v, want at most %v", master, backup, gap, preemptGap)
	}
	assertClientOnVMAC(t, p, master+" back after the link cut")

	// Graceful stop: the backup takes over after its Skew_Time.
	bound = pair.SkewTime(100, interval)
	gap, err = vmacFailover(p, p.B, func() error { return p.Stop(p.A) }, wait)
	must(t, err)
	t.Logf("%s→%s graceful stop: client gap %v (bound Skew_Time %v)", master, backup, gap, bound)
	if gap > bound+slack {
		t.Errorf("%s→%s graceful stop: client gap %v, want at most Skew_Time %v + %v", master, backup, gap, bound, slack)
	}
	assertClientOnVMAC(t, p, master+"→"+backup+" graceful stop")
	if master == vipd {
		// vipd leaves no macvlan behind.
		if _, _, err := p.A.Host.LinkAddr(vmacLink, pair.VIP); err == nil {
			t.Errorf("stopped vipd left %s on %s", vmacLink, p.A.Host.Name)
		}
	}

	gap, err = vmacFailover(p, p.A, func() error { return p.Restart(p.A) }, wait)
	must(t, err)
	t.Logf("restarted %s preempts %s: client gap %v", master, backup, gap)
	if gap > preemptGap {
		t.Errorf("restarted %s preempting %s: client gap %v, want at most %v", master, backup, gap, preemptGap)
	}
	assertClientOnVMAC(t, p, "restarted "+master)
}
