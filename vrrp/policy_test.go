package vrrp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/vipd/vipd/config"
)

func TestEffectivePriority(t *testing.T) {
	for _, tc := range []struct {
		configured uint8
		weights    int
		want       uint8
	}{
		{100, 0, 100}, {100, -60, 40}, {100, -200, 1}, {100, 200, 254},
		{255, 0, 255}, {255, -1, 254}, {255, 10, 254}, {1, -5, 1},
	} {
		if got := effectivePriority(tc.configured, tc.weights); got != tc.want {
			t.Errorf("effectivePriority(%d, %d) = %d, want %d", tc.configured, tc.weights, got, tc.want)
		}
	}
}

func TestWeights(t *testing.T) {
	in := &instance{cfg: config.Instance{Track: config.Track{
		Interfaces: []config.TrackInterface{{Name: "eth1", Weight: -20}, {Name: "eth2", Weight: 0}},
		Scripts:    []config.TrackScript{{Name: "haproxy", Weight: -60}, {Name: "db", Weight: 0}},
		Files:      []config.TrackFile{{Path: "/run/w", Weight: 2}, {Path: "/run/f", Weight: 0}},
		Processes:  []config.TrackProcess{{Name: "haproxy", Weight: -15}, {Name: "sshd", Weight: 0}},
	}}, track: newTrackState()}
	check := func(what string, wantSum int, wantFault bool) {
		t.Helper()
		if sum, fault := in.weights(); sum != wantSum || fault != wantFault {
			t.Errorf("%s: weights %d fault %v, want %d %v", what, sum, fault, wantSum, wantFault)
		}
	}
	check("all healthy", 0, false)
	in.track.ifDown["eth1"] = true
	check("eth1 down", -20, false)
	in.track.scriptFail["haproxy"] = true
	check("and haproxy failing", -80, false)
	in.track.fileValue["/run/w"] = 5
	check("and file 5 × 2", -70, false)
	in.track.scriptFail["db"] = true
	check("and a weight-0 script failing", -70, true)
	in.track.scriptFail["db"] = false
	in.track.fileValue["/run/f"] = 1
	check("and a weight-0 file non-zero", -70, true)
	in.track.fileValue["/run/f"] = 0
	in.track.ifDown["eth2"] = true
	check("and a weight-0 interface down", -70, true)
	in.track.ifDown["eth2"] = false
	in.track.procDown["haproxy"] = true
	check("and a process tracker down (the script of the same name is another tracker)", -85, false)
	in.track.procDown["sshd"] = true
	check("and a weight-0 process tracker down", -85, true)
}

// polGroupNode returns a Node with instances vi1 and vi2 in sync group sg,
// both started as backups on an interface with carrier, with its state
// directory in a temporary directory. Nothing in it touches the host.
func polGroupNode(t *testing.T) (*Node, *instance, *instance) {
	t.Helper()
	log, _ := trkNewLog()
	ifc := &iface{name: "eth0", index: 2, primary: netip.MustParseAddr("198.18.0.11"), up: true}
	cfg := &config.Config{File: "t.yaml", StateDir: t.TempDir(),
		SyncGroups: []config.SyncGroup{{Name: "sg", Instances: []string{"vi1", "vi2"}}}}
	n := &Node{log: log, cfg: cfg}
	for i, name := range []string{"vi1", "vi2"} {
		c := config.Instance{Name: name, Interface: "eth0", VRID: uint8(51 + i), Priority: 150, Version: 3,
			AdvertInterval: 100 * time.Millisecond, Preempt: true,
			VIPs: []config.VIP{{Address: netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, 0, byte(100 + i)}), 32)}}}
		cfg.Instances = append(cfg.Instances, c)
		in := newInstance(c, ifc)
		ifc.byVRID[c.VRID] = in
		ifc.insts = append(ifc.insts, in)
		n.insts = append(n.insts, in)
	}
	n.ifaces = []*iface{ifc}
	n.buildGroups()
	now := time.Now()
	for _, in := range n.insts {
		n.step(in, Event{Kind: EventStartup}, now)
		if in.m.State() != StateBackup {
			t.Fatalf("%s: state %v after start-up, want backup", in.cfg.Name, in.m.State())
		}
	}
	return n, n.insts[0], n.insts[1]
}

