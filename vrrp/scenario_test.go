package vrrp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/vip"
)

// Runtime scenarios on the simulated segment (sim_test.go): whole Nodes,
// with their reconciler, policy and loop handlers, and no root.

const scnVIP = "198.51.100.10"

// scnInstance is the YAML of one instance on eth0 with 100 ms adverts.
func scnInstance(name string, vrid, prio int, extra ...string) string {
	s := fmt.Sprintf(`  - name: %s
    interface: eth0
    vrid: %d
    priority: %d
    advert_interval: 100ms
    garp: {repeat: 2, interval: 1s}
`, name, vrid, prio)
	hasVIPs := false
	for _, e := range extra {
		s += "    " + e + "\n"
		hasVIPs = hasVIPs || strings.HasPrefix(e, "vips:")
	}
	if !hasVIPs {
		s += "    vips: [" + scnVIP + "]\n"
	}
	return s
}

func scnConfig(insts ...string) string { return "instances:\n" + strings.Join(insts, "") }

// scnPair starts hosts a (priority pa) and b (pb) with one instance, web,
// and runs them for four seconds: the gratuitous ARP repeats are over.
func scnPair(t *testing.T, pa, pb int, extra ...string) (*simNet, *simNode, *simNode) {
	s := newSimNet(t)
	a := s.host("a", "10.0.0.1")
	b := s.host("b", "10.0.0.2")
	a.start(s.config(scnConfig(scnInstance("web", 51, pa, extra...))))
	b.start(s.config(scnConfig(scnInstance("web", 51, pb, extra...))))
	s.run(4 * time.Second)
	return s, a, b
}

func scnHolders(t *testing.T, s *simNet, addr string, want ...string) {
	t.Helper()
	if got := s.holders(addr); !slices.Equal(got, want) {
		t.Fatalf("at %v: %s is on %v, want %v", s.now.Sub(simT0), addr, got, want)
	}
}

func TestScenarioElection(t *testing.T) {
	s, a, b := scnPair(t, 150, 100)
	a.expect("web", StateMaster)
	b.expect("web", StateBackup)
	scnHolders(t, s, scnVIP, "a")
	if s.announced(a, scnVIP, simT0) == 0 || s.announced(b, scnVIP, simT0) != 0 {
		t.Errorf("announcements: a %d, b %d; want a only", s.announced(a, scnVIP, simT0), s.announced(b, scnVIP, simT0))
	}
	if got := b.inst("web").m.MasterAddr(); got != a.primary {
		t.Errorf("b sees master %v, want %v", got, a.primary)
	}
}

func TestScenarioEqualPriorityHigherAddressWins(t *testing.T) {
	s, a, b := scnPair(t, 100, 100)
	a.expect("web", StateBackup)
	b.expect("web", StateMaster)
	scnHolders(t, s, scnVIP, "b")
}

func TestScenarioOwnerIsMasterAtOnce(t *testing.T) {
	s := newSimNet(t)
	a := s.host("a", "10.0.0.1")
	a.start(s.config(scnConfig(scnInstance("web", 51, 255))))
	a.expect("web", StateMaster)
	scnHolders(t, s, scnVIP, "a")
	if r := a.history[0].Reason; r != ReasonOwner {
		t.Errorf("reason %v, want address_owner", r)
	}
}

func TestScenarioPreemptHigherPriorityJoins(t *testing.T) {
	s := newSimNet(t)
	a := s.host("a", "10.0.0.1")
	b := s.host("b", "10.0.0.2")
	b.start(s.config(scnConfig(scnInstance("web", 51, 100))))
	s.run(time.Second)
	b.expect("web", StateMaster)
	joined := s.now
	a.start(s.config(scnConfig(scnInstance("web", 51, 150))))
	s.run(2 * time.Second)
	a.expect("web", StateMaster)
	b.expect("web", StateBackup)
	scnHolders(t, s, scnVIP, "a")
	mdi := MasterDownInterval(3, 150, 100*time.Millisecond)
	if took := a.became("web", StateMaster).Sub(joined); took < mdi || took > mdi+time.Millisecond {
		t.Errorf("a preempted %v after it started, want Master_Down_Interval %v", took, mdi)
	}
}

func TestScenarioNoPreempt(t *testing.T) {
	s := newSimNet(t)
	a := s.host("a", "10.0.0.1")
	b := s.host("b", "10.0.0.2")
	b.start(s.config(scnConfig(scnInstance("web", 51, 100))))
	s.run(time.Second)
	a.start(s.config(scnConfig(scnInstance("web", 51, 150, "preempt: false"))))
	s.run(3 * time.Second)
	a.expect("web", StateBackup)
	b.expect("web", StateMaster)
	scnHolders(t, s, scnVIP, "b")
}

func TestScenarioPreemptDelay(t *testing.T) {
	s := newSimNet(t)
	a := s.host("a", "10.0.0.1")
	b := s.host("b", "10.0.0.2")
	b.start(s.config(scnConfig(scnInstance("web", 51, 100))))
	s.run(time.Second)
	joined := s.now
	a.start(s.config(scnConfig(scnInstance("web", 51, 150, "preempt_delay: 2s"))))
	s.run(1900 * time.Millisecond)
	a.expect("web", StateBackup)
	s.run(time.Second)
	a.expect("web", StateMaster)
	b.expect("web", StateBackup)
	if took := a.became("web", StateMaster).Sub(joined); took < 2*time.Second {
		t.Errorf("a preempted %v after start, before its preempt_delay of 2s", took)
	}
	scnHolders(t, s, scnVIP, "a")
}

