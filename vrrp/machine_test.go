package vrrp

import (
	"net/netip"
	"testing"
	"time"
)

var (
	t0     = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ourIP  = netip.MustParseAddr("198.18.0.11")
	lowIP  = netip.MustParseAddr("198.18.0.10")
	highIP = netip.MustParseAddr("198.18.0.12")
)

func cfg(prio uint8) MachineConfig {
	return MachineConfig{Priority: prio, Version: 3, AdvertInterval: 100 * time.Millisecond, Preempt: true, Addr: ourIP}
}

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func advert(from netip.Addr, prio uint8, interval time.Duration) Event {
	return Event{Kind: EventAdvert, From: from, Priority: prio, Interval: interval}
}

// backup returns a machine that has started up as backup at t0.
func backup(t *testing.T, c MachineConfig) *Machine {
	t.Helper()
	m := NewMachine(c)
	if out := m.Step(Event{Kind: EventStartup}, t0); m.State() != StateBackup || out.Actions != 0 {
		t.Fatalf("startup: state %v actions %b, want backup with no actions", m.State(), out.Actions)
	}
	return m
}

// master returns a machine that became master by its Master_Down_Timer.
func master(t *testing.T, c MachineConfig) *Machine {
	t.Helper()
	m := backup(t, c)
	out := m.Step(Event{Kind: EventTimer}, m.Deadline())
	if m.State() != StateMaster || !out.Actions.Has(ActAddVIPs|ActSendAdvert|ActAnnounce) {
		t.Fatalf("timer: state %v actions %b, want master with add+send+announce", m.State(), out.Actions)
	}
	return m
}

func TestTimers(t *testing.T) {
	for _, tc := range []struct {
		version  int
		prio     uint8
		interval time.Duration
		skew     time.Duration
		down     time.Duration
	}{
		{3, 100, time.Second, 609375 * time.Microsecond, 3609375 * time.Microsecond},
		{3, 100, 100 * time.Millisecond, 60937500 * time.Nanosecond, 360937500 * time.Nanosecond},
		{3, 200, 100 * time.Millisecond, 21875 * time.Microsecond, 321875 * time.Microsecond},
		{3, 255, time.Second, 3906250 * time.Nanosecond, 3003906250 * time.Nanosecond},
		{3, 1, time.Second, 996093750 * time.Nanosecond, 3996093750 * time.Nanosecond},
		{3, 100, 3 * time.Second, 1828125 * time.Microsecond, 10828125 * time.Microsecond},
		// RFC 3768 §6.1: v2 Skew_Time is (256 − priority)/256 seconds
		// whatever the advert interval; only Master_Down scales with it.
		{2, 100, time.Second, 609375 * time.Microsecond, 3609375 * time.Microsecond},
		{2, 100, 3 * time.Second, 609375 * time.Microsecond, 9609375 * time.Microsecond},
		{2, 200, 10 * time.Second, 218750 * time.Microsecond, 30218750 * time.Microsecond},
		{2, 1, 255 * time.Second, 996093750 * time.Nanosecond, 765996093750 * time.Nanosecond},
	} {
		if got := SkewTime(tc.version, tc.prio, tc.interval); got != tc.skew {
			t.Errorf("SkewTime(v%d, %d, %v) = %v, want %v", tc.version, tc.prio, tc.interval, got, tc.skew)
		}
		if got := MasterDownInterval(tc.version, tc.prio, tc.interval); got != tc.down {
			t.Errorf("MasterDownInterval(v%d, %d, %v) = %v, want %v", tc.version, tc.prio, tc.interval, got, tc.down)
		}
	}
}

// A v2 backup that hears its master resign takes over after (256 −
// priority)/256 s, not after that fraction of a 3 s advert interval; and
// its Master_Down timer is 3 intervals plus that same skew.
func TestV2SkewTimeIgnoresInterval(t *testing.T) {
	c := cfg(100)
	c.Version, c.AdvertInterval = 2, 3*time.Second
	m := backup(t, c)
	if want := at(0).Add(9*time.Second + 609375*time.Microsecond); !m.Deadline().Equal(want) {
		t.Errorf("Master_Down deadline %v after start, want %v", m.Deadline().Sub(at(0)), want.Sub(at(0)))
	}
	m.Step(advert(highIP, 0, 3*time.Second), at(500))
	if want := at(500).Add(609375 * time.Microsecond); !m.Deadline().Equal(want) {
		t.Errorf("after a priority-0 advert the deadline is %v later, want Skew_Time %v", m.Deadline().Sub(at(500)), want.Sub(at(500)))
	}
}