// A member of a sync group in maintenance holds the whole group out of
// master, as a member in fault does: otherwise the peer's group pulls the
// other members over and pushes them back without end. Maintenance off
// releases them all.
func TestMaintenanceHoldsSyncGroup(t *testing.T) {
	n, vi1, vi2 := polGroupNode(t)
	now := time.Now()
	if r := n.setMaintenance(maintReq{instance: "vi1", on: true}, now); r.err != nil {
		t.Fatalf("maintenance on: %v", r.err)
	}
	if !vi1.m.Held() || !vi2.m.Held() {
		t.Fatalf("maintenance on vi1: held vi1 %v vi2 %v, want both held", vi1.m.Held(), vi2.m.Held())
	}
	// Neither takes over on its Master_Down timer while held.
	later := now.Add(time.Second)
	for _, in := range n.insts {
		n.step(in, Event{Kind: EventTimer}, later)
		if in.m.State() != StateBackup {
			t.Errorf("%s: %v after its timer while the group is held, want backup", in.cfg.Name, in.m.State())
		}
	}
	if r := n.setMaintenance(maintReq{instance: "vi1", on: false}, later); r.err != nil {
		t.Fatalf("maintenance off: %v", r.err)
	}
	if vi1.m.Held() || vi2.m.Held() {
		t.Errorf("maintenance off: held vi1 %v vi2 %v, want neither", vi1.m.Held(), vi2.m.Held())
	}
}

func TestFaultFor(t *testing.T) {
	for _, tc := range []struct {
		up, own, tracker bool
		last             Reason
		fault            bool
		why              Reason
	}{
		{true, true, false, ReasonNone, false, ReasonLinkUp},
		{false, true, false, ReasonNone, true, ReasonLinkDown},
		{false, true, true, ReasonNone, true, ReasonLinkDown},
		{true, true, true, ReasonNone, true, ReasonTracker},
		{true, true, false, ReasonTracker, false, ReasonTracker},
		{true, true, false, ReasonLinkDown, false, ReasonLinkUp},
		// track.own_interface: false: carrier loss alone is no fault;
		// a weight-0 tracker still is.
		{false, false, false, ReasonNone, false, ReasonLinkUp},
		{false, false, true, ReasonNone, true, ReasonTracker},
		{true, false, true, ReasonNone, true, ReasonTracker},
		{false, false, false, ReasonTracker, false, ReasonTracker},
		// Untracked by a reload while the link is down: the fault ends.
		{false, false, false, ReasonLinkDown, false, ReasonLinkUp},
	} {
		fault, why := faultFor(tc.up, tc.own, tc.tracker, tc.last)
		if fault != tc.fault || why != tc.why {
			t.Errorf("faultFor(up %v, own %v, tracker %v, last %v) = %v %v, want %v %v", tc.up, tc.own, tc.tracker, tc.last, fault, why, tc.fault, tc.why)
		}
	}
}

func TestHoldFor(t *testing.T) {
	none, maint, fault := memberState{}, memberState{maintenance: true}, memberState{fault: true}
	for _, tc := range []struct {
		name   string
		self   memberState
		others []memberState
		held   bool
		why    Reason
	}{
		{"alone", none, nil, false, ReasonMaintenance},
		{"alone in maintenance", maint, nil, true, ReasonMaintenance},
		{"group all well", none, []memberState{none, none}, false, ReasonMaintenance},
		{"member in fault", none, []memberState{none, fault}, true, ReasonSyncGroup},
		{"member in maintenance", none, []memberState{maint}, true, ReasonSyncGroup},
		{"self in fault is not held by itself", fault, []memberState{none}, false, ReasonMaintenance},
		{"maintenance names itself first", maint, []memberState{fault}, true, ReasonMaintenance},
	} {
		held, why := holdFor(tc.self, tc.others)
		if held != tc.held || why != tc.why {
			t.Errorf("%s: held %v (%v), want %v (%v)", tc.name, held, why, tc.held, tc.why)
		}
	}
}

func TestGroupFollow(t *testing.T) {
	for _, tc := range []struct {
		from, to State
		follow   EventKind
		ok       bool
		holds    bool
	}{
		{StateBackup, StateMaster, EventForceMaster, true, false},
		{StateMaster, StateBackup, EventForceBackup, true, false},
		{StateMaster, StateFault, EventForceBackup, true, true},
		{StateMaster, StateInit, EventForceBackup, true, false},
		{StateBackup, StateFault, 0, false, true},
		{StateFault, StateBackup, 0, false, true},
		{StateInit, StateBackup, 0, false, false},
		{StateFault, StateMaster, EventForceMaster, true, true},
	} {
		follow, ok, holds := groupFollow(Output{Transition: true, From: tc.from, To: tc.to})
		if follow != tc.follow || ok != tc.ok || holds != tc.holds {
			t.Errorf("%v → %v: follow %d %v holds %v, want %d %v %v", tc.from, tc.to, follow, ok, holds, tc.follow, tc.ok, tc.holds)
		}
	}
}
