package e2e

import (
	"fmt"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/e2e/pair"
)

// groupTransitions lists each instance's transition counters from status.
func groupTransitions(t *testing.T, p *pair.Pair, n *pair.Node) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	for _, in := range statusAll(t, p, n).Instances {
		for k, v := range in.Counters.Transitions {
			out[in.Name+" "+k] = v
		}
	}
	return out
}

// Maintenance on one member of a sync group moves the whole group to the
// peer and keeps it there until `off`: the held member used to leave its
// partner master here, the peer's group pulled the partner over and ours
// pushed it back, without end.
func TestReliabilitySyncGroupMaintenance(t *testing.T) {
	const settle = 2 * time.Second
	p := newPair(t, "rgm")
	row := relRecord(t, "8b", "Maintenance on one member of a sync group",
		"Sync group {web, api}, A preferred for both (150 against 100); `vipd maintenance web on` on A, a wait, then `off`.",
		fmt.Sprintf("both VIPs move to B within 3 s and stay there: no transition on either node for %s after the move; both back on A within 3 s of `off`", settle))
	vip2 := netip.MustParseAddr("198.18.0.101")
	group := "sync_groups:\n  - name: edge\n    instances: [web, api]\n"
	nodeConfig(t, p, p.A, group, instanceYAML("web", 51, 150, pair.VIP.String(), ""), instanceYAML("api", 52, 150, vip2.String(), ""))
	nodeConfig(t, p, p.B, group, instanceYAML("web", 51, 100, pair.VIP.String(), ""), instanceYAML("api", 52, 100, vip2.String(), ""))
	must(t, p.Start(p.A))
	must(t, p.Start(p.B))
	must(t, p.WaitHolder(p.A, pair.VIP, 3*time.Second))
	must(t, p.WaitHolder(p.A, vip2, 3*time.Second))

	maint := func(on string) {
		t.Helper()
		if out, err := exec.Command(p.Bin, "maintenance", "web", on, "--socket", socketOf(p, p.A)).CombinedOutput(); err != nil {
			t.Fatalf("vipd maintenance web %s: %v: %s", on, err, out)
		}
	}
	start := time.Now()
	maint("on")
	must(t, p.WaitHolder(p.B, pair.VIP, 3*time.Second))
	must(t, p.WaitHolder(p.B, vip2, 3*time.Second))
	moved := time.Since(start)
	// Let the last adverts of the move arrive before counting.
	time.Sleep(5 * interval)
	beforeA, beforeB := groupTransitions(t, p, p.A), groupTransitions(t, p, p.B)
	time.Sleep(settle)
	afterA, afterB := groupTransitions(t, p, p.A), groupTransitions(t, p, p.B)
	if !maps.Equal(beforeB, afterB) {
		t.Errorf("B's transitions changed while A's group was in maintenance: %v, then %v", beforeB, afterB)
	}
	if !maps.Equal(beforeA, afterA) {
		t.Errorf("A's transitions changed while its group was in maintenance: %v, then %v", beforeA, afterA)
	}
	if err := p.WaitHolder(p.B, pair.VIP, 0); err != nil {
		t.Errorf("web after %s of maintenance: %v", settle, err)
	}
	if err := p.WaitHolder(p.B, vip2, 0); err != nil {
		t.Errorf("api after %s of maintenance: %v", settle, err)
	}
	for _, in := range statusAll(t, p, p.A).Instances {
		if in.State != "backup" {
			t.Errorf("A's %s is %s during maintenance, want backup", in.Name, in.State)
		}
	}

	start = time.Now()
	maint("off")
	must(t, p.WaitHolder(p.A, pair.VIP, 3*time.Second))
	must(t, p.WaitHolder(p.A, vip2, 3*time.Second))
	back := time.Since(start)
	var flaps uint64
	for k, v := range afterB {
		flaps += v - beforeB[k]
	}
	row.Figure = fmt.Sprintf("moved to B in %s; %d transitions on B in the %s after; back on A in %s after `off`", dur(moved), flaps, settle, dur(back))
}