// RFC 5798 §6.4.1: Initialize.
func TestStartupBackup(t *testing.T) {
	m := backup(t, cfg(100))
	if want := at(0).Add(MasterDownInterval(3, 100, 100*time.Millisecond)); !m.Deadline().Equal(want) {
		t.Errorf("deadline %v, want Master_Down_Interval after start %v", m.Deadline(), want)
	}
	if m.MasterAddr().IsValid() {
		t.Errorf("master address %v before any advert, want none", m.MasterAddr())
	}
}

func TestStartupOwner(t *testing.T) {
	m := NewMachine(cfg(255))
	out := m.Step(Event{Kind: EventStartup}, t0)
	if m.State() != StateMaster || !out.Transition || out.Reason != ReasonOwner {
		t.Fatalf("owner start-up: %+v state %v, want master by address_owner", out, m.State())
	}
	if !out.Actions.Has(ActSendAdvert | ActAddVIPs | ActAnnounce) {
		t.Errorf("actions %b, want advertise, add VIPs, announce", out.Actions)
	}
	if !m.Deadline().Equal(at(100)) {
		t.Errorf("Adver_Timer %v, want %v", m.Deadline(), at(100))
	}
	if m.MasterAddr() != ourIP {
		t.Errorf("master address %v, want our own", m.MasterAddr())
	}
}

// RFC 5798 §6.4.2: Backup.
func TestBackupMasterDownTimerFires(t *testing.T) {
	m := backup(t, cfg(100))
	if out := m.Step(Event{Kind: EventTimer}, m.Deadline().Add(-time.Nanosecond)); out.Actions != 0 || m.State() != StateBackup {
		t.Fatalf("early timer acted: %+v", out)
	}
	due := m.Deadline()
	out := m.Step(Event{Kind: EventTimer}, due)
	if m.State() != StateMaster || out.Reason != ReasonMasterDown || out.From != StateBackup {
		t.Fatalf("got %+v state %v, want backup→master by master_down_timer", out, m.State())
	}
	if !out.Actions.Has(ActSendAdvert | ActAddVIPs | ActAnnounce) {
		t.Errorf("actions %b, want advertise, add VIPs, announce", out.Actions)
	}
	if want := due.Add(100 * time.Millisecond); !m.Deadline().Equal(want) {
		t.Errorf("Adver_Timer %v, want %v", m.Deadline(), want)
	}
}

func TestBackupPriorityZeroSetsSkew(t *testing.T) {
	m := backup(t, cfg(100))
	m.Step(advert(highIP, 150, 100*time.Millisecond), at(50))
	out := m.Step(advert(highIP, 0, 100*time.Millisecond), at(80))
	if out.Actions != 0 || m.State() != StateBackup {
		t.Fatalf("priority 0 in backup: %+v", out)
	}
	if want := at(80).Add(SkewTime(3, 100, 100*time.Millisecond)); !m.Deadline().Equal(want) {
		t.Errorf("Master_Down_Timer %v, want Skew_Time after the resignation %v", m.Deadline(), want)
	}
}

func TestBackupAcceptsHigherOrEqualPriority(t *testing.T) {
	for _, prio := range []uint8{100, 150, 254} {
		m := backup(t, cfg(100))
		// v3: the master's interval is learned and drives the timer.
		m.Step(advert(highIP, prio, 200*time.Millisecond), at(300))
		if m.MasterAdverInterval() != 200*time.Millisecond {
			t.Errorf("prio %d: learned interval %v, want 200ms", prio, m.MasterAdverInterval())
		}
		if want := at(300).Add(MasterDownInterval(3, 100, 200*time.Millisecond)); !m.Deadline().Equal(want) {
			t.Errorf("prio %d: Master_Down_Timer %v, want %v", prio, m.Deadline(), want)
		}
		if m.MasterAddr() != highIP || m.MasterPriority() != prio {
			t.Errorf("prio %d: master %v/%d, want %v/%d", prio, m.MasterAddr(), m.MasterPriority(), highIP, prio)
		}
	}
}

func TestBackupV2KeepsOwnInterval(t *testing.T) {
	c := cfg(100)
	c.Version = 2
	c.AdvertInterval = time.Second
	m := backup(t, c)
	m.Step(advert(highIP, 150, 2*time.Second), at(500))
	if m.MasterAdverInterval() != time.Second {
		t.Errorf("v2 learned interval %v, want own 1s", m.MasterAdverInterval())
	}
}

