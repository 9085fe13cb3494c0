package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/e2e/lab"
	"github.com/vipd/vipd/e2e/pair"
)

// The daemons a node of an interop pair can run.
const (
	vipd       = "vipd"
	keepalived = "keepalived"
)

// flavour is the VRRP setting both daemons of a pair are given.
type flavour struct {
	name     string
	code     string // one letter, for namespace prefixes
	version  int
	interval time.Duration
	authPass string // v2 only
	// converted: vipd runs what `vipd convert` makes of the keepalived.conf
	// that a keepalived node of the same flavour would run.
	converted bool
}

var (
	v3Fast = flavour{name: "v3-100ms", code: "f", version: 3, interval: interval}
	v3Slow = flavour{name: "v3-1s", code: "s", version: 3, interval: time.Second}
	// VRRPv2 carries whole seconds only.
	v2Open = flavour{name: "v2-1s", code: "t", version: 2, interval: time.Second}
	v2Pass = flavour{name: "v2-pass-1s", code: "p", version: 2, interval: time.Second, authPass: "vipd-e2e"}
)

// parallel lets the tests of a slow flavour run beside each other: their
// bounds are seconds, so sharing the CPUs costs them nothing that the
// slack does not cover.
func (f flavour) parallel(t *testing.T) {
	if f.interval >= time.Second {
		t.Parallel()
	}
}

// wait is a generous timeout for anything that takes a few
// Master_Down_Intervals.
func (f flavour) wait() time.Duration {
	return 3*pair.MasterDownInterval(1, f.interval) + time.Second
}

// preemptGap is what a planned move may cost the client: the new master
// announces as it takes over.
const preemptGap = 50*time.Millisecond + slack

// newInteropPair is newPair for pairs with keepalived in them: the test
// fails if either daemon complained about the other's packets, unless the
// line holds one of allowed.
func newInteropPair(t *testing.T, short string, allowed ...string) *pair.Pair {
	t.Helper()
	needLab(t)
	if _, err := pair.KeepalivedPath(); err != nil {
		t.Fatal(err)
	}
	// The first TempDir call registers the removal of the logs; the scan
	// is registered after it so that it runs before that, and after
	// newPair's teardown, once the daemons have said all they had to.
	t.TempDir()
	var p *pair.Pair
	t.Cleanup(func() {
		if p == nil {
			return
		}
		logs := 0
		for _, n := range p.Nodes() {
			if _, err := os.Stat(n.Log); err == nil {
				logs++
			}
		}
		if logs == 0 {
			t.Errorf("no node's log is left to scan for complaints")
		}
	complaints:
		for _, c := range peerComplaints(t, p) {
			for _, a := range allowed {
				if strings.Contains(c, a) {
					continue complaints
				}
			}
			t.Errorf("%s", c)
		}
	})
	p = newPair(t, short)
	return p
}

// runNode configures n for daemon d with flavour f and starts it.
func runNode(t *testing.T, p *pair.Pair, n *pair.Node, d string, f flavour, prio uint8, noPreempt bool) {
	t.Helper()
	switch d {
	case vipd:
		if f.converted {
			must(t, p.ConfigureConverted(n, pair.KeepalivedConfig{Priority: prio, AdvertInterval: f.interval,
				Version: f.version, NoPreempt: noPreempt, AuthPass: f.authPass}))
			must(t, p.Start(n))
			return
		}
		c := pair.NodeConfig{Priority: prio, AdvertInterval: f.interval, Version: f.version, NoPreempt: noPreempt}
		if f.authPass != "" {
			c.Extra = fmt.Sprintf("    auth_pass: %s\n", f.authPass)
		}
		must(t, p.Configure(n, c))
		must(t, p.Start(n))
	case keepalived:
		must(t, p.ConfigureKeepalived(n, pair.KeepalivedConfig{Priority: prio, AdvertInterval: f.interval,
			Version: f.version, NoPreempt: noPreempt, AuthPass: f.authPass}))
		must(t, p.StartKeepalived(n))
	default:
		t.Fatalf("unknown daemon %q", d)
	}
}