func TestScenarioSplitBrainHealReannounces(t *testing.T) {
	s := newSimNet(t)
	s.cut = true
	a := s.host("a", "10.0.0.1")
	b := s.host("b", "10.0.0.2")
	a.start(s.config(scnConfig(scnInstance("web", 51, 150))))
	b.start(s.config(scnConfig(scnInstance("web", 51, 100))))
	s.run(2 * time.Second)
	a.expect("web", StateMaster)
	b.expect("web", StateMaster)
	scnHolders(t, s, scnVIP, "a", "b")
	healed := s.now
	s.cut = false
	s.run(time.Second)
	a.expect("web", StateMaster)
	b.expect("web", StateBackup)
	scnHolders(t, s, scnVIP, "a")
	if s.announced(a, scnVIP, healed) == 0 {
		t.Error("the winner did not re-announce when the split brain healed")
	}
	if a.n.status().Instances[0].LowerMaster != nil {
		t.Error("a peer that yielded is reported as a lower-priority master")
	}
}

func TestScenarioLowerPriorityMasterBackoff(t *testing.T) {
	s, a, _ := scnPair(t, 150, 100)
	// A router that never accepts our adverts: it goes on advertising as
	// master at priority 50, every 100 ms, for 10 s.
	rogue := netip.MustParseAddr("10.0.0.9")
	ad := Advert{Version: 3, VRID: 51, Priority: 50, Interval: 100 * time.Millisecond, Addresses: []netip.Addr{netip.MustParseAddr(scnVIP)}}
	start := s.now
	for i := range 100 {
		s.inject(start.Add(time.Duration(i)*100*time.Millisecond), rogue, ad)
	}
	s.run(9950 * time.Millisecond)
	a.expect("web", StateMaster)
	lm := a.n.status().Instances[0].LowerMaster
	if lm == nil || lm.Addr != rogue || lm.Priority != 50 {
		t.Fatalf("status lower master %+v, want %v at 50", lm, rogue)
	}
	// Answers at 0, 0.1, 0.3, 0.7, 1.5, 3.1, 6.3 s: backing off, not one per advert.
	if lm.Adverts != 100 || lm.Answers != 7 {
		t.Errorf("%d answers to %d lower-ranked adverts, want 7 to 100 (backing off)", lm.Answers, lm.Adverts)
	}
	if n := s.announced(a, scnVIP, start); n < 7 || n > 25 {
		t.Errorf("%d announcements, want each answer's burst and no more", n)
	}
	if !a.logs.has("a peer keeps advertising as master at a lower priority") {
		t.Error("not logged")
	}
}

func TestScenarioGracefulStopHandsOver(t *testing.T) {
	s, a, b := scnPair(t, 150, 100)
	stopped := s.now
	a.stop()
	s.run(time.Second)
	b.expect("web", StateMaster)
	if a.running {
		t.Fatal("a did not finish stopping")
	}
	scnHolders(t, s, scnVIP, "b")
	added, removed := b.lastAddrChange(scnVIP, true), a.lastAddrChange(scnVIP, false)
	if removed.Before(added) {
		t.Errorf("a removed the VIP %v before b added it: break before make", added.Sub(removed))
	}
	if gap := removed.Sub(added); gap > time.Millisecond {
		t.Errorf("the VIP was on both for %v, want only until a hears b", gap)
	}
	if took := added.Sub(stopped); took > SkewTime(3, 100, 100*time.Millisecond)+time.Millisecond {
		t.Errorf("b took over %v after the stop, want Skew_Time", took)
	}
	if !a.logs.has("VIPs handed over") {
		t.Error("hand-over not logged")
	}
}

func TestScenarioStopWithoutSuccessorTimesOut(t *testing.T) {
	s := newSimNet(t)
	a := s.host("a", "10.0.0.1")
	a.start(s.config(scnConfig(scnInstance("web", 51, 150))))
	s.run(time.Second)
	a.expect("web", StateMaster)
	stopped := s.now
	a.stop()
	s.run(time.Second)
	if a.running {
		t.Fatal("a did not finish stopping")
	}
	scnHolders(t, s, scnVIP)
	if took := a.lastAddrChange(scnVIP, false).Sub(stopped); took != 100*time.Millisecond+handoverMargin {
		t.Errorf("VIP removed %v after the stop, want the advert interval and %v", took, handoverMargin)
	}
	if !a.logs.has("no router took over") {
		t.Error("time-out not logged")
	}
}

func TestScenarioKillTakeoverAtMasterDown(t *testing.T) {
	s, a, b := scnPair(t, 150, 100)
	lastSend := a.inst("web").m.Deadline().Add(-100 * time.Millisecond)
	a.kill()
	s.run(2 * time.Second)
	b.expect("web", StateMaster)
	// The last advert reached b one delay after a sent it; b takes over
	// exactly Master_Down_Interval later (awaitTakeover), not a timer
	// wake-up after.
	want := lastSend.Add(simDelay).Add(MasterDownInterval(3, 100, 100*time.Millisecond))
	if got := b.became("web", StateMaster); !got.Equal(want) {
		t.Errorf("b took over %v after the last advert's Master_Down_Interval", got.Sub(want))
	}
	if got := b.lastAddrChange(scnVIP, true); !got.Equal(want) {
		t.Errorf("b added the VIP %v after the deadline", got.Sub(want))
	}
	if s.announced(b, scnVIP, want) == 0 {
		t.Error("b did not announce")
	}
	scnHolders(t, s, scnVIP, "a", "b") // a was killed: its address stays
}

