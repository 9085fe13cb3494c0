package vrrp

import (
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vipd/vipd/config"
	"github.com/vipd/vipd/vip"
)

func TestSameInstanceIgnoresLines(t *testing.T) {
	a := config.Instance{Name: "web", Interface: "eth0", VRID: 51, Priority: 100, Version: 3, AdvertInterval: time.Second,
		VIPs: []config.VIP{{Address: netip.MustParsePrefix("198.18.0.100/32"), Line: 9}}, Line: 3}
	b := a
	b.Line = 30
	b.VIPs = []config.VIP{{Address: netip.MustParsePrefix("198.18.0.100/32"), Line: 40}}
	if !sameInstance(a, b) {
		t.Error("instances that differ only in line numbers are not the same")
	}
	if a.VIPs[0].Line != 9 || b.VIPs[0].Line != 40 {
		t.Error("sameInstance changed its arguments' VIP lines")
	}
	b.VIPs[0].Description = "new"
	if sameInstance(a, b) {
		t.Error("a changed VIP description went unnoticed")
	}
	c := a
	c.Priority = 101
	if sameInstance(a, c) || !sameSlot(a, c) {
		t.Error("a priority change must be an in-place update")
	}
	c.VRID = 52
	if sameSlot(a, c) {
		t.Error("a VRID change must replace the instance")
	}
}

// rldBusyInstance returns an instance name in backup on ifc whose notify
// hook (ntfRecordingHook in dir) is running the priority-0 event and
// blocks until dir/release exists, with the event of priority 7 queued
// behind it.
func rldBusyInstance(t *testing.T, n *Node, c config.Instance, ifc *iface, dir string) *instance {
	t.Helper()
	c.Notify = &config.Notify{Command: ntfRecordingHook(t, dir), Timeout: 30 * time.Second}
	in := newInstance(c, ifc)
	ifc.byVRID[c.VRID] = in
	ifc.insts = append(ifc.insts, in)
	n.insts = append(n.insts, in)
	in.notify = n.newNotifierFor(c)
	t.Cleanup(func() {
		ntfTouch(t, filepath.Join(dir, "release"))
		n.awaitHooks(10 * time.Second)
	})
	if in.m.Step(Event{Kind: EventStartup}, time.Now()); in.m.State() != StateBackup {
		t.Fatalf("state %v after start-up, want backup", in.m.State())
	}
	in.notify.Notify(NotifyEvent{Instance: c.Name, State: "backup", PreviousState: "stopped", Priority: 0})
	in.notify.Notify(NotifyEvent{Instance: c.Name, State: "backup", PreviousState: "stopped", Priority: 7})
	trkPoll(t, 3*time.Second, "the hook to start", func() bool { return ntfExists(filepath.Join(dir, "started")) })
	return in
}

// rldWithin runs f and fails unless it returns within d, while the hook in
// dir is still provably running (it cannot end before dir/release exists).
func rldWithin(t *testing.T, what string, d time.Duration, dir string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %s while a notify hook ran: the protocol loop waited on the hook", what, d)
	}
	if ntfExists(filepath.Join(dir, "release")) || slices.Contains(ntfHookLog(t, dir), 7) {
		t.Fatal("test set-up: the hook was not running throughout")
	}
}

// A reload that changes an instance's notify does not wait for the old
// hook: the events already queued for it still run, and the new hook's
// first run comes after them, so the instance's hooks stay in order.
func TestReloadNotifyChangeDoesNotWaitForHook(t *testing.T) {
	dir := t.TempDir()
	log, _ := trkNewLog()
	ifc := &iface{name: "eth0", index: 2, primary: netip.MustParseAddr("198.18.0.11"), up: true}
	n := &Node{log: log, cfg: &config.Config{File: "t.yaml"}}
	n.ifaces = []*iface{ifc}
	c := config.Instance{Name: "web", Interface: "eth0", VRID: 51, Priority: 100, Version: 3, AdvertInterval: time.Second,
		Preempt: true, VIPs: []config.VIP{{Address: netip.MustParsePrefix("198.18.0.100/32")}}}
	in := rldBusyInstance(t, n, c, ifc, dir)
	c2 := in.cfg
	c2.Notify = &config.Notify{Command: in.cfg.Notify.Command, Timeout: 20 * time.Second}
	rldWithin(t, "a reload changing notify", 2*time.Second, dir, func() { n.update(in, c2, nil, time.Now()) })
	if in.notify == nil || in.notify.spec.Timeout != 20*time.Second {
		t.Fatal("the new hook is not in place")
	}
	in.notify.Notify(NotifyEvent{Instance: "web", State: "master", PreviousState: "backup", Priority: 9})

	ntfTouch(t, filepath.Join(dir, "release"))
	n.retireNotifier(in.notify)
	n.awaitHooks(10 * time.Second)
	if diff := cmp.Diff([]int{0, 7, 9}, ntfHookLog(t, dir)); diff != "" {
		t.Errorf("hook runs (-want +got):\n%s", diff)
	}
}

// A reload that removes an instance does not wait for its hook either; its
// queued events, the "stopped" one included, still run.
func TestReloadRemoveDoesNotWaitForHook(t *testing.T) {
	addrs, err := vip.NewManager()
	if err != nil {
		t.Skipf("netlink: %v", err)
	}
	defer addrs.Close()
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Skipf("no loopback interface: %v", err)
	}
	dir := t.TempDir()
	log, _ := trkNewLog()
	ifc := &iface{name: "lo", index: lo.Index, primary: netip.MustParseAddr("127.0.0.1"), up: true}
	n := &Node{log: log, dp: &hostDataplane{addrs: addrs}}
	n.ifaces = []*iface{ifc}
	web := config.Instance{Name: "web", Interface: "lo", VRID: 51, Priority: 100, Version: 3, AdvertInterval: time.Second,
		Preempt: true, VIPs: []config.VIP{{Address: netip.MustParsePrefix("198.18.0.100/32")}}}
	db := web
	db.Name, db.VRID, db.VIPs = "db", 52, []config.VIP{{Address: netip.MustParsePrefix("198.18.0.101/32")}}
	w := newInstance(web, ifc)
	w.m.Step(Event{Kind: EventStartup}, time.Now())
	ifc.byVRID[51] = w
	ifc.insts = append(ifc.insts, w)
	n.insts = append(n.insts, w)
	rldBusyInstance(t, n, db, ifc, dir)
	n.cfg = &config.Config{File: "t.yaml", Instances: []config.Instance{web, n.insts[1].cfg}}

	var rerr error
	rldWithin(t, "a reload removing an instance", 2*time.Second, dir, func() {
		rerr = n.reload(&config.Config{File: "t.yaml", Instances: []config.Instance{web}}, time.Now())
	})
	if rerr != nil {
		t.Fatalf("reload: %v", rerr)
	}
	if len(n.insts) != 1 || n.insts[0] != w {
		t.Fatalf("instances after the reload: %d, want web alone", len(n.insts))
	}
	ntfTouch(t, filepath.Join(dir, "release"))
	n.awaitHooks(10 * time.Second)
	// 0 and 7 were queued; the removal's "stopped" event ran after them.
	if diff := cmp.Diff([]int{0, 7, 100}, ntfHookLog(t, dir)); diff != "" {
		t.Errorf("hook runs (-want +got):\n%s", diff)
	}
}