func other(d string) string {
	if d == vipd {
		return keepalived
	}
	return vipd
}

// keepalivedComplaint matches what keepalived 2.2.7 logs when it refuses
// or doubts a VRRP packet: bad checksum, TTL, length, version, type,
// password, interval or address list ("bogus", "not present", "expected N
// VIPs"), and configuration it found invalid.
var keepalivedComplaint = regexp.MustCompile(`(?i)checksum|\bttl\b|ttl/hl|passwd|auth|interval|bogus|invalid|mismatch|wrong|too (short|long)|unexpected|not present|expect`)

// vipdComplaint matches vipd's log lines about a peer's packets.
var vipdComplaint = regexp.MustCompile(`dropped VRRP packet|different VIP list`)

// peerComplaints returns, for every node's log, the lines in which
// keepalived complained about a packet or vipd dropped one. A node's log
// holds the runs of both daemons, each after its start marker.
func peerComplaints(t *testing.T, p *pair.Pair) []string {
	t.Helper()
	var out []string
	for _, n := range p.Nodes() {
		f, err := os.Open(n.Log)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Errorf("reading %s: %v", n.Log, err)
			continue
		}
		daemon := ""
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			// Paths (the test's name is in them) are no complaint.
			line := strings.ReplaceAll(sc.Text(), p.Dir, "DIR")
			switch {
			case strings.HasPrefix(line, "---- keepalived start"):
				daemon = keepalived
			case strings.HasPrefix(line, "---- vipd start"):
				daemon = vipd
			case daemon == keepalived && keepalivedComplaint.MatchString(line),
				daemon == vipd && vipdComplaint.MatchString(line):
				out = append(out, fmt.Sprintf("%s on %s complained: %s", daemon, n.Host.Name, line))
			}
		}
		if err := sc.Err(); err != nil {
			t.Errorf("reading %s: %v", n.Log, err)
		}
		f.Close()
	}
	return out
}