func TestScenarioPriorityZeroSkewTime(t *testing.T) {
	s, a, b := scnPair(t, 150, 100)
	a.stop()
	resignArrived := s.now.Add(simDelay)
	s.run(time.Second)
	if took := b.became("web", StateMaster).Sub(resignArrived); took != SkewTime(3, 100, 100*time.Millisecond) {
		t.Errorf("b took over %v after the priority-0 advert, want Skew_Time %v", took, SkewTime(3, 100, 100*time.Millisecond))
	}
	if b.inst("web").count.PriorityZeroReceived != 1 {
		t.Errorf("priority-0 adverts received: %d", b.inst("web").count.PriorityZeroReceived)
	}
}

func TestScenarioV2Timers(t *testing.T) {
	s := newSimNet(t)
	a := s.host("a", "10.0.0.1")
	b := s.host("b", "10.0.0.2")
	yaml := func(prio int) string {
		return scnConfig(strings.Replace(scnInstance("web", 51, prio, "version: 2"), "advert_interval: 100ms", "advert_interval: 1s", 1))
	}
	a.start(s.config(yaml(150)))
	b.start(s.config(yaml(100)))
	s.run(5 * time.Second)
	a.expect("web", StateMaster)
	lastSend := a.inst("web").m.Deadline().Add(-time.Second)
	a.kill()
	s.run(5 * time.Second)
	b.expect("web", StateMaster)
	want := 3*time.Second + time.Duration(156)*time.Second/256
	if took := b.became("web", StateMaster).Sub(lastSend.Add(simDelay)); took != want {
		t.Errorf("v2 backup took over %v after the last advert, want 3 s + (256-100)/256 s = %v", took, want)
	}
}

func TestScenarioReloadUnchangedKeepsState(t *testing.T) {
	s, a, _ := scnPair(t, 150, 100)
	before := len(a.history)
	since := s.now
	if err := a.n.reload(s.config(scnConfig(scnInstance("web", 51, 150))), s.now); err != nil {
		t.Fatal(err)
	}
	a.after()
	s.run(time.Second)
	a.expect("web", StateMaster)
	if len(a.history) != before || s.announced(a, scnVIP, since) != 0 || a.lastAddrChange(scnVIP, true).After(since) {
		t.Error("an unchanged reload caused a transition, an announcement or an address change")
	}
}

func TestScenarioReloadPriorityChange(t *testing.T) {
	s, a, b := scnPair(t, 150, 100)
	if err := b.n.reload(s.config(scnConfig(scnInstance("web", 51, 200))), s.now); err != nil {
		t.Fatal(err)
	}
	b.after()
	s.run(time.Second)
	b.expect("web", StateMaster)
	a.expect("web", StateBackup)
	scnHolders(t, s, scnVIP, "b")
}

func TestScenarioReloadVIPAddedOnMaster(t *testing.T) {
	s, a, b := scnPair(t, 150, 100)
	since := s.now
	two := "vips: [" + scnVIP + ", 198.51.100.11]"
	if err := a.n.reload(s.config(scnConfig(scnInstance("web", 51, 150, two))), s.now); err != nil {
		t.Fatal(err)
	}
	a.after()
	s.run(time.Second)
	a.expect("web", StateMaster)
	b.expect("web", StateBackup)
	scnHolders(t, s, "198.51.100.11", "a")
	if n := s.announced(a, "198.51.100.11", since); n != 1 {
		t.Errorf("new VIP announced %d times, want once", n)
	}
	if s.announced(a, scnVIP, since) != 0 {
		t.Error("the unchanged VIP was announced again")
	}
}

func TestScenarioReloadVIPRemovedOnMaster(t *testing.T) {
	two := "vips: [" + scnVIP + ", 198.51.100.11]"
	s, a, _ := scnPair(t, 150, 100, two)
	scnHolders(t, s, "198.51.100.11", "a")
	if err := a.n.reload(s.config(scnConfig(scnInstance("web", 51, 150))), s.now); err != nil {
		t.Fatal(err)
	}
	a.after()
	s.run(time.Second)
	a.expect("web", StateMaster)
	scnHolders(t, s, "198.51.100.11")
	scnHolders(t, s, scnVIP, "a")
}

func TestScenarioReloadInstanceAdded(t *testing.T) {
	s, a, _ := scnPair(t, 150, 100)
	cfg := s.config(scnConfig(scnInstance("web", 51, 150), scnInstance("api", 52, 150, "vips: [198.51.100.20]")))
	if err := a.n.reload(cfg, s.now); err != nil {
		t.Fatal(err)
	}
	a.after()
	a.expect("api", StateBackup)
	s.run(time.Second)
	a.expect("api", StateMaster)
	a.expect("web", StateMaster)
	scnHolders(t, s, "198.51.100.20", "a")
}