func TestBackupIgnoresLowerPriorityWhenPreempting(t *testing.T) {
	m := backup(t, cfg(100))
	before := m.Deadline()
	m.Step(advert(lowIP, 50, 100*time.Millisecond), at(100))
	if !m.Deadline().Equal(before) {
		t.Errorf("lower-priority advert reset the timer to %v (was %v): preempt must let it run out", m.Deadline(), before)
	}
	out := m.Step(Event{Kind: EventTimer}, before)
	if m.State() != StateMaster || out.Reason != ReasonMasterDown {
		t.Errorf("after timer: %+v state %v, want preempt to master", out, m.State())
	}
}

func TestBackupNoPreemptAcceptsLowerPriority(t *testing.T) {
	c := cfg(100)
	c.Preempt = false
	m := backup(t, c)
	m.Step(advert(lowIP, 50, 100*time.Millisecond), at(100))
	if want := at(100).Add(m.MasterDownInterval()); !m.Deadline().Equal(want) {
		t.Errorf("preempt off: Master_Down_Timer %v, want reset to %v", m.Deadline(), want)
	}
	if m.MasterAddr() != lowIP {
		t.Errorf("master %v, want %v", m.MasterAddr(), lowIP)
	}
}

func TestBackupPreemptDelay(t *testing.T) {
	c := cfg(100)
	c.PreemptDelay = time.Second
	m := backup(t, c)
	// Within the delay a lower-priority master is accepted.
	m.Step(advert(lowIP, 50, 100*time.Millisecond), at(900))
	if want := at(900).Add(m.MasterDownInterval()); !m.Deadline().Equal(want) {
		t.Fatalf("within preempt_delay: deadline %v, want reset to %v", m.Deadline(), want)
	}
	// After it, the lower-priority adverts are ignored and we take over.
	before := m.Deadline()
	m.Step(advert(lowIP, 50, 100*time.Millisecond), at(1000))
	if !m.Deadline().Equal(before) {
		t.Fatalf("after preempt_delay: deadline %v, want unchanged %v", m.Deadline(), before)
	}
	m.Step(Event{Kind: EventTimer}, before)
	if m.State() != StateMaster {
		t.Errorf("state %v, want master after preempt_delay", m.State())
	}
}

// RFC 5798 §6.4.3: Master.
func TestMasterAdverTimer(t *testing.T) {
	m := master(t, cfg(100))
	due := m.Deadline()
	out := m.Step(Event{Kind: EventTimer}, due)
	if out.Actions != ActSendAdvert || out.Transition {
		t.Fatalf("adver timer: %+v, want only an advert", out)
	}
	if want := due.Add(100 * time.Millisecond); !m.Deadline().Equal(want) {
		t.Errorf("next advert %v, want %v", m.Deadline(), want)
	}
	// A stalled process does not catch up with a burst.
	late := m.Deadline().Add(time.Second)
	m.Step(Event{Kind: EventTimer}, late)
	if want := late.Add(100 * time.Millisecond); !m.Deadline().Equal(want) {
		t.Errorf("after a stall next advert %v, want %v", m.Deadline(), want)
	}
}

func TestMasterPriorityZeroAdvertisesAtOnce(t *testing.T) {
	m := master(t, cfg(100))
	now := m.Deadline().Add(-40 * time.Millisecond)
	out := m.Step(advert(highIP, 0, 100*time.Millisecond), now)
	if out.Actions != ActSendAdvert || m.State() != StateMaster {
		t.Fatalf("priority 0 to master: %+v state %v, want an advert, still master", out, m.State())
	}
	if want := now.Add(100 * time.Millisecond); !m.Deadline().Equal(want) {
		t.Errorf("Adver_Timer %v, want reset to %v", m.Deadline(), want)
	}
}

