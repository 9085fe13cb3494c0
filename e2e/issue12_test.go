package e2e

import (
	"fmt"
	"maps"
	"net/netip"
	"os/exec"
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
	row := relRecord(t, "12-2", "Maintenance on one member of a sync group",
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
