package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/e2e/inject"
	"github.com/vipd/vipd/e2e/lab"
	"github.com/vipd/vipd/e2e/pair"
	"github.com/vipd/vipd/vrrp"
)

// The combined case's figures.
const (
	// advertLate is how much later than one advert interval a master's
	// next advert may leave: the bound.
	advertLate = 10 * time.Millisecond
	// slowHook is how long the removed instance's hook runs.
	slowHook = 3 * time.Second
	// stressRate and stressCount make a flood of about 5 s.
	stressRate  = 5_000
	stressCount = 25_000
)

// TestReliabilityCombined runs the faults that used to stall the protocol
// loop or make a sync group flap at the same time: a reload that removes an
// instance whose 3 s notify hook is running, a hostile advert flood, and
// maintenance toggled on one member of a sync group. The master of the
// instance that none of it concerns must send every advert on time.
func TestReliabilityCombined(t *testing.T) {
	p := newPair(t, "rcb")
	row := relRecord(t, "9", "Reload with a slow hook, flood and sync-group maintenance at once",
		fmt.Sprintf("Each node runs web (VRID 51), a sync group {vi1, vi2} (VRIDs 52, 53) and, on A only, hooked (VRID 54) whose notify hook runs %s; A (priority 150) is master of all. While a third namespace sends %d datagrams at %d/s (lower-priority VRID 51 adverts, garbage, TTL-64 and broken-checksum forgeries): A's config loses hooked and A gets SIGHUP while hooked's hook runs; `vipd maintenance vi1 on` on A, then `off`.", slowHook, stressCount, stressRate),
		fmt.Sprintf("A's web adverts, seen by a bystander with kernel timestamps, never more than one interval + %s apart; the reload answered within 1 s while the hook still runs, and status answers meanwhile; the group moves to B as one and stays (no transition of vi1 or vi2 on either node but the one move each way), then comes back; web makes no transition on either node; no vipd died", dur(advertLate)))

	vip1 := netip.MustParseAddr("198.18.0.101")
	vip2 := netip.MustParseAddr("198.18.0.102")
	vipH := netip.MustParseAddr("198.18.0.103")
	hookLog := filepath.Join(p.Dir, "hook.log")
	hook := filepath.Join(p.Dir, "slow-hook")
	must(t, os.WriteFile(hook, []byte(fmt.Sprintf("#!/bin/sh\necho \"start $VIPD_STATE\" >> %s\nsleep %d\necho \"end $VIPD_STATE\" >> %s\n",
		hookLog, int(slowHook/time.Second), hookLog)), 0o700))
	hooked := instanceYAML("hooked", 54, 150, vipH.String(), fmt.Sprintf("    notify:\n      command: [%q]\n", hook))
	group := "sync_groups:\n  - name: edge\n    instances: [vi1, vi2]\n"
	top := group
	aInsts := []string{instanceYAML("web", 51, 150, pair.VIP.String(), ""), instanceYAML("vi1", 52, 150, vip1.String(), ""), instanceYAML("vi2", 53, 150, vip2.String(), "")}
	nodeConfig(t, p, p.A, top, append(aInsts, hooked)...)
	nodeConfig(t, p, p.B, top, instanceYAML("web", 51, 100, pair.VIP.String(), ""), instanceYAML("vi1", 52, 100, vip1.String(), ""), instanceYAML("vi2", 53, 100, vip2.String(), ""))
	must(t, p.Start(p.A))
	must(t, p.Start(p.B))
	for _, v := range []netip.Addr{pair.VIP, vip1, vip2} {
		must(t, p.WaitHolder(p.A, v, 3*time.Second))
	}
	has, err := waitAddr(p.A.Host, vipH, true, 3*time.Second)
	must(t, err)
	if !has {
		t.Fatalf("A never took hooked's VIP %s", vipH)
	}

	evil, err := p.Lab.AddHost("evil", "198.18.0.66/24")
	must(t, err)
	j, err := inject.Open(evil)
	must(t, err)
	defer j.Close()
	watch, err := p.Client.WatchAdverts()
	must(t, err)
	defer watch.Stop()
	before := map[string]map[string]uint64{}
	for _, n := range p.Nodes() {
		before[n.Host.Name] = instanceTransitions(t, p, n)
	}

	// The flood: what a hostile segment sends, none of it a higher
	// priority that a master must yield to.
	low := advertBytes(t, vrrp.Advert{Version: 3, VRID: 51, Priority: 50, Interval: interval, Addresses: []netip.Addr{pair.VIP}}, evil.Addr)
	forged := advertBytes(t, vrrp.Advert{Version: 3, VRID: 52, Priority: 200, Interval: interval, Addresses: []netip.Addr{vip1}}, evil.Addr)
	badSum := append([]byte(nil), forged...)
	badSum[6] ^= 0x5a
	garbage := []byte{0x31, 0x33, 0xff}
	type floodDone struct {
		res inject.FloodResult
		err error
	}
	floodCh := make(chan floodDone, 1)
	go func() {
		res, err := j.Flood(context.Background(), inject.Flood{Count: stressCount, Rate: stressRate, Limit: 4 * stressCount / stressRate * time.Second,
			Next: func(i int) inject.Datagram {
				switch i % 4 {
				case 0:
					return inject.Datagram{Dst: vrrp.GroupV4, Payload: low}
				case 1:
					return inject.Datagram{Dst: vrrp.GroupV4, TTL: 64, Payload: forged}
				case 2:
					return inject.Datagram{Dst: vrrp.GroupV4, Payload: badSum}
				default:
					return inject.Datagram{Dst: vrrp.GroupV4, Payload: garbage}
				}
			}})
		floodCh <- floodDone{res, err}
	}()
	floodStart := time.Now()

	// The reload, while hooked's hook runs (its run for becoming master).
	waitFile(t, hookLog, "start master", 5*time.Second)
	nodeConfig(t, p, p.A, top, aInsts...)
	logb, err := os.ReadFile(p.A.Log)
	must(t, err)
	reloads0 := strings.Count(string(logb), "configuration reloaded")
	reloadStart := time.Now()
	must(t, p.A.Proc.Signal(syscall.SIGHUP))
	// status is answered while the hook runs, and the reload is done
	// long before the hook is.
	statusStart := time.Now()
	statusOut, statusErr := exec.Command(p.Bin, "status", "--socket", socketOf(p, p.A)).CombinedOutput()
	statusTook := time.Since(statusStart)
	if statusErr != nil {
		t.Errorf("vipd status during the reload: %v: %s", statusErr, statusOut)
	}
	reloadTook := time.Duration(0)
	for deadline := time.Now().Add(slowHook + time.Second); ; {
		b, err := os.ReadFile(p.A.Log)
		must(t, err)
		if strings.Count(string(b), "configuration reloaded") > reloads0 {
			reloadTook = time.Since(reloadStart)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("A logged no reload within %v", slowHook+time.Second)
		}
		time.Sleep(5 * time.Millisecond)
	}
	hookDone := strings.Contains(readFile(t, hookLog), "end master")
	if reloadTook > time.Second || hookDone {
		t.Errorf("the reload took %v (hook finished before it: %v); want it done within 1s, while the %v hook still runs", reloadTook, hookDone, slowHook)
	}
	if statusTook > 500*time.Millisecond {
		t.Errorf("status took %v during the reload, want well under the hook's %v", statusTook, slowHook)
	}
	if has, err := waitAddr(p.A.Host, vipH, false, time.Second); err != nil || has {
		t.Errorf("hooked's VIP %s still on A after the reload removed hooked (err %v)", vipH, err)
	}

	// Maintenance on one member moves the whole group to B, and it stays.
	if out, code := maintenanceOf(p, p.A, "vi1", "on"); code != 0 {
		t.Fatalf("vipd maintenance vi1 on: exit %d: %s", code, out)
	}
	for _, v := range []netip.Addr{vip1, vip2} {
		must(t, p.WaitHolder(p.B, v, 2*time.Second))
	}
	time.Sleep(time.Second)
	for _, v := range []netip.Addr{vip1, vip2} {
		if err := p.WaitHolder(p.B, v, 0); err != nil {
			t.Errorf("a second after the move: %v", err)
		}
	}
	if out, code := maintenanceOf(p, p.A, "vi1", "off"); code != 0 {
		t.Fatalf("vipd maintenance vi1 off: exit %d: %s", code, out)
	}
	for _, v := range []netip.Addr{vip1, vip2} {
		must(t, p.WaitHolder(p.A, v, 2*time.Second))
	}

	fd := <-floodCh
	must(t, fd.err)
	if fd.res.Sent != stressCount {
		t.Errorf("the flood sent %d of %d", fd.res.Sent, stressCount)
	}
	floodEnd := fd.res.End
	time.Sleep(2 * interval)
	watch.Stop()

	// Every advert of A's web on time, from the flood's start to its end.
	var prev, worstAt time.Time
	var worst time.Duration
	count := 0
	for _, a := range watch.Adverts() {
		if a.VRID != 51 || a.Src != netip.MustParsePrefix(pair.AddrA).Addr() || a.Time.Before(floodStart) {
			continue
		}
		if !prev.IsZero() {
			if d := a.Time.Sub(prev); d > worst {
				worst, worstAt = d, prev
			}
		}
		prev = a.Time
		count++
		if a.Time.After(floodEnd) {
			break
		}
	}
	if count < int(floodEnd.Sub(floodStart)/interval)/2 {
		t.Fatalf("the bystander saw %d of A's web adverts in %v", count, floodEnd.Sub(floodStart))
	}
	if worst > interval+advertLate {
		t.Errorf("A's web adverts were %v apart at %s, want at most %v", worst, worstAt.Format("15:04:05.000"), interval+advertLate)
	}

	// Transitions: none of web; the group one move each way.
	after := map[string]map[string]uint64{}
	for _, n := range p.Nodes() {
		after[n.Host.Name] = instanceTransitions(t, p, n)
	}
	want := map[string]map[string]uint64{
		"a": {"vi1": 2, "vi2": 2},
		"b": {"vi1": 2, "vi2": 2},
	}
	for node, m := range after {
		for inst, n := range m {
			if d := n - before[node][inst]; d != want[node][inst] {
				t.Errorf("%s's %s made %d transitions, want %d", node, inst, d, want[node][inst])
			}
		}
	}
	row.Figure = fmt.Sprintf("%d datagrams in %s; A's web: %d adverts, longest gap %s; reload done %s after SIGHUP (hook of %s still running), status answered in %s; group moved and back with %d/%d transitions on A/B",
		fd.res.Sent, ms(fd.res.Elapsed()), count, ms(worst), ms(reloadTook), slowHook, ms(statusTook),
		after["a"]["vi1"]+after["a"]["vi2"]-before["a"]["vi1"]-before["a"]["vi2"],
		after["b"]["vi1"]+after["b"]["vi2"]-before["b"]["vi1"]-before["b"]["vi2"])
	assertEnd(t, p, p.A)
}

