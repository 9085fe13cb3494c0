package e2e

// The reliability suite (issue 7): vipd under network faults, hostile
// input on the segment, process faults and unprivileged callers. Every case
// checks where the VIP ends up, what the client saw and that no vipd died,
// and records its measured figures as a row of RELIABILITY.md (see
// relRecord and e2e/reliability-report).

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/vipd/vipd/e2e/inject"
	"github.com/vipd/vipd/e2e/lab"
	"github.com/vipd/vipd/e2e/pair"
	"github.com/vipd/vipd/vrrp"
)

// Leak allowances for a daemon that went through faults and came back to
// the state it started in: a leak per fault, repeated, exceeds them.
const (
	leakGoroutines = 3
	leakFDs        = 1
)

// firstEvent waits up to timeout for the first event of w after since
// with Added == added.
func firstEvent(w *lab.AddrWatch, since time.Time, added bool, timeout time.Duration) (lab.AddrEvent, error) {
	deadline := time.Now().Add(timeout)
	for {
		for _, ev := range w.Events() {
			if ev.Added == added && ev.Time.After(since) {
				return ev, nil
			}
		}
		if time.Now().After(deadline) {
			what := "removal"
			if added {
				what = "addition"
			}
			return lab.AddrEvent{}, fmt.Errorf("no %s of %s within %v: %w", what, pair.VIP, timeout, pair.ErrTimeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// startProbe pings the VIP from the client every 5 ms and waits until
// replies flow.
func startProbe(t *testing.T, p *pair.Pair) *lab.Probe {
	t.Helper()
	probe, err := p.Client.StartProbe(pair.VIP, pair.ProbeInterval)
	must(t, err)
	start := time.Now()
	time.Sleep(150 * time.Millisecond)
	if probe.Snapshot().RepliesBetween(start, time.Now()) == 0 {
		probe.Stop()
		t.Fatalf("the client gets no reply from %s", pair.VIP)
	}
	return probe
}

// clientMovesTo polls the client's ARP entry for the VIP every
// millisecond or so until it holds mac, on a goroutine of its own, and
// returns a function that waits for the time it did.
func clientMovesTo(p *pair.Pair, mac net.HardwareAddr, timeout time.Duration) func() (time.Time, error) {
	done := make(chan struct{})
	var at time.Time
	var err error
	go func() {
		defer close(done)
		deadline := time.Now().Add(timeout)
		for {
			got, nerr := p.ClientNeighbour(pair.VIP)
			now := time.Now()
			if nerr != nil {
				err = nerr
				return
			}
			if got == mac.String() {
				at = now
				return
			}
			if now.After(deadline) {
				err = fmt.Errorf("the client's ARP entry for %s is %q after %v, want %s", pair.VIP, got, timeout, mac)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	return func() (time.Time, error) { <-done; return at, err }
}

// splitBrainHeals is how many times the split brain case partitions and
// heals the pair. Which node hears the other first after a heal depends on
// when the heal falls between the two nodes' adverts, so the heals are
// spread over the advert interval: heal i comes (10 + 25·i) ms after one
// of the backup's adverts.
const splitBrainHeals = 4

// advertWatch is a raw VRRP socket in a lab host's namespace, joined to
// 224.0.0.18 on its eth0: a bystander that sees every advert.
type advertWatch struct{ pc *ipv4.PacketConn }

func watchAdverts(t *testing.T, h *lab.Host) advertWatch {
	t.Helper()
	var pc *ipv4.PacketConn
	err := inject.InNamespace(h.NS, func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		c, err := net.ListenPacket("ip4:112", "0.0.0.0")
		if err != nil {
			return err
		}
		pc = ipv4.NewPacketConn(c)
		if err := pc.JoinGroup(ifi, &net.IPAddr{IP: vrrp.GroupV4.AsSlice()}); err != nil {
			c.Close()
			return err
		}
		return nil
	})
	must(t, err)
	t.Cleanup(func() { pc.Close() })
	return advertWatch{pc}
}

// next waits for the next advert from src, discarding what was queued
// before the call, and returns when it arrived.
func (w advertWatch) next(src netip.Addr, timeout time.Duration) (time.Time, error) {
	buf := make([]byte, 1500)
	// Drain what is already queued (a deadline already passed would
	// not even look).
	for {
		if err := w.pc.SetReadDeadline(time.Now().Add(time.Millisecond)); err != nil {
			return time.Time{}, err
		}
		if _, _, _, err := w.pc.ReadFrom(buf); err != nil {
			break
		}
	}
	if err := w.pc.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return time.Time{}, err
	}
	for {
		_, _, from, err := w.pc.ReadFrom(buf)
		if err != nil {
			return time.Time{}, fmt.Errorf("no advert from %s within %v: %w", src, timeout, err)
		}
		if ia, ok := from.(*net.IPAddr); ok && ia.IP.Equal(src.AsSlice()) {
			return time.Now(), nil
		}
	}
}

func TestReliabilitySplitBrain(t *testing.T) {
	p := newPair(t, "rsb")
	row := relRecord(t, "1", "Split brain, carrier up",
		fmt.Sprintf("%d times: the master's bridge port taken out of the bridge (carrier stays up) until both nodes held the VIP and the client had moved to the backup's MAC, then put back while the client pinged the VIP every 5 ms; the heals spread over the advert interval (10, 35, 60, 85 ms after one of the backup's adverts, seen by a bystander socket on the client); garp.repeat 0, so that only an announcement made for the heal can move the client.", splitBrainHeals),
		fmt.Sprintf("after every heal: exactly one holder, the higher priority, within one advert interval (%s) + %s, and the winner never dropped the VIP; client's longest gap around the heal ≤ 50 ms + %s (the winner re-announces); client's ARP entry back on the winner's MAC; no vipd died", dur(interval), dur(slack), dur(gapSlack)))
	adverts := watchAdverts(t, p.Client)
	// No scheduled gratuitous ARP repeats: the default five, a second
	// apart, could move the client by chance and hide a heal that was not
	// announced.
	noRepeat := pair.NodeConfig{Extra: "    garp:\n      repeat: 0\n"}
	startPair(t, p, noRepeat, noRepeat)
	var figs []string
	defer func() { row.Figure = strings.Join(figs, "; ") }()
	macA, err := p.A.Host.MAC()
	must(t, err)
	for i := range splitBrainHeals {
		must(t, p.A.Host.Detach())
		must(t, waitBoth(p, 3*time.Second))
		assertClientAt(t, p, p.B)

		wA, err := p.A.Host.WatchAddr(pair.VIP)
		must(t, err)
		wB, err := p.B.Host.WatchAddr(pair.VIP)
		must(t, err)
		probe := startProbe(t, p)
		offset := time.Duration(10+25*i) * time.Millisecond
		seen, err := adverts.next(p.B.Host.Addr, time.Second)
		if err != nil {
			probe.Stop()
			t.Fatal(err)
		}
		time.Sleep(time.Until(seen.Add(offset)))
		healed := time.Now()
		must(t, p.A.Host.Attach())
		arpMoved := clientMovesTo(p, macA, 3*time.Second)
		yielded, err := firstEvent(wB, healed, false, 2*time.Second)
		// Let the client's replies come back, for up to 3 s.
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) {
			if last, ok := probe.Snapshot().FirstReplyAfter(healed.Add(50 * time.Millisecond)); ok && time.Since(last) > 200*time.Millisecond {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		r := probe.Stop()
		wA.Stop()
		wB.Stop()
		moved, merr := arpMoved()
		must(t, err)
		took := yielded.Time.Sub(healed)
		gap := r.LongestGap(healed.Add(-50*time.Millisecond), r.End)
		arp := "never (3 s)"
		if merr == nil {
			arp = ms(moved.Sub(healed))
		}
		figs = append(figs, fmt.Sprintf("heal at +%d ms: one holder after %s, client's ARP entry on the winner after %s, client gap %s",
			offset.Milliseconds(), ms(took), arp, ms(gap)))
		if took > interval+slack {
			t.Errorf("heal %d: two holders for %v, want at most %v + %v", i+1, took, interval, slack)
		}
		if _, err := firstEvent(wA, healed, false, 0); err == nil {
			t.Errorf("heal %d: the winner dropped the VIP", i+1)
		}
		if gap > 50*time.Millisecond+gapSlack {
			t.Errorf("heal %d: client gap %v, want at most 50ms + %v (its ARP entry moved to the winner after %v)", i+1, gap, gapSlack, arp)
			continue
		}
		assertClientAt(t, p, p.A)
	}
	assertEnd(t, p, p.A)
}

func TestReliabilityAliasRemoved(t *testing.T) {
	p := newPair(t, "ral")
	row := relRecord(t, "2", "VIP alias removed by hand",
		"`ip addr del 198.18.0.100/32 dev eth0` in the master's namespace while the client pinged the VIP every 5 ms.",
		"the alias back within 1 s (address events), counted (vips_restored +1) and re-announced (garp_sent grows); no state transition on either node; client's ARP entry still on the master's MAC; no vipd died")
	startPair(t, p, pair.NodeConfig{}, pair.NodeConfig{})
	time.Sleep(200 * time.Millisecond)
	before := relStatusOf(t, p, p.A)
	trans := transitionsOf(t, p)
	w, err := p.A.Host.WatchAddr(pair.VIP)
	must(t, err)
	defer w.Stop()
	probe := startProbe(t, p)
	start := time.Now()
	_, err = p.A.Host.Run("ip", "addr", "del", pair.VIP.String()+"/32", "dev", "eth0")
	if err != nil {
		probe.Stop()
		t.Fatal(err)
	}
	removed, err := firstEvent(w, start, false, time.Second)
	var back lab.AddrEvent
	if err == nil {
		back, err = firstEvent(w, removed.Time, true, 2*time.Second)
	}
	time.Sleep(300 * time.Millisecond)
	r := probe.Stop()
	must(t, err)
	restore := back.Time.Sub(removed.Time)
	gap := r.LongestGap(start.Add(-50*time.Millisecond), r.End)
	after := relStatusOf(t, p, p.A)
	restored := after.Instances[0].Counters.VIPsRestored - before.Instances[0].Counters.VIPsRestored
	garps := after.Instances[0].Counters.GARPSent - before.Instances[0].Counters.GARPSent
	row.Figure = fmt.Sprintf("restored %s after the removal; vips_restored +%d; %d gratuitous ARP sent; client gap %s", ms(restore), restored, garps, ms(gap))
	if restore > time.Second {
		t.Errorf("alias restored after %v, want within 1s", restore)
	}
	if restored < 1 {
		t.Errorf("vips_restored went up by %d, want at least 1", restored)
	}
	if garps == 0 {
		t.Error("the restored VIP was not announced again (garp_sent unchanged)")
	}
	if gap > time.Second {
		t.Errorf("client gap %v, want under the 1s restore bound", gap)
	}
	assertNoTransition(t, p, trans)
	assertEnd(t, p, p.A)
}

func TestReliabilityLinkFlapping(t *testing.T) {
	p := newPair(t, "rfl")
	row := relRecord(t, "3a", "Link flapping on the master",
		"The master's link cut and restored every 150 ms, 5 times (carrier down 150 ms, up 150 ms).",
		fmt.Sprintf("one holder (the master, back after preempting) at the end; client's ARP entry on its MAC; no vipd died; the master's goroutines (status) within +%d and its descriptors and sockets (/proc/PID/fd) within +%d of before", leakGoroutines, leakFDs))
	startPair(t, p, pair.NodeConfig{}, pair.NodeConfig{})
	g0, s0 := stable(t, p, p.A)
	for range 5 {
		must(t, p.A.Host.CutLink())
		time.Sleep(150 * time.Millisecond)
		must(t, p.A.Host.RestoreLink())
		time.Sleep(150 * time.Millisecond)
	}
	flapped := time.Now()
	must(t, p.WaitHolder(p.A, pair.VIP, 3*time.Second))
	settled := time.Since(flapped)
	g1, s1 := stable(t, p, p.A)
	row.Figure = fmt.Sprintf("sole holder again %s after the last flap; goroutines %d→%d, fds %d→%d, sockets %d→%d",
		ms(settled), g0, g1, s0.fds, s1.fds, s0.sockets, s1.sockets)
	assertNoLeak(t, g0, g1, s0, s1)
	assertEnd(t, p, p.A)
}

func assertNoLeak(t *testing.T, g0, g1 int, s0, s1 procSample) {
	t.Helper()
	if g1 > g0+leakGoroutines {
		t.Errorf("goroutines %d → %d: leaked", g0, g1)
	}
	if s1.fds > s0.fds+leakFDs || s1.sockets > s0.sockets+leakFDs {
		t.Errorf("descriptors %d → %d, sockets %d → %d: leaked", s0.fds, s1.fds, s0.sockets, s1.sockets)
	}
}

// waitHas polls until n's eth0 carries the VIP.
func waitHas(n *pair.Node, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := n.Host.HasAddr(pair.VIP)
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s does not hold %s after %v: %w", n.Host.Name, pair.VIP, timeout, pair.ErrTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestReliabilityInterfaceRecreated(t *testing.T) {
	p := newPair(t, "rrc")
	row := relRecord(t, "3b", "Interface deleted and recreated",
		"The master's eth0 deleted (`ip link del`) until the backup took over, then recreated as the lab builds it (new veth pair, same names and address, new index and MAC); three times.",
		fmt.Sprintf("the backup takes over each time; the recreated master preempts back and is the one holder; the client's ARP entry moves to its new MAC; no vipd died; goroutines within +%d and descriptors and sockets within +%d of before", leakGoroutines, leakFDs))
	startPair(t, p, pair.NodeConfig{}, pair.NodeConfig{})
	g0, s0 := stable(t, p, p.A)
	mac0, err := p.A.Host.MAC()
	must(t, err)
	var worstBack, worstOver time.Duration
	for range 3 {
		start := time.Now()
		must(t, deleteEth0(p.A.Host))
		// A has no eth0 to hold anything on now: wait for B alone.
		must(t, waitHas(p.B, 3*time.Second))
		worstOver = max(worstOver, time.Since(start))
		start = time.Now()
		must(t, createEth0(p, p.A.Host))
		must(t, p.WaitHolder(p.A, pair.VIP, 3*time.Second))
		worstBack = max(worstBack, time.Since(start))
	}
	g1, s1 := stable(t, p, p.A)
	mac1, err := p.A.Host.MAC()
	must(t, err)
	row.Figure = fmt.Sprintf("backup took over within %s of a deletion, master back within %s of a recreation; goroutines %d→%d, fds %d→%d, sockets %d→%d",
		ms(worstOver), ms(worstBack), g0, g1, s0.fds, s1.fds, s0.sockets, s1.sockets)
	if mac0.String() == mac1.String() {
		t.Errorf("the recreated eth0 kept MAC %s; the case needs a new one", mac1)
	}
	assertNoLeak(t, g0, g1, s0, s1)
	if s := relStatusOf(t, p, p.A); s.Instances[0].State != "master" {
		t.Errorf("A is %s after the recreation, want master", s.Instances[0].State)
	}
	assertEnd(t, p, p.A)
}

// The hostile segment's figures.
const (
	floodRate     = 10_000 // datagrams per second
	floodCount    = 20_000
	maxFloodCores = 0.5
	maxFloodLog   = 20 << 10 // bytes added to a node's log by one flood
	metricsAddr   = "127.0.0.1:9654"
)

// floodOutcome is what one flood did to the pair.
type floodOutcome struct {
	res       inject.FloodResult
	gap       time.Duration
	cores     map[*pair.Node]float64
	logBytes  map[*pair.Node]int64
	before    map[*pair.Node]relStatus
	after     map[*pair.Node]relStatus
	unattrib  map[*pair.Node]map[string]uint64 // delta
	kernDrops map[*pair.Node]uint64            // delta
	// window is the time between the status readings before and after.
	window map[*pair.Node]time.Duration
}

// attributedDrops is the growth of n's instance drop counters by reason.
func (o floodOutcome) attributedDrops(n *pair.Node) map[string]uint64 {
	d := map[string]uint64{}
	for r, v := range o.after[n].Instances[0].Dropped {
		d[r] = v - o.before[n].Instances[0].Dropped[r]
	}
	return d
}

// counted is everything n's counters show of the flood: adverts received
// and drops by reason, of the instance or of the interface.
func (o floodOutcome) counted(n *pair.Node) uint64 {
	sum := o.after[n].Instances[0].Counters.AdvertsReceived - o.before[n].Instances[0].Counters.AdvertsReceived
	for _, v := range o.attributedDrops(n) {
		sum += v
	}
	for _, v := range o.unattrib[n] {
		sum += v
	}
	return sum
}

// flood sends floodCount datagrams made by next at floodRate while the
// client pings the VIP, and measures both nodes around it. It waits for the
// daemons to have counted every datagram the flood sent them (received,
// dropped by vipd or dropped by the kernel), at most 3 s.
func flood(t *testing.T, p *pair.Pair, j *inject.Injector, next func(int) inject.Datagram) floodOutcome {
	t.Helper()
	o := floodOutcome{
		cores: map[*pair.Node]float64{}, logBytes: map[*pair.Node]int64{},
		before: map[*pair.Node]relStatus{}, after: map[*pair.Node]relStatus{},
		unattrib: map[*pair.Node]map[string]uint64{}, kernDrops: map[*pair.Node]uint64{},
		window: map[*pair.Node]time.Duration{},
	}
	un0, kd0, s0 := map[*pair.Node]map[string]uint64{}, map[*pair.Node]uint64{}, map[*pair.Node]procSample{}
	at0 := map[*pair.Node]time.Time{}
	for _, n := range p.Nodes() {
		at0[n] = time.Now()
		o.before[n] = relStatusOf(t, p, n)
		un0[n] = scrapeDrops(t, n, metricsAddr)
		kd0[n] = rawDrops(t, n)
	}
	probe := startProbe(t, p)
	for _, n := range p.Nodes() {
		s0[n] = sampleProc(t, n)
	}
	limit := 2*time.Duration(floodCount)*time.Second/floodRate + time.Second
	res, err := j.Flood(context.Background(), inject.Flood{Count: floodCount, Rate: floodRate, Limit: limit, Next: next})
	o.res = res
	time.Sleep(300 * time.Millisecond)
	for _, n := range p.Nodes() {
		s1 := sampleProc(t, n)
		// CPU up to now (the tail of the backlog included) over the
		// flood's own duration: an upper bound.
		o.cores[n] = float64(s1.cpu-s0[n].cpu) / float64(max(res.Elapsed(), time.Millisecond))
		o.logBytes[n] = s1.logSize - s0[n].logSize
	}
	r := probe.Stop()
	o.gap = r.LongestGap(res.Start.Add(-50*time.Millisecond), r.End)
	must(t, err)
	if res.Sent != floodCount || res.Failed != 0 {
		t.Fatalf("flood sent %d of %d (%d failed: %v)", res.Sent, floodCount, res.Failed, res.FirstErr)
	}
	deadline := time.Now().Add(3 * time.Second)
	for _, n := range p.Nodes() {
		for {
			o.after[n] = relStatusOf(t, p, n)
			o.window[n] = time.Since(at0[n])
			un := scrapeDrops(t, n, metricsAddr)
			o.unattrib[n] = map[string]uint64{}
			for r, v := range un {
				if d := v - un0[n][r]; d > 0 {
					o.unattrib[n][r] = d
				}
			}
			o.kernDrops[n] = rawDrops(t, n) - kd0[n]
			if o.counted(n)+o.kernDrops[n] >= floodCount || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return o
}

// assertFloodHarmless checks what every flood must leave alone: no
// transition, the master alone holding the VIP, the client's replies, CPU
// and the logs.
func assertFloodHarmless(t *testing.T, p *pair.Pair, o floodOutcome) {
	t.Helper()
	for _, n := range p.Nodes() {
		if d := o.after[n].transitions() - o.before[n].transitions(); d != 0 {
			t.Errorf("%s made %d state transitions during the flood, want none", n.Host.Name, d)
		}
		if o.cores[n] >= maxFloodCores {
			t.Errorf("%s used %.2f cores during the flood, want under %.1f", n.Host.Name, o.cores[n], maxFloodCores)
		}
		if o.logBytes[n] >= maxFloodLog {
			t.Errorf("%s logged %d bytes during the flood, want under %d", n.Host.Name, o.logBytes[n], maxFloodLog)
		}
	}
	if err := p.WaitHolder(p.A, pair.VIP, 0); err != nil {
		t.Errorf("after the flood: %v", err)
	}
	if o.gap > 50*time.Millisecond+gapSlack {
		t.Errorf("client gap %v during the flood, want at most 50ms + %v", o.gap, gapSlack)
	}
}

func (o floodOutcome) figure(p *pair.Pair) string {
	return fmt.Sprintf("%d sent in %s (%.0f/s); CPU a %.2f, b %.2f cores; log +%d B a, +%d B b; client gap %s",
		o.res.Sent, ms(o.res.Elapsed()), o.res.Rate(), o.cores[p.A], o.cores[p.B], o.logBytes[p.A], o.logBytes[p.B], ms(o.gap))
}

// advertBytes marshals an advert from src to the VRRP group.
func advertBytes(t *testing.T, a vrrp.Advert, src netip.Addr) []byte {
	t.Helper()
	b, err := a.AppendMarshal(nil, vrrp.ChecksumPseudoHeader, src, vrrp.GroupV4)
	must(t, err)
	return b
}

func TestReliabilityHostileSegment(t *testing.T) {
	p := newPair(t, "rhs")
	relConfig(t, p, p.A, "metrics_listen: "+metricsAddr+"\n", 150, "")
	relConfig(t, p, p.B, "metrics_listen: "+metricsAddr+"\n", 100, "")
	must(t, p.Start(p.A))
	must(t, p.Start(p.B))
	must(t, p.WaitHolder(p.A, pair.VIP, 3*time.Second))
	evil, err := p.Lab.AddHost("evil", "198.18.0.66/24")
	must(t, err)
	j, err := inject.Open(evil)
	must(t, err)
	defer j.Close()
	group := vrrp.GroupV4
	vips := []netip.Addr{pair.VIP}

	t.Run("lower priority flood", func(t *testing.T) {
		row := relRecord(t, "4a", "Hostile segment: lower-priority flood",
			fmt.Sprintf("From a third namespace, %d well-formed VRID 51 adverts at priority 50 (TTL 255, the pair's VIP list) at %d/s to 224.0.0.18, while the client pinged the VIP every 5 ms.", floodCount, floodRate),
			fmt.Sprintf("no transition on either node; the master keeps the VIP alone; client's longest gap ≤ 50 ms + %s; each daemon under %.1f core (utime+stime over the flood); each log grows < %d KiB; the master counts every advert (received + kernel socket drops = sent) and answers the flood with backoff: at most one advert per interval of its own plus 2 + ⌈log2(window/interval + 1)⌉ answers, and at most 2 gratuitous ARP per answer plus 2 per garp.interval (1 s) of repeats; no vipd died", dur(gapSlack), maxFloodCores, maxFloodLog>>10))
		low := advertBytes(t, vrrp.Advert{Version: 3, VRID: 51, Priority: 50, Interval: interval, Addresses: vips}, evil.Addr)
		o := flood(t, p, j, func(int) inject.Datagram { return inject.Datagram{Dst: group, Payload: low} })
		sent := o.after[p.A].Instances[0].Counters.AdvertsSent - o.before[p.A].Instances[0].Counters.AdvertsSent
		garps := o.after[p.A].Instances[0].Counters.GARPSent - o.before[p.A].Instances[0].Counters.GARPSent
		row.Figure = o.figure(p) + fmt.Sprintf("; master counted %d (+%d kernel drops), sent %d adverts in %s and %d gratuitous ARP",
			o.counted(p.A), o.kernDrops[p.A], sent, ms(o.window[p.A]), garps)
		assertFloodHarmless(t, p, o)
		recv := o.after[p.A].Instances[0].Counters.AdvertsReceived - o.before[p.A].Instances[0].Counters.AdvertsReceived
		if drops := o.counted(p.A) - recv; recv+o.kernDrops[p.A] != floodCount || drops != 0 {
			t.Errorf("master received %d adverts and dropped %d (+%d kernel drops), want %d received", recv, drops, o.kernDrops[p.A], floodCount)
		}
		// Its own advert each interval, between the two status readings,
		// plus the answers to the flood, which back off (maxAnswers), and
		// one more for each edge.
		answers := maxAnswers(o.window[p.A])
		if limit := uint64(o.window[p.A]/interval) + answers + 2; sent > limit {
			t.Errorf("master sent %d adverts in %v of flood, want at most %d (one per interval and %d answers)", sent, o.window[p.A], limit, answers)
		}
		// Each answer is a gratuitous ARP request and reply, and starts a
		// burst whose repeats come a second apart.
		if limit := 2*answers + 2*(uint64(o.window[p.A]/time.Second)+1); garps > limit {
			t.Errorf("master sent %d gratuitous ARP in %v of flood, want at most %d (%d answers backing off, and their repeats)", garps, o.window[p.A], limit, answers)
		}
		assertEnd(t, p, p.A)
	})

	t.Run("malformed and forged", func(t *testing.T) {
		row := relRecord(t, "4b", "Hostile segment: garbage and forged adverts",
			fmt.Sprintf("From a third namespace, %d datagrams of IP protocol 112 at %d/s to 224.0.0.18, a quarter each: seeded random garbage (0-79 bytes, none a valid advert), priority-200 VRID 51 adverts with TTL 64, priority-200 VRID 51 adverts with a broken checksum, priority-200 adverts for VRID 77 (not configured).", floodCount, floodRate),
			fmt.Sprintf("no transition on either node; the master keeps the VIP alone; client's longest gap ≤ 50 ms + %s; each daemon under %.1f core; each log grows < %d KiB (drop logging rate-limited); on each node the drop counters carry the totals: ttl and checksum each = %d, unknown_vrid ≥ %d, and all drops (instance + interface) + kernel socket drops = %d; no vipd died", dur(gapSlack), maxFloodCores, maxFloodLog>>10, floodCount/4, floodCount/4, floodCount))
		high := advertBytes(t, vrrp.Advert{Version: 3, VRID: 51, Priority: 200, Interval: interval, Addresses: vips}, evil.Addr)
		badSum := slices.Clone(high)
		badSum[6] ^= 0x5a
		var check vrrp.Advert
		if _, err := check.Unmarshal(badSum, evil.Addr, group); err != vrrp.DropChecksum {
			t.Fatalf("the broken-checksum advert parses with %v, want %v", err, vrrp.DropChecksum)
		}
		foreign := advertBytes(t, vrrp.Advert{Version: 3, VRID: 77, Priority: 200, Interval: interval, Addresses: vips}, evil.Addr)
		rng := rand.New(rand.NewPCG(7, 5798))
		garbage := make([][]byte, floodCount/4)
		for i := range garbage {
			for {
				b := make([]byte, rng.IntN(80))
				for k := range b {
					b[k] = byte(rng.Uint32())
				}
				var a vrrp.Advert
				if _, err := a.Unmarshal(b, evil.Addr, group); err != nil {
					garbage[i] = b
					break
				}
			}
		}
		o := flood(t, p, j, func(i int) inject.Datagram {
			switch i % 4 {
			case 0:
				return inject.Datagram{Dst: group, Payload: garbage[i/4]}
			case 1:
				return inject.Datagram{Dst: group, TTL: 64, Payload: high}
			case 2:
				return inject.Datagram{Dst: group, Payload: badSum}
			default:
				return inject.Datagram{Dst: group, Payload: foreign}
			}
		})
		fig := o.figure(p)
		for _, n := range p.Nodes() {
			at := o.attributedDrops(n)
			fig += fmt.Sprintf("; %s dropped ttl %d, checksum %d, unknown_vrid %d, other %v (+%d kernel)",
				n.Host.Name, at["ttl"], at["checksum"], o.unattrib[n]["unknown_vrid"], otherDrops(at, o.unattrib[n]), o.kernDrops[n])
			quarter := uint64(floodCount / 4)
			if kd := o.kernDrops[n]; at["ttl"]+kd < quarter || at["ttl"] > quarter || at["checksum"]+kd < quarter || at["checksum"] > quarter {
				t.Errorf("%s counted %d ttl and %d checksum drops (+%d kernel drops), want %d each", n.Host.Name, at["ttl"], at["checksum"], kd, quarter)
			}
			if got := o.unattrib[n]["unknown_vrid"]; got+o.kernDrops[n] < quarter {
				t.Errorf("%s counted %d unknown_vrid drops, want at least %d", n.Host.Name, got, quarter)
			}
			recv := o.after[n].Instances[0].Counters.AdvertsReceived - o.before[n].Instances[0].Counters.AdvertsReceived
			if drops := o.counted(n) - recv; drops+o.kernDrops[n] != floodCount {
				t.Errorf("%s counted %d drops + %d kernel drops, want %d", n.Host.Name, drops, o.kernDrops[n], floodCount)
			}
		}
		row.Figure = fig
		assertFloodHarmless(t, p, o)
		assertEnd(t, p, p.A)
	})
}

// otherDrops renders the drop reasons other than ttl, checksum and
// unknown_vrid, of the instance and the interface together.
func otherDrops(maps ...map[string]uint64) string {
	sum := map[string]uint64{}
	for _, m := range maps {
		for r, v := range m {
			if r != "ttl" && r != "checksum" && r != "unknown_vrid" && v > 0 {
				sum[r] += v
			}
		}
	}
	keys := make([]string, 0, len(sum))
	for r := range sum {
		keys = append(keys, r)
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys))
	for _, r := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", r, sum[r]))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func TestReliabilityKill9Master(t *testing.T) {
	p := newPair(t, "rkm")
	mdi := pair.MasterDownInterval(100, interval)
	row := relRecord(t, "5a", "kill -9 of the master, restart",
		"SIGKILL to the master's vipd (its alias stays on the interface, and its host, still up, keeps answering for it until the backup's gratuitous ARP moves the client), then vipd started again on it 200 ms after the takeover, while the client pinged the VIP every 5 ms.",
		fmt.Sprintf("the backup takes over within Master_Down_Interval (%s) + %s; the restarted node removes its stale alias and preempts back; one holder (the master) at the end, no stale VIP on the backup; client's longest gap ≤ 50 ms + %s; no vipd died but the killed one", dur(mdi), dur(slack), dur(gapSlack)))
	startPair(t, p, pair.NodeConfig{}, pair.NodeConfig{})
	wB, err := p.B.Host.WatchAddr(pair.VIP)
	must(t, err)
	defer wB.Stop()
	probe := startProbe(t, p)
	killed := time.Now()
	if err := p.Kill(p.A); err != nil {
		probe.Stop()
		t.Fatal(err)
	}
	took, err := firstEvent(wB, killed, true, 3*time.Second)
	if err != nil {
		probe.Stop()
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	restarted := time.Now()
	if err := p.Start(p.A); err != nil {
		probe.Stop()
		t.Fatal(err)
	}
	err = p.WaitHolder(p.A, pair.VIP, 3*time.Second)
	back := time.Since(restarted)
	time.Sleep(300 * time.Millisecond)
	r := probe.Stop()
	must(t, err)
	takeover := took.Time.Sub(killed)
	gap := r.LongestGap(killed.Add(-50*time.Millisecond), r.End)
	row.Figure = fmt.Sprintf("backup took over %s after the kill; restarted master sole holder %s after its start; client gap %s", ms(takeover), ms(back), ms(gap))
	if takeover > mdi+slack {
		t.Errorf("backup took over %v after the kill, want within %v + %v", takeover, mdi, slack)
	}
	if gap > 50*time.Millisecond+gapSlack {
		t.Errorf("client gap %v, want at most 50ms + %v", gap, gapSlack)
	}
	logb, err := os.ReadFile(p.A.Log)
	must(t, err)
	if !strings.Contains(string(logb), "removing stale VIP") {
		t.Error("the restarted node did not log removing its stale VIP")
	}
	if s := relStatusOf(t, p, p.B); s.Instances[0].State != "backup" {
		t.Errorf("B is %s, want backup", s.Instances[0].State)
	}
	assertEnd(t, p, p.A)
}

func TestReliabilityKill9Backup(t *testing.T) {
	p := newPair(t, "rkb")
	row := relRecord(t, "5b", "kill -9 of the backup, restart",
		"SIGKILL to the backup's vipd, vipd started again on it 300 ms later, while the client pinged the VIP every 5 ms and the holders were sampled every 5 ms.",
		fmt.Sprintf("the master alone holds the VIP at every sample, makes no transition; the restarted backup comes up as backup of the master; client's longest gap ≤ 50 ms + %s; no vipd died but the killed one", dur(gapSlack)))
	startPair(t, p, pair.NodeConfig{}, pair.NodeConfig{})
	a0 := relStatusOf(t, p, p.A).transitions()
	probe := startProbe(t, p)
	start := time.Now()
	if err := p.Kill(p.B); err != nil {
		probe.Stop()
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if err := p.Start(p.B); err != nil {
		probe.Stop()
		t.Fatal(err)
	}
	samples, bad := 0, 0
	for end := time.Now().Add(pair.MasterDownInterval(100, interval) + 700*time.Millisecond); time.Now().Before(end); {
		hs, err := p.Holders(pair.VIP)
		if err != nil {
			probe.Stop()
			t.Fatal(err)
		}
		samples++
		if len(hs) != 1 || hs[0] != p.A {
			bad++
		}
		time.Sleep(5 * time.Millisecond)
	}
	r := probe.Stop()
	gap := r.LongestGap(start.Add(-50*time.Millisecond), r.End)
	a1 := relStatusOf(t, p, p.A).transitions()
	row.Figure = fmt.Sprintf("%d holder samples, %d not the master alone; master transitions +%d; client gap %s", samples, bad, a1-a0, ms(gap))
	if bad > 0 {
		t.Errorf("%d of %d samples did not show the master alone holding the VIP", bad, samples)
	}
	if a1 != a0 {
		t.Errorf("the master made %d transitions while the backup was killed and restarted", a1-a0)
	}
	if gap > 50*time.Millisecond+gapSlack {
		t.Errorf("client gap %v, want at most 50ms + %v", gap, gapSlack)
	}
	s := relStatusOf(t, p, p.B)
	if in := s.Instances[0]; in.State != "backup" || in.MasterAddress != p.A.Host.Addr.String() {
		t.Errorf("restarted backup is %s with master %q, want backup of %s", in.State, in.MasterAddress, p.A.Host.Addr)
	}
	assertEnd(t, p, p.A)
}

func TestReliabilitySighupStorm(t *testing.T) {
	p := newPair(t, "rhu")
	row := relRecord(t, "5c", "SIGHUP storm",
		"50 SIGHUPs to the master's vipd within one second (every 19 ms), config unchanged, while the client pinged the VIP every 5 ms.",
		fmt.Sprintf("no transition on either node; the master keeps the VIP alone; at least one reload logged and the last reload ok; client's longest gap ≤ 50 ms + %s; no vipd died", dur(gapSlack)))
	startPair(t, p, pair.NodeConfig{}, pair.NodeConfig{})
	time.Sleep(200 * time.Millisecond)
	trans := transitionsOf(t, p)
	logb, err := os.ReadFile(p.A.Log)
	must(t, err)
	reloads0 := strings.Count(string(logb), "configuration reloaded")
	probe := startProbe(t, p)
	start := time.Now()
	for range 50 {
		if err := p.A.Proc.Signal(syscall.SIGHUP); err != nil {
			probe.Stop()
			t.Fatal(err)
		}
		time.Sleep(19 * time.Millisecond)
	}
	storm := time.Since(start)
	time.Sleep(500 * time.Millisecond)
	r := probe.Stop()
	gap := r.LongestGap(start.Add(-50*time.Millisecond), r.End)
	logb, err = os.ReadFile(p.A.Log)
	must(t, err)
	reloads := strings.Count(string(logb), "configuration reloaded") - reloads0
	row.Figure = fmt.Sprintf("50 signals in %s, %d reloads carried out (%d coalesced with one in progress); client gap %s", ms(storm), reloads, 50-reloads, ms(gap))
	if storm > time.Second+20*time.Millisecond {
		t.Errorf("the storm took %v, not about one second", storm)
	}
	if reloads < 1 {
		t.Error("no reload logged")
	}
	if s := relStatusOf(t, p, p.A); !s.Reload.OK {
		t.Error("the last reload is reported as failed")
	}
	if gap > 50*time.Millisecond+gapSlack {
		t.Errorf("client gap %v during the storm, want at most 50ms + %v", gap, gapSlack)
	}
	assertNoTransition(t, p, trans)
	assertEnd(t, p, p.A)
}

func TestReliabilityFullStateDisk(t *testing.T) {
	p := newPair(t, "rds")
	skew := pair.SkewTime(100, interval)
	row := relRecord(t, "5d", "Full disk for the state directory",
		"The master's state_dir on a 64 KiB tmpfs, filled to the last byte; `vipd maintenance web on`, then `off` on the full disk, then `off` again after freeing it.",
		fmt.Sprintf("on the full disk both calls exit non-zero saying the change is in force but not saved, and take effect: the VIP moves to the backup with a client gap ≤ Skew_Time (%s) + %s and back with one ≤ 50 ms + %s; no temporary file is left behind; after freeing space `off` exits 0 and saves; one holder (the master) at the end; no vipd died", dur(skew), dur(slack), dur(gapSlack)))
	stateDir := filepath.Join(p.Dir, "a-state")
	mountTinyTmpfs(t, stateDir, "64k")
	startPair(t, p, pair.NodeConfig{}, pair.NodeConfig{})
	filled := fillDir(t, stateDir)

	var out string
	var code int
	on, err := p.Failover(p.B, func() error { out, code = maintenance(p, p.A, "on"); return nil }, 3*time.Second, 200*time.Millisecond)
	must(t, err)
	if code == 0 || !strings.Contains(out, "not saved") {
		t.Errorf("maintenance on with a full disk: exit %d, %q; want non-zero and \"not saved\"", code, out)
	}
	onOut, onCode := out, code
	if s := relStatusOf(t, p, p.A); !s.Instances[0].Maintenance || s.Instances[0].State != "backup" {
		t.Errorf("A after maintenance on: maintenance %v, state %s; want true, backup", s.Instances[0].Maintenance, s.Instances[0].State)
	}
	ents, err := os.ReadDir(stateDir)
	must(t, err)
	// vipd.lock is the running vipd's lock, taken at start-up.
	ents = slices.DeleteFunc(ents, func(e os.DirEntry) bool { return e.Name() == "vipd.lock" })
	if len(ents) != 1 || ents[0].Name() != "fill" {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("state dir holds %v, want only the filler", names)
	}

	off, err := p.Failover(p.A, func() error { out, code = maintenance(p, p.A, "off"); return nil }, 3*time.Second, 200*time.Millisecond)
	must(t, err)
	if code == 0 || !strings.Contains(out, "not saved") {
		t.Errorf("maintenance off with a full disk: exit %d, %q; want non-zero and \"not saved\"", code, out)
	}
	row.Figure = fmt.Sprintf("filled %d B; on: exit %d, VIP moved with client gap %s; off: exit %d, VIP back with client gap %s",
		filled, onCode, ms(on.Gap), code, ms(off.Gap))
	if on.Gap > skew+slack {
		t.Errorf("client gap %v moving to the backup, want at most Skew_Time %v + %v", on.Gap, skew, slack)
	}
	if off.Gap > 50*time.Millisecond+gapSlack {
		t.Errorf("client gap %v moving back, want at most 50ms + %v", off.Gap, gapSlack)
	}

	must(t, os.Remove(filepath.Join(stateDir, "fill")))
	out, code = maintenance(p, p.A, "off")
	if code != 0 {
		t.Errorf("maintenance off with space again: exit %d, %q", code, out)
	}
	saved, err := os.ReadFile(filepath.Join(stateDir, "maintenance.json"))
	if err != nil || !strings.Contains(string(saved), `"maintenance":[]`) {
		t.Errorf("state file after off: %q, %v", saved, err)
	}
	t.Logf("maintenance on with a full disk said: %s", onOut)
	assertEnd(t, p, p.A)
}

func TestReliabilityStalledControlClients(t *testing.T) {
	p := newPair(t, "rsc")
	skew := pair.SkewTime(100, interval)
	row := relRecord(t, "5e", "Control-socket clients that never read",
		"On the master's control socket: 4 clients GET /v1/events, 4 send 300 pipelined GET /v1/status, 1 sends half a request header; none reads. Then a failover (`vipd maintenance web on` over the same socket) and back (`off`), while the client pinged the VIP every 5 ms.",
		fmt.Sprintf("the socket still answers status and maintenance; the hand-over keeps its timing: client gap ≤ Skew_Time (%s) + %s to the backup and ≤ 50 ms + %s back; once the stalled clients hang up the daemon's goroutines return to within +%d of before; one holder at the end; no vipd died", dur(skew), dur(slack), dur(gapSlack), leakGoroutines))
	startPair(t, p, pair.NodeConfig{}, pair.NodeConfig{})
	g0, _ := stable(t, p, p.A)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	dial := func(req string) {
		c, err := net.Dial("unix", socketOf(p, p.A))
		must(t, err)
		conns = append(conns, c)
		_, err = c.Write([]byte(req))
		must(t, err)
	}
	for range 4 {
		dial("GET /v1/events HTTP/1.1\r\nHost: vipd\r\n\r\n")
		dial(strings.Repeat("GET /v1/status HTTP/1.1\r\nHost: vipd\r\n\r\n", 300))
	}
	dial("GET /v1/status HTTP/1.1\r\nHo")
	time.Sleep(500 * time.Millisecond)
	gStalled := relStatusOf(t, p, p.A).Goroutines

	var outOn, outOff string
	var codeOn, codeOff int
	on, err := p.Failover(p.B, func() error { outOn, codeOn = maintenance(p, p.A, "on"); return nil }, 3*time.Second, 200*time.Millisecond)
	must(t, err)
	off, err := p.Failover(p.A, func() error { outOff, codeOff = maintenance(p, p.A, "off"); return nil }, 3*time.Second, 200*time.Millisecond)
	must(t, err)
	if codeOn != 0 || codeOff != 0 {
		t.Errorf("maintenance on: exit %d %q; off: exit %d %q", codeOn, outOn, codeOff, outOff)
	}
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	g1, _ := stable(t, p, p.A)
	row.Figure = fmt.Sprintf("client gap %s to the backup, %s back; goroutines %d before, %d with the stalled clients, %d after they hung up",
		ms(on.Gap), ms(off.Gap), g0, gStalled, g1)
	if on.Gap > skew+slack {
		t.Errorf("client gap %v moving to the backup, want at most Skew_Time %v + %v", on.Gap, skew, slack)
	}
	if off.Gap > 50*time.Millisecond+gapSlack {
		t.Errorf("client gap %v moving back, want at most 50ms + %v", off.Gap, gapSlack)
	}
	if g1 > g0+leakGoroutines {
		t.Errorf("goroutines %d before the stalled clients, %d after they hung up: leaked", g0, g1)
	}
	assertEnd(t, p, p.A)
}

func TestReliabilityAccess(t *testing.T) {
	p := newPair(t, "rac")
	startPair(t, p, pair.NodeConfig{}, pair.NodeConfig{})

	t.Run("non-root maintenance", func(t *testing.T) {
		row := relRecord(t, "6a", "Access: non-root caller on a mutating call",
			"Socket opened to everyone (0666) so that only the daemon's credential check stands in the way; `vipd maintenance web on` run as uid 65534 (setpriv), and `vipd status` as the same user.",
			"maintenance refused with the caller's uid named (SO_PEERCRED), exit non-zero; status answered for the same user; no transition, the master keeps the VIP; no vipd died")
		if _, err := exec.LookPath("setpriv"); err != nil {
			t.Fatal("setpriv not found (package util-linux)")
		}
		must(t, os.Chmod(socketOf(p, p.A), 0o666))
		must(t, os.Chmod(p.Dir, 0o755))
		must(t, os.Chmod(filepath.Dir(p.Dir), 0o755))
		bin := filepath.Join(p.Dir, "vipd-copy")
		copyFile(t, p.Bin, bin, 0o755)
		trans := transitionsOf(t, p)
		asNobody := func(args ...string) (string, int) {
			cmd := exec.Command("setpriv", append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", bin}, args...)...)
			out, err := cmd.CombinedOutput()
			return strings.TrimSpace(string(out)), exitCode(err)
		}
		out, code := asNobody("maintenance", "web", "on", "--socket", socketOf(p, p.A))
		row.Figure = fmt.Sprintf("maintenance as uid 65534: exit %d, %q", code, out)
		if code == 0 || !strings.Contains(out, "caller uid 65534") {
			t.Errorf("non-root maintenance: exit %d, %q; want refused by credentials (\"caller uid 65534\")", code, out)
		}
		if sout, scode := asNobody("status", "--socket", socketOf(p, p.A)); scode != 0 || !strings.Contains(sout, "master") {
			t.Errorf("status as uid 65534: exit %d, %q; want the table", scode, sout)
		}
		if s := relStatusOf(t, p, p.A); s.Instances[0].Maintenance {
			t.Error("A is in maintenance after a refused call")
		}
		assertNoTransition(t, p, trans)
		assertEnd(t, p, p.A)
	})

	t.Run("metrics on loopback by default", func(t *testing.T) {
		row := relRecord(t, "6b", "Access: metrics listener defaults to loopback",
			"The backup restarted with a config that has no metrics_listen key; a scrape from inside its namespace the moment the listener accepts (before the protocol loop runs); its namespace's listening TCP sockets read from /proc/PID/net/tcp; a connection from the client to its 198.18.0.12:9654.",
			"the early scrape waits for the loop and answers 200 with vipd_build_info; exactly one TCP listener, 127.0.0.1:9654; the client's connection is refused; one holder at the end; no vipd died")
		must(t, p.Stop(p.B))
		relConfig(t, p, p.B, "", 100, "")
		must(t, p.Start(p.B))
		// The scrape comes as soon as the listener accepts, which is
		// before the protocol loop runs: it must wait for the loop, not
		// fail.
		code, body := firstAnswer(t, httpIn(p.B.Host), "http://"+metricsAddr+"/metrics")
		switch {
		case code != http.StatusOK:
			t.Errorf("scrape on loopback right after start-up: %d: %s", code, body)
		case !bytes.Contains(body, []byte("\nvipd_build_info{")):
			t.Error("the loopback scrape has no vipd_build_info")
		}
		var ls []netip.AddrPort
		deadline := time.Now().Add(3 * time.Second)
		for len(ls) == 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
			ls = tcpListeners(t, p.B)
		}
		want := netip.MustParseAddrPort(metricsAddr)
		row.Figure = fmt.Sprintf("listeners %v", ls)
		if len(ls) != 1 || ls[0] != want {
			t.Errorf("TCP listeners in b's namespace: %v, want only %v", ls, want)
		}
		remote := netip.AddrPortFrom(p.B.Host.Addr, want.Port()).String()
		_, err := httpIn(p.Client).Get("http://" + remote + "/metrics")
		if err == nil || !strings.Contains(err.Error(), "connection refused") {
			t.Errorf("scrape of %s from the client: %v; want connection refused", remote, err)
		}
		row.Figure += fmt.Sprintf("; from the client: %v", errSuffix(err))
		assertEnd(t, p, p.A)
	})

	t.Run("world-readable auth_pass", func(t *testing.T) {
		row := relRecord(t, "6c", "Access: world-readable config with auth_pass",
			"vipd started in the client's namespace with a VRRPv2 config holding auth_pass (VRID 52, its own VIP), once with mode 0644 and once with 0600, and stopped each time.",
			"the 0644 run logs the \"readable by every user\" warning naming the file; the 0600 run does not; both stop with exit 0; the pair is undisturbed; no vipd of the pair died")
		cfg := filepath.Join(p.Dir, "secret.yaml")
		body := fmt.Sprintf("metrics_listen: \"\"\ncontrol_socket: %s\nstate_dir: %s\ninstances:\n  - name: sec\n    interface: eth0\n    vrid: 52\n    version: 2\n    advert_interval: 1s\n    auth_pass: s3cret\n    vips: [198.18.0.101]\n",
			filepath.Join(p.Dir, "secret.sock"), filepath.Join(p.Dir, "secret-state"))
		run := func(mode os.FileMode) string {
			t.Helper()
			must(t, os.WriteFile(cfg, []byte(body), 0o600))
			must(t, os.Chmod(cfg, mode))
			logPath := filepath.Join(p.Dir, fmt.Sprintf("secret-%o.log", mode))
			proc, err := p.Client.Start(logPath, p.Bin, "run", "--config", cfg)
			must(t, err)
			deadline := time.Now().Add(3 * time.Second)
			var logb []byte
			for !strings.Contains(string(logb), "vipd started") {
				if time.Now().After(deadline) {
					t.Fatalf("vipd with the %o config did not start:\n%s", mode, logb)
				}
				time.Sleep(20 * time.Millisecond)
				logb, _ = os.ReadFile(logPath)
			}
			must(t, proc.Signal(syscall.SIGTERM))
			if code, err := proc.Wait(5 * time.Second); err != nil || code != 0 {
				t.Errorf("vipd with the %o config: exit %d, %v", mode, code, err)
			}
			logb, _ = os.ReadFile(logPath)
			return string(logb)
		}
		open := run(0o644)
		closed := run(0o600)
		warned := strings.Contains(open, "readable by every user") && strings.Contains(open, cfg)
		row.Figure = fmt.Sprintf("0644: warning logged %v; 0600: warning logged %v", warned, strings.Contains(closed, "readable by every user"))
		if !warned {
			t.Errorf("no warning naming %s for a world-readable config with auth_pass:\n%s", cfg, open)
		}
		if strings.Contains(closed, "readable by every user") {
			t.Errorf("warning for a 0600 config:\n%s", closed)
		}
		assertEnd(t, p, p.A)
	})
}

// errSuffix is the last part of a dial error, "connection refused".
func errSuffix(err error) string {
	if err == nil {
		return "connected"
	}
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		return s[i+2:]
	}
	return s
}