func TestScenarioReloadInstanceRemoved(t *testing.T) {
	s, a, b := scnPair(t, 150, 100)
	other := scnInstance("api", 52, 150, "vips: [198.51.100.20]")
	if err := a.n.reload(s.config(scnConfig(other)), s.now); err != nil {
		t.Fatal(err)
	}
	a.after()
	scnHolders(t, s, scnVIP) // resigned: gone at once, b takes over after Skew_Time
	s.run(time.Second)
	b.expect("web", StateMaster)
	scnHolders(t, s, scnVIP, "b")
	if len(a.n.insts) != 1 || a.n.insts[0].cfg.Name != "api" {
		t.Fatalf("a runs %d instances, want api alone", len(a.n.insts))
	}
	if took := b.became("web", StateMaster).Sub(a.lastAddrChange(scnVIP, false)); took > SkewTime(3, 100, 100*time.Millisecond)+time.Millisecond {
		t.Errorf("b took over %v after the removal, want Skew_Time (the removed master resigns)", took)
	}
}

func TestScenarioReloadNotifyChanged(t *testing.T) {
	s, a, _ := scnPair(t, 150, 100)
	t.Cleanup(func() { a.n.awaitHooks(5 * time.Second) })
	dir := t.TempDir()
	out := filepath.Join(dir, "ran")
	script := filepath.Join(dir, "hook.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$VIPD_STATE\" >> "+out+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	before := len(a.history)
	notify := fmt.Sprintf(`notify: {command: [%q]}`, script)
	if err := a.n.reload(s.config(scnConfig(scnInstance("web", 51, 150, notify))), s.now); err != nil {
		t.Fatal(err)
	}
	a.after()
	if a.inst("web").notify == nil {
		t.Fatal("the hook is not in place")
	}
	a.expect("web", StateMaster)
	if len(a.history) != before {
		t.Error("changing notify caused a transition")
	}
	a.stop()
	s.run(time.Second)
	a.n.awaitHooks(5 * time.Second)
	b, err := os.ReadFile(out)
	if err != nil || strings.TrimSpace(string(b)) != "stopped" {
		t.Errorf("the new hook ran with %q (%v), want the stop", b, err)
	}
}

func TestScenarioReloadVRIDChangeIsRemoveAndAdd(t *testing.T) {
	s, a, _ := scnPair(t, 150, 100)
	if err := a.n.reload(s.config(scnConfig(scnInstance("web", 52, 150))), s.now); err != nil {
		t.Fatal(err)
	}
	a.after()
	in := a.inst("web")
	if in.cfg.VRID != 52 || in.m.State() != StateBackup {
		t.Fatalf("after the reload: vrid %d state %v, want a new instance on 52 in backup", in.cfg.VRID, in.m.State())
	}
	if got := a.history[len(a.history)-2]; got.To != StateInit || got.Reason != ReasonShutdown || got.VRID != 51 {
		t.Errorf("the old instance's last transition %+v, want a shutdown", got)
	}
	s.run(time.Second)
	a.expect("web", StateMaster) // alone on VRID 52
}

func TestScenarioReloadInterfaceChangeIsRemoveAndAdd(t *testing.T) {
	s, a, b := scnPair(t, 150, 100)
	moved := strings.Replace(scnInstance("web", 51, 150, "vips: [198.51.100.30]"), "interface: eth0", "interface: eth1", 1)
	if err := a.n.reload(s.config(scnConfig(moved)), s.now); err != nil {
		t.Fatal(err)
	}
	a.after()
	scnHolders(t, s, scnVIP) // the old instance resigned and removed it
	if in := a.inst("web"); in.ifc.name != "eth1" || in.m.State() != StateBackup {
		t.Fatalf("after the reload: on %s in %v, want eth1 in backup", in.ifc.name, in.m.State())
	}
	s.run(time.Second)
	b.expect("web", StateMaster)
	a.expect("web", StateMaster)
	if !slices.ContainsFunc(a.addrs[3], func(x vip.Addr) bool { return x.Prefix.Addr().String() == "198.51.100.30" }) {
		t.Error("the moved instance's VIP is not on eth1")
	}
	if len(a.n.ifaces) != 1 || a.n.ifaces[0].name != "eth1" {
		t.Error("eth0 is still open without instances")
	}
}

func TestScenarioReloadInvalidChangesNothing(t *testing.T) {
	s, a, _ := scnPair(t, 150, 100)
	bad := strings.Replace(scnInstance("web", 51, 200), "interface: eth0", "interface: eth9", 1)
	err := a.n.reload(s.config(scnConfig(bad, scnInstance("api", 52, 150, "vips: [198.51.100.20]"))), s.now)
	if err == nil || !strings.Contains(err.Error(), "eth9") {
		t.Fatalf("reload: %v, want an error naming eth9", err)
	}
	s.run(time.Second)
	a.expect("web", StateMaster)
	if len(a.n.insts) != 1 || a.inst("web").m.Config().Priority != 150 {
		t.Error("the failed reload changed the instances")
	}
	if st := a.n.status(); st.ReloadOK || st.ReloadErrors != 1 {
		t.Errorf("status: reload ok %v errors %d", st.ReloadOK, st.ReloadErrors)
	}
	scnHolders(t, s, "198.51.100.20")
}

// scnGroup starts hosts a (150) and b (100), each with web and api in sync
// group edge; api is on eth1 on both, and a's api tracks eth2 if track.
func scnGroup(t *testing.T, apiExtra ...string) (*simNet, *simNode, *simNode) {
	s := newSimNet(t)
	a := s.host("a", "10.0.0.1")
	b := s.host("b", "10.0.0.2")
	for _, h := range []*simNode{a, b} {
		h.links["eth2"] = &LinkInfo{Name: "eth2", Index: 4, Up: true}
	}
	cfg := func(prio int, extra []string) string {
		api := strings.Replace(scnInstance("api", 52, prio, append(extra, "vips: [198.51.100.20]")...), "interface: eth0", "interface: eth1", 1)
		return "sync_groups:\n  - name: edge\n    instances: [web, api]\n" + scnConfig(scnInstance("web", 51, prio), api)
	}
	a.start(s.config(cfg(150, apiExtra)))
	b.start(s.config(cfg(100, nil)))
	s.run(2 * time.Second)
	a.expect("web", StateMaster)
	a.expect("api", StateMaster)
	return s, a, b
}

func TestScenarioSyncGroupTrackerFault(t *testing.T) {
	s, a, b := scnGroup(t, "track: {interfaces: [{name: eth2, weight: 0}]}")
	a.setLink("eth2", false, nil)
	s.run(time.Second)
	a.expect("api", StateFault)
	a.expect("web", StateBackup)
	if !a.inst("web").m.Held() {
		t.Error("web is not held while its group member is in fault")
	}
	b.expect("web", StateMaster)
	b.expect("api", StateMaster)
	scnHolders(t, s, scnVIP, "b")
	a.setLink("eth2", true, nil)
	s.run(2 * time.Second)
	a.expect("web", StateMaster)
	a.expect("api", StateMaster)
	b.expect("web", StateBackup)
}

func TestScenarioSyncGroupMemberLinkFault(t *testing.T) {
	s, a, b := scnGroup(t)
	a.setLink("eth1", false, nil)
	s.run(time.Second)
	a.expect("api", StateFault)
	a.expect("web", StateBackup)
	b.expect("web", StateMaster)
	scnHolders(t, s, scnVIP, "b")
	scnHolders(t, s, "198.51.100.20", "b")
}

func TestScenarioSyncGroupMaintenance(t *testing.T) {
	s, a, b := scnGroup(t)
	if r := a.n.setMaintenance(maintReq{instance: "web", on: true}, s.now); r.err != nil {
		t.Fatal(r.err)
	}
	a.after()
	s.run(2 * time.Second)
	a.expect("web", StateBackup)
	a.expect("api", StateBackup)
	b.expect("web", StateMaster)
	b.expect("api", StateMaster)
	if !a.inst("api").m.Held() {
		t.Error("api not held while web is in maintenance")
	}
	if r := a.n.setMaintenance(maintReq{instance: "web", on: false}, s.now); r.err != nil {
		t.Fatal(r.err)
	}
	a.after()
	s.run(2 * time.Second)
	a.expect("web", StateMaster)
	a.expect("api", StateMaster)
}

func TestScenarioMaintenanceOnOff(t *testing.T) {
	s, a, b := scnPair(t, 150, 100)
	if r := a.n.setMaintenance(maintReq{instance: "web", on: true}, s.now); r.err != nil {
		t.Fatal(r.err)
	}
	a.after()
	s.run(time.Second)
	a.expect("web", StateBackup)
	b.expect("web", StateMaster)
	scnHolders(t, s, scnVIP, "b")
	s.run(5 * time.Second)
	a.expect("web", StateBackup) // held: never takes over
	if r := a.n.setMaintenance(maintReq{instance: "web", on: false}, s.now); r.err != nil {
		t.Fatal(r.err)
	}
	a.after()
	s.run(time.Second)
	a.expect("web", StateMaster)
	scnHolders(t, s, scnVIP, "a")
	if r := a.n.setMaintenance(maintReq{instance: "nope", on: true}, s.now); !errors.Is(r.err, ErrNoInstance) {
		t.Errorf("maintenance of an unknown instance: %v", r.err)
	}
}

func TestScenarioMaintenancePersists(t *testing.T) {
	s := newSimNet(t)
	a := s.host("a", "10.0.0.1")
	cfg := s.config(scnConfig(scnInstance("web", 51, 150)))
	a.start(cfg)
	s.run(time.Second)
	r := a.n.setMaintenance(maintReq{instance: "web", on: true}, s.now)
	if r.err != nil {
		t.Fatal(r.err)
	}
	a.after()
	// The writer saves off the loop; run it until the change is saved.
	ctx, cancel := contextWithTimeout(5 * time.Second)
	defer cancel()
	go a.n.maint.run(ctx)
	if err := a.n.maint.wait(ctx, r.seq); err != nil {
		t.Fatal(err)
	}
	a.expect("web", StateBackup)
	a.stop()
	s.run(time.Second)
	scnHolders(t, s, scnVIP)
	// Restarted, it is still in maintenance, and never takes over.
	a.start(cfg)
	s.run(3 * time.Second)
	a.expect("web", StateBackup)
	if st := a.n.status().Instances[0]; !st.Maintenance || !st.Held {
		t.Errorf("after a restart: maintenance %v held %v, want both", st.Maintenance, st.Held)
	}
}

func TestScenarioVIPRemovedBehindBackRestored(t *testing.T) {
	s, a, _ := scnPair(t, 150, 100)
	since := s.now
	a.removeBehindBack(scnVIP)
	s.run(100 * time.Millisecond)
	scnHolders(t, s, scnVIP, "a")
	in := a.n.status().Instances[0]
	if in.Counters.VIPsRestored != 1 || !in.VIPs[0].Present {
		t.Errorf("restored %d, present %v", in.Counters.VIPsRestored, in.VIPs[0].Present)
	}
	if s.announced(a, scnVIP, since) == 0 {
		t.Error("the restored VIP was not announced")
	}
}

func TestScenarioVIPRemovedOnBackupLeftAlone(t *testing.T) {
	s, a, b := scnPair(t, 150, 100)
	before := b.adds[netip.MustParsePrefix(scnVIP+"/32")]
	a.removeBehindBack("10.0.0.1") // not a VIP: the primary goes
	b.events = append(b.events, vip.Change{Index: 2, Addr: netip.MustParseAddr(scnVIP)})
	s.run(100 * time.Millisecond)
	scnHolders(t, s, scnVIP, "a")
	if b.adds[netip.MustParsePrefix(scnVIP+"/32")] != before {
		t.Error("a backup added the VIP on an address event")
	}
}

func TestScenarioVIPAddFailsRetriedNotAnnounced(t *testing.T) {
	s := newSimNet(t)
	a := s.host("a", "10.0.0.1")
	bad := netip.MustParsePrefix("198.51.100.11/32")
	a.failAdd[bad] = errors.New("injected failure")
	a.start(s.config(scnConfig(scnInstance("web", 51, 150, "vips: ["+scnVIP+", 198.51.100.11]"))))
	s.run(time.Second)
	a.expect("web", StateMaster)
	took := a.became("web", StateMaster)
	s.runUntil(took.Add(time.Second))
	// Adds at 0, 0.1, 0.3, 0.7 s after the takeover.
	if n := a.adds[bad]; n != 4 {
		t.Errorf("%d adds of the failing VIP in 1 s, want 4 (back-off from 100 ms, doubling)", n)
	}
	st := a.n.status().Instances[0]
	if v := st.VIPs[1]; v.Present || !strings.Contains(v.AddError, "injected failure") || v.AddFailures != 4 {
		t.Errorf("failing VIP status %+v", v)
	}
	if s.announced(a, "198.51.100.11", simT0) != 0 {
		t.Error("the VIP that is not on the interface was announced")
	}
	if s.announced(a, scnVIP, simT0) == 0 {
		t.Error("the good VIP was not announced")
	}
	delete(a.failAdd, bad)
	s.run(2 * time.Second)
	scnHolders(t, s, "198.51.100.11", "a")
	if s.announced(a, "198.51.100.11", simT0) == 0 {
		t.Error("the VIP was not announced once added")
	}
	if v := a.n.status().Instances[0].VIPs[1]; !v.Present || v.AddError != "" {
		t.Errorf("after the add succeeded: %+v", v)
	}
}

func TestScenarioLinkFlap(t *testing.T) {
	s, a, b := scnPair(t, 150, 100)
	a.setLink("eth0", false, nil)
	a.expect("web", StateFault)
	scnHolders(t, s, scnVIP)
	s.run(time.Second)
	b.expect("web", StateMaster)
	scnHolders(t, s, scnVIP, "b")
	a.setLink("eth0", true, nil)
	a.expect("web", StateBackup)
	s.run(time.Second)
	a.expect("web", StateMaster)
	b.expect("web", StateBackup)
	scnHolders(t, s, scnVIP, "a")
	if a.open["eth0"] == nil || a.open["eth0"].closed {
		t.Error("the link was not opened again")
	}
}

func TestScenarioMACChangeReannounces(t *testing.T) {
	s, a, _ := scnPair(t, 150, 100)
	since := s.now
	mac := simMAC(77)
	a.setLink("eth0", true, mac)
	if s.announced(a, scnVIP, since) != 1 {
		t.Fatalf("%d announcements after the MAC change, want 1", s.announced(a, scnVIP, since))
	}
	if got := s.anns[len(s.anns)-1].mac; got != mac.String() {
		t.Errorf("announced from %s, want the new MAC %s", got, mac)
	}
}

func TestScenarioStaleVIPCleanedAtStart(t *testing.T) {
	s := newSimNet(t)
	a := s.host("a", "10.0.0.1")
	a.addrs[2] = append(a.addrs[2], vip.Addr{Prefix: netip.MustParsePrefix(scnVIP + "/32"), Proto: vip.Proto, Owned: true})
	if err := a.create(s.config(scnConfig(scnInstance("web", 51, 100)))); err != nil {
		t.Fatal(err)
	}
	scnHolders(t, s, scnVIP)
	if !a.logs.has("removing stale VIP") {
		t.Error("not logged")
	}
}

func TestScenarioForeignAddressRefused(t *testing.T) {
	s := newSimNet(t)
	a := s.host("a", "10.0.0.1")
	a.addrs[2] = append(a.addrs[2], vip.Addr{Prefix: netip.MustParsePrefix(scnVIP + "/32")})
	err := a.create(s.config(scnConfig(scnInstance("web", 51, 100))))
	if err == nil || !strings.Contains(err.Error(), "without vipd's mark") {
		t.Fatalf("start: %v, want a refusal", err)
	}
	scnHolders(t, s, scnVIP, "a") // left as it was
	// The same address with another prefix length is the host's own.
	a.addrs[2][1].Prefix = netip.MustParsePrefix(scnVIP + "/24")
	if err := a.create(s.config(scnConfig(scnInstance("web", 51, 100)))); err == nil || !strings.Contains(err.Error(), "own address") {
		t.Fatalf("start: %v, want a refusal", err)
	}
}

func TestScenarioForeignAddressRefusedByReload(t *testing.T) {
	s, a, _ := scnPair(t, 150, 100)
	a.addrs[2] = append(a.addrs[2], vip.Addr{Prefix: netip.MustParsePrefix("198.51.100.40/32")})
	err := a.n.reload(s.config(scnConfig(scnInstance("web", 51, 150, "vips: ["+scnVIP+", 198.51.100.40]"))), s.now)
	if err == nil || !strings.Contains(err.Error(), "without vipd's mark") {
		t.Fatalf("reload: %v, want a refusal", err)
	}
	if len(a.inst("web").vs) != 1 {
		t.Error("the refused reload changed the VIPs")
	}
}

func TestScenarioUnicastPeers(t *testing.T) {
	s := newSimNet(t)
	a := s.host("a", "10.0.0.1")
	b := s.host("b", "10.0.0.2")
	a.start(s.config(scnConfig(scnInstance("web", 51, 150, "unicast_peers: [10.0.0.2]"))))
	b.start(s.config(scnConfig(scnInstance("web", 51, 100, "unicast_peers: [10.0.0.1]"))))
	s.run(2 * time.Second)
	a.expect("web", StateMaster)
	b.expect("web", StateBackup)
	// A router that is not a peer is dropped.
	s.inject(s.now, netip.MustParseAddr("10.0.0.9"), Advert{Version: 3, VRID: 51, Priority: 250, Interval: 100 * time.Millisecond,
		Addresses: []netip.Addr{netip.MustParseAddr(scnVIP)}})
	s.run(time.Second)
	a.expect("web", StateMaster)
	if a.inst("web").count.Dropped[DropNotPeer] != 1 {
		t.Errorf("dropped as not a peer: %d", a.inst("web").count.Dropped[DropNotPeer])
	}
}

func TestScenarioTrackedPriorityPreempts(t *testing.T) {
	s := newSimNet(t)
	a := s.host("a", "10.0.0.1")
	b := s.host("b", "10.0.0.2")
	a.links["eth2"] = &LinkInfo{Name: "eth2", Index: 4, Up: true}
	a.start(s.config(scnConfig(scnInstance("web", 51, 150, "track: {interfaces: [{name: eth2, weight: -100}]}"))))
	b.start(s.config(scnConfig(scnInstance("web", 51, 100))))
	s.run(2 * time.Second)
	a.expect("web", StateMaster)
	a.setLink("eth2", false, nil)
	s.run(time.Second)
	b.expect("web", StateMaster)
	a.expect("web", StateBackup)
	if p := a.inst("web").m.Config().Priority; p != 50 {
		t.Errorf("effective priority %d, want 50", p)
	}
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// Every decision of the machines goes through Step: the events a Node fed
// an instance's machine, replayed into a fresh Machine, give the same
// answers and leave it in the same state.
func TestScenarioEventTraceReplays(t *testing.T) {
	type rec struct {
		ev  Event
		cfg MachineConfig
		now time.Time
		out Output
	}
	s := newSimNet(t)
	a := s.host("a", "10.0.0.1")
	b := s.host("b", "10.0.0.2")
	if err := a.create(s.config(scnConfig(scnInstance("web", 51, 150)))); err != nil {
		t.Fatal(err)
	}
	initial := a.inst("web").machineConfig()
	var trace []rec
	a.n.trace = func(inst string, ev Event, now time.Time, out Output) {
		r := rec{ev: ev, now: now, out: out}
		if ev.Config != nil {
			r.cfg = *ev.Config
		}
		trace = append(trace, r)
	}
	a.run()
	b.start(s.config(scnConfig(scnInstance("web", 51, 100))))
	s.run(2 * time.Second)
	s.cut = true
	s.run(time.Second)
	s.cut = false
	s.run(time.Second)
	a.n.setMaintenance(maintReq{instance: "web", on: true}, s.now)
	a.after()
	s.run(time.Second)
	a.n.setMaintenance(maintReq{instance: "web", on: false}, s.now)
	a.after()
	s.run(time.Second)
	if err := a.n.reload(s.config(scnConfig(scnInstance("web", 51, 90))), s.now); err != nil {
		t.Fatal(err)
	}
	a.after()
	s.run(time.Second)
	a.expect("web", StateBackup)
	a.stop()
	s.run(time.Second)
	if !slices.ContainsFunc(trace, func(r rec) bool { return r.ev.Kind == EventReconfigure }) ||
		!slices.ContainsFunc(trace, func(r rec) bool { return r.ev.Kind == EventHold }) {
		t.Fatal("the trace lacks the reconfiguration or the hold")
	}
	if len(trace) < 20 {
		t.Fatalf("only %d events traced", len(trace))
	}
	m := NewMachine(initial)
	for i, r := range trace {
		ev := r.ev
		if ev.Config != nil {
			ev.Config = &r.cfg
		}
		if out := m.Step(ev, r.now); out != r.out {
			t.Fatalf("event %d (%+v at %v): replay answered %+v, the Node's machine %+v", i, r.ev, r.now.Sub(simT0), out, r.out)
		}
	}
	if live := a.inst("web").m; m.State() != live.State() || m.LastChange() != live.LastChange() {
		t.Errorf("replayed machine ends in %v (%v), the Node's in %v (%v)", m.State(), m.LastChange(), live.State(), live.LastChange())
	}
}

// scnProcFeed scans the fake proc tree p for instance web of host h at the
// simulation's time and hands the results to h's loop, as the tracker
// goroutine would through trackCh.
func scnProcFeed(s *simNet, h *simNode, p *fakeProc) func() {
	w := newProcWatch("web", p.root, h.inst("web").cfg.Track.Processes)
	return func() {
		rs, err := w.poll(s.now)
		if err != nil {
			s.t.Fatal(err)
		}
		for _, r := range rs {
			h.n.onTrackResult(r, s.now)
		}
		h.after()
	}
}

// A process tracker whose process exits lowers the master's priority,
// after its delay, and the backup takes over; the process back, the
// master preempts again.
func TestScenarioProcessTrackerWeight(t *testing.T) {
	p := newFakeProc(t)
	p.proc(4242, "sleep", 'S', "/usr/bin/sleep", "sleep", "3600")
	s, a, b := scnPair(t, 150, 100, "track: {processes: [{name: sl, process: /usr/bin/sleep, args: ['3600'], delay: 2s, weight: -100}]}")
	feed := scnProcFeed(s, a, p)
	feed()
	a.expect("web", StateMaster)
	p.remove(4242)
	for range 2 { // scans 0 and 1s after the exit; at 2s the delay has passed
		feed()
		a.expect("web", StateMaster)
		if p := a.inst("web").m.Config().Priority; p != 150 {
			t.Fatalf("at %v: effective priority %d before the delay passed", s.now.Sub(simT0), p)
		}
		s.run(time.Second)
	}
	feed()
	if p := a.inst("web").m.Config().Priority; p != 50 {
		t.Fatalf("effective priority %d, want 50", p)
	}
	s.run(time.Second)
	b.expect("web", StateMaster)
	a.expect("web", StateBackup)
	scnHolders(t, s, scnVIP, "b")
	st := a.n.status().Instances[0].Trackers
	if len(st) != 1 || st[0] != (TrackerStatus{Kind: "process", Name: "sl", Failing: true, Value: 0, Weight: -100}) {
		t.Errorf("status trackers %+v", st)
	}

	p.proc(4243, "sleep", 'S', "/usr/bin/sleep", "sleep", "3600")
	feed()
	s.run(2 * time.Second)
	feed()
	s.run(time.Second)
	a.expect("web", StateMaster)
	b.expect("web", StateBackup)
	scnHolders(t, s, scnVIP, "a")
	if st := a.n.status().Instances[0].Trackers; st[0].Failing || st[0].Value != 1 {
		t.Errorf("status trackers %+v", st)
	}
}

// A weight-0 process tracker down is fault, at once without a delay.
func TestScenarioProcessTrackerFault(t *testing.T) {
	p := newFakeProc(t)
	p.proc(10, "haproxy", 'S', "/usr/sbin/haproxy", "haproxy")
	p.proc(11, "haproxy", 'S', "/usr/sbin/haproxy", "haproxy")
	s, a, b := scnPair(t, 150, 100, "track: {processes: [{name: lb, process: haproxy, quorum: 2}]}")
	feed := scnProcFeed(s, a, p)
	feed()
	a.expect("web", StateMaster)
	p.remove(11)
	feed()
	a.expect("web", StateFault)
	s.run(time.Second)
	b.expect("web", StateMaster)
	scnHolders(t, s, scnVIP, "b")
	p.proc(12, "haproxy", 'S', "/usr/sbin/haproxy", "haproxy")
	feed()
	s.run(time.Second)
	a.expect("web", StateMaster)
	scnHolders(t, s, scnVIP, "a")
}

// track.own_interface: false (keepalived's dont_track_primary): carrier
// loss on the instance's own interface is no fault. The master stays
// master, with its VIPs; the backup, hearing nothing, becomes master too;
// once the carrier is back the higher priority wins and the backup
// returns. Without the setting the same flap is fault (TestScenarioLinkFlap).
func TestScenarioOwnInterfaceUntracked(t *testing.T) {
	s, a, b := scnPair(t, 150, 100, "track: {own_interface: false}")
	a.setLink("eth0", false, nil)
	a.expect("web", StateMaster)
	s.run(time.Second)
	a.expect("web", StateMaster)
	b.expect("web", StateMaster)
	if !a.has(scnVIP) {
		t.Error("the master without carrier removed its VIP")
	}
	a.setLink("eth0", true, nil)
	s.run(time.Second)
	a.expect("web", StateMaster)
	b.expect("web", StateBackup)
	scnHolders(t, s, scnVIP, "a")
	for _, te := range a.history {
		if te.To == StateFault {
			t.Errorf("a entered fault: %+v", te)
		}
	}
}