func TestMasterYieldsToPreferredPeer(t *testing.T) {
	for _, tc := range []struct {
		name string
		from netip.Addr
		prio uint8
	}{
		{"higher priority", lowIP, 150},
		{"equal priority, higher address", highIP, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := master(t, cfg(100))
			now := m.Deadline().Add(-10 * time.Millisecond)
			out := m.Step(advert(tc.from, tc.prio, 300*time.Millisecond), now)
			if m.State() != StateBackup || out.Reason != ReasonPreferredPeer {
				t.Fatalf("got %+v state %v, want master→backup", out, m.State())
			}
			// One last advert at our own priority tells the winner that a
			// lower rank was master, so that it re-announces.
			if !out.Actions.Has(ActRemoveVIPs|ActStopAnnounce|ActSendAdvert) || out.Actions.Has(ActResign) {
				t.Errorf("actions %b, want remove VIPs, stop announcing and one advert", out.Actions)
			}
			if m.MasterAdverInterval() != 300*time.Millisecond {
				t.Errorf("learned interval %v, want 300ms", m.MasterAdverInterval())
			}
			if want := now.Add(MasterDownInterval(3, 100, 300*time.Millisecond)); !m.Deadline().Equal(want) {
				t.Errorf("Master_Down_Timer %v, want %v", m.Deadline(), want)
			}
		})
	}
}

func TestMasterReassertsOverLowerRank(t *testing.T) {
	for _, tc := range []struct {
		name string
		from netip.Addr
		prio uint8
	}{
		{"lower priority", highIP, 50},
		{"equal priority, lower address", lowIP, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := master(t, cfg(100))
			now := m.Deadline().Add(-50 * time.Millisecond)
			out := m.Step(advert(tc.from, tc.prio, 100*time.Millisecond), now)
			if m.State() != StateMaster || out.Actions != ActSendAdvert|ActAnnounce {
				t.Fatalf("got %+v state %v, want to stay master, advertise and announce at once", out, m.State())
			}
			// A flood of such adverts gets at most one reassertion per interval.
			if out := m.Step(advert(tc.from, tc.prio, 100*time.Millisecond), now.Add(5*time.Millisecond)); out.Actions != 0 {
				t.Errorf("second reassertion within the interval: %+v", out)
			}
			if out := m.Step(advert(tc.from, tc.prio, 100*time.Millisecond), now.Add(100*time.Millisecond)); out.Actions != ActSendAdvert|ActAnnounce {
				t.Errorf("reassertion one interval later: %+v", out)
			}
		})
	}
}

func TestShutdown(t *testing.T) {
	m := master(t, cfg(100))
	out := m.Step(Event{Kind: EventShutdown}, at(1000))
	if m.State() != StateInit || !out.Actions.Has(ActResign|ActRemoveVIPs|ActStopAnnounce) || out.Actions.Has(ActSendAdvert) {
		t.Fatalf("master shutdown: %+v, want resign and remove VIPs", out)
	}
	if !m.Deadline().IsZero() {
		t.Errorf("deadline %v after shutdown, want none", m.Deadline())
	}
	b := backup(t, cfg(100))
	if out := b.Step(Event{Kind: EventShutdown}, at(10)); b.State() != StateInit || out.Actions != 0 || !out.Transition {
		t.Errorf("backup shutdown: %+v state %v, want init with no actions", out, b.State())
	}
}

func TestLinkDownAndUp(t *testing.T) {
	m := master(t, cfg(100))
	out := m.Step(Event{Kind: EventLinkDown}, at(1000))
	if m.State() != StateFault || !out.Actions.Has(ActRemoveVIPs) || out.Actions.Has(ActResign) {
		t.Fatalf("link down as master: %+v, want fault with VIPs removed", out)
	}
	if out := m.Step(advert(lowIP, 50, 100*time.Millisecond), at(1100)); out.Actions != 0 || m.State() != StateFault {
		t.Errorf("advert in fault acted: %+v", out)
	}
	out = m.Step(Event{Kind: EventLinkUp}, at(2000))
	if m.State() != StateBackup || out.Reason != ReasonLinkUp {
		t.Fatalf("link up: %+v state %v, want backup", out, m.State())
	}
	if want := at(2000).Add(m.MasterDownInterval()); !m.Deadline().Equal(want) {
		t.Errorf("deadline after link up %v, want %v", m.Deadline(), want)
	}
	// Link up when not in fault changes nothing.
	if out := m.Step(Event{Kind: EventLinkUp}, at(2100)); out.Transition || out.Actions != 0 {
		t.Errorf("link up in backup: %+v", out)
	}
}

func TestReconfigurePriorityAsMaster(t *testing.T) {
	m := master(t, cfg(100))
	c := cfg(120)
	out := m.Reconfigure(c, at(1000))
	if out.Actions != ActSendAdvert || out.Transition || m.State() != StateMaster {
		t.Fatalf("reconfigure priority as master: %+v, want an advert, no transition", out)
	}
	if m.MasterPriority() != 120 {
		t.Errorf("master priority %d, want 120", m.MasterPriority())
	}
	if out := m.Reconfigure(c, at(1010)); out.Actions != 0 {
		t.Errorf("unchanged reconfigure acted: %+v", out)
	}
}