// A reload that removes an instance whose notify hook is running does not
// stall the protocol: the master of another instance keeps advertising on
// time, and its peer does not take over. The loop used to wait for the
// hook (and the removed instance's "stopped" hook) before going on.
func TestReliabilityReloadDuringSlowHook(t *testing.T) {
	const hookRun = 3 * time.Second
	maxGap := 2 * interval
	p := newPair(t, "rrh")
	row := relRecord(t, "8a", "Reload while a notify hook runs",
		fmt.Sprintf("A master of web and db; db's notify hook runs %s on every change; SIGHUP to A with db removed while db's hook runs.", hookRun),
		fmt.Sprintf("the reload does not wait for the hook: web's adverts from A keep reaching the client, no gap over %s in the %s after the SIGHUP, and web has no transition on either node", dur(maxGap), hookRun+300*time.Millisecond))
	vip2 := netip.MustParseAddr("198.18.0.101")
	record := filepath.Join(p.Dir, "hook.log")
	hook := filepath.Join(p.Dir, "hook.sh")
	must(t, os.WriteFile(hook, []byte(fmt.Sprintf("#!/bin/sh\necho \"$VIPD_INSTANCE $VIPD_STATE\" >> %s\nsleep %d\n", record, int(hookRun.Seconds()))), 0o755))
	notify := fmt.Sprintf("    notify:\n      command: [%q]\n      timeout: 10s\n", hook)
	web := instanceYAML("web", 51, 150, pair.VIP.String(), "")
	nodeConfig(t, p, p.B, "", instanceYAML("web", 51, 100, pair.VIP.String(), ""), instanceYAML("db", 52, 100, vip2.String(), ""))
	nodeConfig(t, p, p.A, "", web, instanceYAML("db", 52, 150, vip2.String(), notify))
	must(t, p.Start(p.B))
	must(t, p.WaitHolder(p.B, pair.VIP, 3*time.Second))
	must(t, p.Start(p.A))
	must(t, p.WaitHolder(p.A, pair.VIP, 3*time.Second))
	must(t, p.WaitHolder(p.A, vip2, 3*time.Second))
	// db's hook for "master" has started: it runs for hookRun from now.
	deadline := time.Now().Add(3 * time.Second)
	for {
		b, _ := os.ReadFile(record)
		if strings.Contains(string(b), "db master") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("db's hook did not run for master: %q", b)
		}
		time.Sleep(5 * time.Millisecond)
	}
	w, err := p.Client.WatchAdverts()
	must(t, err)
	defer w.Stop()
	before := groupTransitions(t, p, p.A)
	beforeB := groupTransitions(t, p, p.B)

	nodeConfig(t, p, p.A, "", web)
	hup := time.Now()
	must(t, p.A.Proc.Signal(syscall.SIGHUP))
	time.Sleep(hookRun + 300*time.Millisecond)
	end := time.Now()

	srcA := netip.MustParsePrefix(pair.AddrA).Addr()
	var times []time.Time
	for _, a := range w.Adverts() {
		if a.Src == srcA && a.VRID == 51 && a.Priority > 0 && !a.Time.Before(hup) && a.Time.Before(end) {
			times = append(times, a.Time)
		}
	}
	var worst time.Duration
	prev := hup
	for _, at := range append(times, end) {
		worst = max(worst, at.Sub(prev))
		prev = at
	}
	row.Figure = fmt.Sprintf("%d adverts of web in %s after the SIGHUP, longest gap %s", len(times), dur(end.Sub(hup)), dur(worst))
	if worst > maxGap {
		t.Errorf("web's adverts stalled during the reload: longest gap %s, want ≤ %s", dur(worst), dur(maxGap))
	}
	after, afterB := groupTransitions(t, p, p.A), groupTransitions(t, p, p.B)
	for k, v := range after {
		if strings.HasPrefix(k, "web ") && v != before[k] {
			t.Errorf("A's web changed state during the reload: %s %d → %d", k, before[k], v)
		}
	}
	for k, v := range afterB {
		if strings.HasPrefix(k, "web ") && v != beforeB[k] {
			t.Errorf("B's web changed state during the reload: %s %d → %d", k, beforeB[k], v)
		}
	}
	if s := statusAll(t, p, p.A); len(s.Instances) != 1 || s.Instances[0].Name != "web" {
		t.Errorf("A runs %+v after the reload, want web alone", s.Instances)
	}
}