// waitLog polls n's log until the current run of its daemon has logged a
// line containing want.
func waitLog(t *testing.T, n *pair.Node, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		b, err := os.ReadFile(n.Log)
		must(t, err)
		s := string(b)
		if i := strings.LastIndex(s, "\n---- "); i >= 0 {
			s = s[i:]
		}
		if strings.Contains(s, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s on %s logged no %q within %v", n.Daemon(), n.Host.Name, want, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestInteropHandOver runs a vipd node and a keepalived node as one pair,
// each daemon in turn the preferred master, for every flavour: the higher
// priority wins whichever daemon it is, a link cut and a graceful stop
// hand over within the protocol's bounds, and the master takes the VIP back
// when it returns.
func TestInteropHandOver(t *testing.T) {
	for _, f := range []flavour{v3Fast, v3Slow, v2Open, v2Pass} {
		for _, master := range []string{vipd, keepalived} {
			t.Run(f.name+"/"+master+"-master", func(t *testing.T) {
				f.parallel(t)
				handOver(t, f, master)
			})
		}
	}
}

func handOver(t *testing.T, f flavour, master string, allowed ...string) {
	p := newInteropPair(t, "ih"+f.code+master[:1], allowed...)
	backup := other(master)
	iv, wait := f.interval, f.wait()

	// The lower priority starts first and alone; the higher one must
	// still win when it joins.
	runNode(t, p, p.B, backup, f, 100, false)
	must(t, p.WaitHolder(p.B, pair.VIP, wait))
	runNode(t, p, p.A, master, f, 150, false)
	must(t, p.WaitHolder(p.A, pair.VIP, wait))
	assertClientAt(t, p, p.A)

	// Link cut on the master: the backup takes over when it has heard
	// nothing for its Master_Down_Interval.
	bound := pair.MasterDownInterval(100, iv)
	o, err := p.Failover(p.B, p.A.Host.CutLink, wait, 200*time.Millisecond)
	must(t, err)
	t.Logf("%s→%s link cut: client gap %v (bound Master_Down_Interval %v), VIP landing → first reply %v",
		master, backup, o.Gap, bound, o.LandToReply)
	if o.Gap > bound+slack {
		t.Errorf("%s→%s link cut: client gap %v, want at most %v + %v", master, backup, o.Gap, bound, slack)
	}
	// Without carrier the old master (vipd's fault state, keepalived's
	// FAULT) holds no VIP.
	if ok, err := p.A.Host.HasAddr(pair.VIP); err != nil || ok {
		t.Errorf("%s cut off from the segment still holds the VIP (err %v)", master, err)
	}
	assertClientAt(t, p, p.B)

	// Link back: the higher priority preempts.
	o, err = p.Failover(p.A, p.A.Host.RestoreLink, wait, 200*time.Millisecond)
	must(t, err)
	t.Logf("%s preempts %s after the link returns: client gap %v", master, backup, o.Gap)
	if o.Gap > preemptGap {
		t.Errorf("%s preempting %s: client gap %v, want at most %v", master, backup, o.Gap, preemptGap)
	}
	assertClientAt(t, p, p.A)

	// Graceful stop: the master resigns with a priority-0 advert and the
	// backup takes over after its Skew_Time.
	bound = pair.SkewTime(100, iv)
	o, err = p.Failover(p.B, func() error { return p.Stop(p.A) }, wait, 200*time.Millisecond)
	must(t, err)
	t.Logf("%s→%s graceful stop: client gap %v (bound Skew_Time %v), VIP landing → first reply %v",
		master, backup, o.Gap, bound, o.LandToReply)
	if o.Gap > bound+slack {
		t.Errorf("%s→%s graceful stop: client gap %v, want at most Skew_Time %v + %v", master, backup, o.Gap, bound, slack)
	}
	if ok, err := p.A.Host.HasAddr(pair.VIP); err != nil || ok {
		t.Errorf("stopped %s still holds the VIP (err %v)", master, err)
	}
	assertClientAt(t, p, p.B)

	// Back again: preempt.
	o, err = p.Failover(p.A, func() error { return p.Restart(p.A) }, wait, 200*time.Millisecond)
	must(t, err)
	t.Logf("restarted %s preempts %s: client gap %v", master, backup, o.Gap)
	if o.Gap > preemptGap {
		t.Errorf("restarted %s preempting %s: client gap %v, want at most %v", master, backup, o.Gap, preemptGap)
	}
	assertClientAt(t, p, p.A)
}

// TestInteropNoPreempt: a higher priority that must not preempt (vipd's
// preempt: false, keepalived's nopreempt) joins a master of the other
// daemon and leaves it alone, and still takes over when that master goes.
func TestInteropNoPreempt(t *testing.T) {
	for _, high := range []string{vipd, keepalived} {
		t.Run(high+"-no-preempt", func(t *testing.T) {
			f := v3Fast
			p := newInteropPair(t, "in"+high[:1])
			runNode(t, p, p.B, other(high), f, 100, false)
			must(t, p.WaitHolder(p.B, pair.VIP, f.wait()))
			probe, err := p.Client.StartProbe(pair.VIP, pair.ProbeInterval)
			must(t, err)
			time.Sleep(200 * time.Millisecond) // replies flowing first
			start := time.Now()
			runNode(t, p, p.A, high, f, 150, true)
			// Several Master_Down_Intervals of the higher priority.
			time.Sleep(4 * pair.MasterDownInterval(150, f.interval))
			r := probe.Stop()
			hs, err := p.Holders(pair.VIP)
			must(t, err)
			if len(hs) != 1 || hs[0] != p.B {
				t.Fatalf("%s with the higher priority and no preemption joined: holders are %v, want only b", high, hs)
			}
			if gap := r.LongestGap(start, r.End); gap > 50*time.Millisecond {
				t.Errorf("client gap %v while the non-preempting %s joined, want none", gap, high)
			}
			// It still takes over when the master resigns.
			bound := pair.SkewTime(150, f.interval)
			o, err := p.Failover(p.A, func() error { return p.Stop(p.B) }, f.wait(), 200*time.Millisecond)
			must(t, err)
			t.Logf("%s→%s graceful stop: client gap %v (bound Skew_Time %v)", other(high), high, o.Gap, bound)
			if o.Gap > bound+slack {
				t.Errorf("client gap %v, want at most Skew_Time %v + %v", o.Gap, bound, slack)
			}
			assertClientAt(t, p, p.A)
		})
	}
}

// TestInteropSplitBrainHeals: with equal priorities the higher primary
// address (b, 198.18.0.12) wins. Cut off, b leaves a to take over on the
// client's side; when the segment heals, a yields to b whichever daemon
// each runs, and the client moves back to b.
//
// Only the winner can move the client back, and it learns that it must
// from an advert of the loser. The loser yields as soon as it hears the
// winner; if the winner's advert crosses first, the loser's next periodic
// advert never comes, so the loser must send one as it yields
// (keepalived's higher_prio_send_advert, off by default). Here the loser
// advertises every 10 s, so that the winner's advert always crosses first
// and only that yielding advert can make the winner re-announce.
func TestInteropSplitBrainHeals(t *testing.T) {
	for _, winner := range []string{vipd, keepalived} {
		t.Run(winner+"-wins", func(t *testing.T) {
			f := v3Fast
			// A backup learns the master's interval, so the loser
			// still takes over within b's Master_Down_Interval.
			slow := f
			slow.interval = 10 * time.Second
			// keepalived notes when the master's interval differs from
			// its own, as it does here on purpose.
			p := newInteropPair(t, "is"+winner[:1], "interval updated from 10000ms to 100ms by master",
				"interval from 100ms to locally configured 10000ms")
			// b first: a backup does not compare addresses, so a
			// master of equal priority stays master.
			runNode(t, p, p.B, winner, f, 100, false)
			must(t, p.WaitHolder(p.B, pair.VIP, f.wait()))
			if winner == vipd {
				must(t, p.ConfigureKeepalived(p.A, pair.KeepalivedConfig{Priority: 100, AdvertInterval: slow.interval,
					Version: 3, Extra: "    higher_prio_send_advert true\n"}))
				must(t, p.StartKeepalived(p.A))
			} else {
				runNode(t, p, p.A, vipd, slow, 100, false)
			}
			time.Sleep(2 * pair.MasterDownInterval(100, f.interval))
			must(t, p.WaitHolder(p.B, pair.VIP, 0))

			// Partition b with its carrier up: it stays master, and a
			// takes over on the client's side.
			must(t, p.B.Host.Detach())
			must(t, waitBoth(p, f.wait()))
			assertClientAt(t, p, p.A)

			probe, err := p.Client.StartProbe(pair.VIP, pair.ProbeInterval)
			must(t, err)
			time.Sleep(100 * time.Millisecond)
			healed := time.Now()
			must(t, p.B.Host.Attach())
			err = p.WaitHolder(p.B, pair.VIP, f.interval+slack)
			took := time.Since(healed)
			time.Sleep(300 * time.Millisecond)
			r := probe.Stop()
			must(t, err)
			gap := r.LongestGap(healed.Add(-50*time.Millisecond), r.End)
			t.Logf("split brain healed to %s at the higher address: one holder after %v, client gap %v", winner, took, gap)
			if gap > preemptGap {
				t.Errorf("client gap %v around the heal, want at most %v: %s yielded, and %s did not re-announce",
					gap, preemptGap, other(winner), winner)
			}
			assertClientAt(t, p, p.B)
		})
	}
}

// TestInteropKill9: keepalived killed outright (no priority-0 advert, the
// VIP left on its interface) is replaced by vipd within vipd's
// Master_Down_Interval; restarted, keepalived removes the stale alias and
// takes the VIP back.
func TestInteropKill9(t *testing.T) {
	f := v3Fast
	p := newInteropPair(t, "ik")
	runNode(t, p, p.B, vipd, f, 100, false)
	must(t, p.WaitHolder(p.B, pair.VIP, f.wait()))
	runNode(t, p, p.A, keepalived, f, 150, false)
	must(t, p.WaitHolder(p.A, pair.VIP, f.wait()))

	killed := time.Now()
	must(t, p.Kill(p.A))
	if out, err := exec.Command("ip", "netns", "pids", p.A.Host.NS).Output(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("processes left in %s after killing keepalived: %q (err %v)", p.A.Host.NS, out, err)
	}
	must(t, waitBoth(p, f.wait()))
	took, bound := time.Since(killed), pair.MasterDownInterval(100, f.interval)
	t.Logf("vipd took over %v after keepalived was killed (bound Master_Down_Interval %v)", took, bound)
	if took > bound+slack {
		t.Errorf("vipd took over %v after keepalived was killed, want at most %v + %v", took, bound, slack)
	}
	must(t, p.Restart(p.A))
	must(t, p.WaitHolder(p.A, pair.VIP, f.wait()))
	assertClientAt(t, p, p.A)
}

// TestKeepalivedMigration replaces a keepalived pair with vipd one node at
// a time while the client pings the VIP throughout: the backup first (its
// vipd configuration written to match), then a graceful hand-over to it,
// then the old master, which takes the VIP back. The client's longest gap
// over the whole procedure must stay within one Master_Down_Interval.
func TestKeepalivedMigration(t *testing.T) {
	for _, f := range []flavour{v3Fast, v2Pass} {
		t.Run(f.name, func(t *testing.T) {
			f.parallel(t)
			migrate(t, f)
		})
	}
}

func migrate(t *testing.T, f flavour) {
	p := newInteropPair(t, "km"+f.code)
	iv, wait := f.interval, f.wait()
	kc := pair.KeepalivedConfig{AdvertInterval: iv, Version: f.version, AuthPass: f.authPass}
	kc.Priority, kc.Master = 150, true
	must(t, p.ConfigureKeepalived(p.A, kc))
	kc.Priority, kc.Master = 100, false
	must(t, p.ConfigureKeepalived(p.B, kc))
	must(t, p.StartKeepalived(p.A))
	must(t, p.StartKeepalived(p.B))
	must(t, p.WaitHolder(p.A, pair.VIP, wait))
	waitLog(t, p.B, "Entering BACKUP STATE", wait)
	assertClientAt(t, p, p.A)

	probe, err := p.Client.StartProbe(pair.VIP, pair.ProbeInterval)
	must(t, err)
	defer probe.Stop()
	time.Sleep(200 * time.Millisecond)
	start := time.Now()

	// 1. Replace the backup: stop its keepalived, start vipd with the
	// same VRID, version, interval, password and VIP list.
	must(t, p.Stop(p.B))
	runNode(t, p, p.B, vipd, f, 100, false)
	waitLog(t, p.B, "to=backup", wait)
	// It must accept keepalived as its master: had it heard nothing, it
	// would take over after its Master_Down_Interval.
	time.Sleep(pair.MasterDownInterval(100, iv) + 3*iv)
	must(t, p.WaitHolder(p.A, pair.VIP, 0))
	replaced := time.Now()

	// 2. Hand over to vipd: stop keepalived on the master gracefully.
	must(t, p.Stop(p.A))
	must(t, p.WaitHolder(p.B, pair.VIP, wait))
	time.Sleep(300 * time.Millisecond)
	handedOver := time.Now()

	// 3. Replace the old master; with its priority it takes the VIP back.
	runNode(t, p, p.A, vipd, f, 150, false)
	must(t, p.WaitHolder(p.A, pair.VIP, wait))
	time.Sleep(300 * time.Millisecond)
	r := probe.Stop()

	bound := pair.MasterDownInterval(100, iv)
	gap := r.LongestGap(start, r.End)
	t.Logf("rolling migration (%s) over %v: client's longest gap %v (bound Master_Down_Interval %v); "+
		"replacing the backup %v, keepalived→vipd hand-over %v, replacing the master %v; %d of %d pings lost",
		f.name, r.End.Sub(start).Round(time.Millisecond), gap, bound,
		r.LongestGap(start, replaced), r.LongestGap(replaced, handedOver), r.LongestGap(handedOver, r.End), r.Lost(), r.Sent)
	if gap > bound {
		t.Errorf("client gap %v during the migration, want at most one Master_Down_Interval %v", gap, bound)
	}
	assertClientAt(t, p, p.A)
	for _, n := range p.Nodes() {
		if n.Daemon() != vipd {
			t.Errorf("%s still runs %s", n.Host.Name, n.Daemon())
		}
	}
}

// TestInteropComplaintsAreSeen checks the log scan that every interop test
// relies on: a vipd node whose VRRPv2 password differs from keepalived's
// makes both complain, and the scan sees it.
func TestInteropComplaintsAreSeen(t *testing.T) {
	needLab(t)
	t.Parallel()
	p := newPair(t, "ic")
	f := v2Pass
	runNode(t, p, p.B, keepalived, f, 100, false)
	f.authPass = "wrong"
	runNode(t, p, p.A, vipd, f, 150, false)
	// Neither accepts the other: both become master.
	must(t, waitBoth(p, f.wait()))
	waitLog(t, p.B, "invalid passwd", f.wait())
	// vipd complains on keepalived's first advert, which may leave just
	// after keepalived's VIP is up.
	waitLog(t, p.A, "dropped VRRP packet", f.wait())
	var sawKeepalived, sawVipd bool
	for _, c := range peerComplaints(t, p) {
		sawKeepalived = sawKeepalived || strings.HasPrefix(c, "keepalived on b") && strings.Contains(c, "invalid passwd")
		sawVipd = sawVipd || strings.HasPrefix(c, "vipd on a") && strings.Contains(c, "dropped VRRP packet")
	}
	if !sawKeepalived || !sawVipd {
		t.Errorf("log scan missed a complaint: keepalived's %v, vipd's %v:\n%s", sawKeepalived, sawVipd,
			strings.Join(peerComplaints(t, p), "\n"))
	}
}

// TestInteropTsharkDecodesAdverts decodes the adverts the master sends,
// and the priority-0 advert it sends when stopped, with Wireshark's VRRP
// dissector: no malformed packet, TTL 255, checksum good. For VRRPv3 the
// dissector verifies the checksum form its vrrp.v3_checksum_as_in_v2
// preference names (FALSE: with the IPv4 pseudo-header, keepalived's form;
// TRUE: over the message only), so each capture is decoded both ways: the
// configured form must check good and the other bad. keepalived's own
// adverts are the control.
func TestInteropTsharkDecodesAdverts(t *testing.T) {
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Fatalf("tshark is not installed (apt-get install tshark): %v", err)
	}
	for _, tc := range []struct {
		name, code, daemon string
		f                  flavour
		messageOnly        bool
	}{
		{"vipd-v3-pseudo-header", "p", vipd, v3Fast, false},
		{"vipd-v3-message-only", "m", vipd, v3Fast, true},
		{"vipd-v2-pass", "t", vipd, v2Pass, false},
		{"keepalived-v3", "k", keepalived, v3Fast, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Nothing here is timed.
			t.Parallel()
			p := newInteropPair(t, "it"+tc.code)
			if tc.daemon == vipd {
				c := pair.NodeConfig{Priority: 150, AdvertInterval: tc.f.interval, Version: tc.f.version}
				switch {
				case tc.f.authPass != "":
					c.Extra = fmt.Sprintf("    auth_pass: %s\n", tc.f.authPass)
				case tc.messageOnly:
					c.Extra = "    v3_checksum: message-only\n"
				default:
					c.Extra = "    v3_checksum: pseudo-header\n"
				}
				must(t, p.Configure(p.A, c))
				must(t, p.Start(p.A))
			} else {
				runNode(t, p, p.A, keepalived, tc.f, 150, false)
			}
			must(t, p.WaitHolder(p.A, pair.VIP, tc.f.wait()))

			pcap := filepath.Join(p.Dir, "adverts.pcap")
			// Stop the master after a few adverts, to catch its
			// priority-0 advert too.
			capture(t, p, pcap, 7*tc.f.interval/2, func() { must(t, p.Stop(p.A)) })

			good, bad := "FALSE", "TRUE"
			if tc.messageOnly {
				good, bad = bad, good
			}
			pkts := decodeVRRP(t, pcap, good)
			if len(pkts) < 3 {
				t.Fatalf("captured %d adverts, want at least 3", len(pkts))
			}
			for i, pk := range pkts {
				if pk.src != p.A.Host.Addr.String() || pk.ttl != "255" || pk.version != fmt.Sprint(tc.f.version) ||
					pk.checksum != "1" || pk.malformed != "" || pk.vips != pair.VIP.String() {
					t.Errorf("advert %d decoded as %+v, want from %s, TTL 255, version %d, checksum status 1 (good), not malformed, VIPs %s",
						i, pk, p.A.Host.Addr, tc.f.version, pair.VIP)
				}
				if tc.f.authPass != "" && pk.auth != tc.f.authPass {
					t.Errorf("advert %d carries password %q, want %q", i, pk.auth, tc.f.authPass)
				}
			}
			if last := pkts[len(pkts)-1]; last.prio != "0" {
				t.Errorf("last advert has priority %s, want the priority-0 advert of the stop", last.prio)
			}
			t.Logf("%d adverts decoded, the last with priority %s; checksums good with vrrp.v3_checksum_as_in_v2:%s", len(pkts), pkts[len(pkts)-1].prio, good)
			if tc.f.version == 3 {
				for i, pk := range decodeVRRP(t, pcap, bad) {
					if pk.checksum != "0" {
						t.Errorf("advert %d checks as %q with vrrp.v3_checksum_as_in_v2:%s, want 0 (bad): the checksum is not in the form configured", i, pk.checksum, bad)
					}
				}
			}
		})
	}
}