// instanceTransitions is the number of state changes of each of n's
// instances.
func instanceTransitions(t *testing.T, p *pair.Pair, n *pair.Node) map[string]uint64 {
	t.Helper()
	s := statusInto[relStatus](t, p, n)
	m := map[string]uint64{}
	for _, in := range s.Instances {
		var sum uint64
		for _, c := range in.Counters.Transitions {
			sum += c
		}
		m[in.Name] = sum
	}
	return m
}

// maintenanceOf runs `vipd maintenance NAME on|off` against n.
func maintenanceOf(p *pair.Pair, n *pair.Node, name, onOff string) (string, int) {
	out, err := exec.Command(p.Bin, "maintenance", name, onOff, "--socket", socketOf(p, n)).CombinedOutput()
	return strings.TrimSpace(string(out)), exitCode(err)
}

// waitAddr waits until h has (want true) or lacks a, at most timeout, and
// says whether it has it then.
func waitAddr(h *lab.Host, a netip.Addr, want bool, timeout time.Duration) (bool, error) {
	deadline := time.Now().Add(timeout)
	for {
		has, err := h.HasAddr(a)
		if err != nil || has == want || time.Now().After(deadline) {
			return has, err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitFile waits until the file holds want.
func waitFile(t *testing.T, path, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(readFile(t, path), want) {
		if time.Now().After(deadline) {
			t.Fatalf("%s does not say %q after %v: %q", path, want, timeout, readFile(t, path))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}