func TestStateNames(t *testing.T) {
	for s, want := range map[State]string{StateInit: "init", StateBackup: "backup", StateMaster: "master", StateFault: "fault", State(9): "unknown"} {
		if s.String() != want {
			t.Errorf("State(%d) = %q, want %q", s, s.String(), want)
		}
	}
}

func TestStartWithoutCarrier(t *testing.T) {
	m := NewMachine(cfg(100))
	out := m.Step(Event{Kind: EventLinkDown}, t0)
	if m.State() != StateFault || out.Actions != 0 || !out.Transition {
		t.Fatalf("link down in init: %+v state %v, want fault", out, m.State())
	}
	m.Step(Event{Kind: EventLinkUp}, at(500))
	if m.State() != StateBackup {
		t.Fatalf("link up: state %v, want backup", m.State())
	}
}

func TestHoldResignsAndStaysBackup(t *testing.T) {
	m := master(t, cfg(100))
	out := m.SetHold(true, ReasonMaintenance, at(1000))
	if m.State() != StateBackup || out.Reason != ReasonMaintenance || !out.Actions.Has(ActResign|ActRemoveVIPs|ActStopAnnounce) {
		t.Fatalf("hold as master: %+v state %v, want resign to backup", out, m.State())
	}
	// The timer fires again and again: still backup.
	for i := 0; i < 3; i++ {
		if out := m.Step(Event{Kind: EventTimer}, m.Deadline()); out.Transition || m.State() != StateBackup {
			t.Fatalf("held backup took over on its timer: %+v", out)
		}
	}
	if out := m.Step(Event{Kind: EventForceMaster}, at(5000)); out.Transition {
		t.Fatalf("held backup followed a forced master: %+v", out)
	}
	m.SetHold(false, ReasonNone, at(6000))
	if out := m.Step(Event{Kind: EventTimer}, m.Deadline()); m.State() != StateMaster || out.Reason != ReasonMasterDown {
		t.Fatalf("released backup: %+v state %v, want master on the timer", out, m.State())
	}
}

func TestHeldOwnerStartsAsBackup(t *testing.T) {
	m := NewMachine(cfg(255))
	m.SetHold(true, ReasonMaintenance, t0)
	m.Step(Event{Kind: EventStartup}, t0)
	if m.State() != StateBackup {
		t.Fatalf("held owner started as %v, want backup", m.State())
	}
}

func TestTrackerFaultResigns(t *testing.T) {
	m := master(t, cfg(100))
	out := m.Step(Event{Kind: EventLinkDown, Reason: ReasonTracker}, at(1000))
	if m.State() != StateFault || out.Reason != ReasonTracker || !out.Actions.Has(ActResign|ActRemoveVIPs) {
		t.Fatalf("tracker fault as master: %+v, want fault with a resignation", out)
	}
	out = m.Step(Event{Kind: EventLinkUp, Reason: ReasonTracker}, at(2000))
	if m.State() != StateBackup || out.Reason != ReasonTracker {
		t.Fatalf("tracker recovered: %+v state %v, want backup", out, m.State())
	}
}

func TestForcedTransitions(t *testing.T) {
	b := backup(t, cfg(100))
	out := b.Step(Event{Kind: EventForceMaster}, at(50))
	if b.State() != StateMaster || out.Reason != ReasonSyncGroup || !out.Actions.Has(ActAddVIPs|ActSendAdvert|ActAnnounce) {
		t.Fatalf("forced master: %+v state %v", out, b.State())
	}
	out = b.Step(Event{Kind: EventForceBackup}, at(80))
	if b.State() != StateBackup || out.Reason != ReasonSyncGroup || !out.Actions.Has(ActResign|ActRemoveVIPs) {
		t.Fatalf("forced backup: %+v state %v", out, b.State())
	}
	// Forcing what already is changes nothing.
	if out := b.Step(Event{Kind: EventForceBackup}, at(90)); out.Transition || out.Actions != 0 {
		t.Errorf("forced backup of a backup: %+v", out)
	}
	f := NewMachine(cfg(100))
	f.Step(Event{Kind: EventLinkDown}, t0)
	if out := f.Step(Event{Kind: EventForceMaster}, at(10)); out.Transition {
		t.Errorf("forced master out of fault: %+v", out)
	}
}