// capture records VRRP on the client's eth0 into pcap, calling during
// once the capture has run for before, and ending a second or so later.
func capture(t *testing.T, p *pair.Pair, pcap string, before time.Duration, during func()) {
	t.Helper()
	logPath := pcap + ".log"
	secs := int((before + 2*time.Second - 1) / time.Second)
	proc := startTshark(t, p.Client, logPath, "-n", "-i", "eth0", "-f", "ip proto 112",
		"-c", "100", "-a", fmt.Sprintf("duration:%d", secs), "-w", pcap)
	time.Sleep(before)
	during()
	if code, err := proc.Wait(time.Duration(secs)*time.Second + 10*time.Second); err != nil || code != 0 {
		b, _ := os.ReadFile(logPath)
		t.Fatalf("tshark: exit %d, %v:\n%s", code, err, b)
	}
}

// startTshark runs tshark with args on h, logging to logPath, and returns
// once it is capturing.
func startTshark(t *testing.T, h *lab.Host, logPath string, args ...string) *lab.Proc {
	t.Helper()
	proc, err := h.Start(logPath, append([]string{"tshark"}, args...)...)
	must(t, err)
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(logPath)
		if strings.Contains(string(b), "Capturing on") {
			return proc
		}
		if proc.Exited() || time.Now().After(deadline) {
			t.Fatalf("tshark did not start capturing:\n%s", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// vrrpPacket is one advert as the dissector decoded it.
type vrrpPacket struct {
	src, ttl, version, prio, checksum, malformed, vips, auth string
}

// decodeVRRP reads pcap with tshark, the VRRPv3 checksum preference set to
// asInV2, and returns the VRRP packets.
func decodeVRRP(t *testing.T, pcap, asInV2 string) []vrrpPacket {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "tshark", "-n", "-r", pcap, "-o", "vrrp.v3_checksum_as_in_v2:"+asInV2,
		"-Y", "vrrp || _ws.malformed", "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=,",
		"-e", "ip.src", "-e", "ip.ttl", "-e", "vrrp.version", "-e", "vrrp.prio", "-e", "vrrp.checksum.status",
		"-e", "_ws.malformed", "-e", "vrrp.ip_addr", "-e", "vrrp.auth_string")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark -r %s: %v: %s", pcap, err, stderr.String())
	}
	var pkts []vrrpPacket
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		for len(f) < 8 {
			f = append(f, "")
		}
		pkts = append(pkts, vrrpPacket{src: f[0], ttl: f[1], version: f[2], prio: f[3], checksum: f[4],
			malformed: f[5], vips: f[6], auth: f[7]})
	}
	return pkts
}
