package vrrp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/vipd/vipd/config"
)

// A backup's Master_Down timer wakes the loop takeoverLead early, and the
// loop then waits until the deadline itself: never before it, and not at
// all for a timer further off, a held backup's or a master's advert timer.
func TestAwaitTakeover(t *testing.T) {
	const iv = 20 * time.Millisecond
	c := config.Instance{Name: "web", Interface: "eth0", VRID: 51, Priority: 100, Version: 3,
		AdvertInterval: iv, Preempt: true,
		VIPs: []config.VIP{{Address: netip.MustParsePrefix("198.18.0.100/32")}}}
	ifc := &iface{name: "eth0", index: 2, primary: netip.MustParseAddr("198.18.0.12"), up: true}
	backup := func(downIn time.Duration) *instance {
		in := newInstance(c, ifc)
		in.m.Step(Event{Kind: EventStartup}, time.Now().Add(downIn-MasterDownInterval(c.Version, c.Priority, iv)))
		if in.m.State() != StateBackup {
			t.Fatalf("state %v after start-up, want backup", in.m.State())
		}
		return in
	}

	in := backup(time.Second)
	if got, want := in.deadline(), in.m.Deadline().Add(-takeoverLead); !got.Equal(want) {
		t.Errorf("backup wakes at %v, want Master_Down %v less %v", got, in.m.Deadline(), takeoverLead)
	}
	n := &Node{insts: []*instance{in}}
	now := time.Now()
	if got := n.awaitTakeover(now); !got.Equal(now) {
		t.Errorf("a timer 1 s away was waited for (returned %v after)", got.Sub(now))
	}

	near := backup(takeoverLead / 2)
	far := backup(takeoverLead / 4 * 3)
	n = &Node{insts: []*instance{in, far, near}}
	got := n.awaitTakeover(time.Now())
	if got.Before(near.m.Deadline()) {
		t.Errorf("returned %v before the nearest Master_Down timer", near.m.Deadline().Sub(got))
	}
	if !far.m.Deadline().After(near.m.Deadline()) {
		t.Fatal("test set-up: timers out of order")
	}

	// A backup held out of master (maintenance) only restarts its timer
	// when it expires: it is neither woken early nor waited for.
	held := backup(takeoverLead / 2)
	held.m.SetHold(true, ReasonMaintenance, time.Now())
	if d := held.deadline(); !d.Equal(held.m.Deadline()) {
		t.Errorf("held backup wakes at %v, want its Master_Down timer %v", d, held.m.Deadline())
	}
	n = &Node{insts: []*instance{held}}
	now = time.Now()
	if got := n.awaitTakeover(now); !got.Equal(now) {
		t.Errorf("a held backup's timer was waited for")
	}

	// A master's advert timer is not waited for: it keeps its slack.
	m := newInstance(c, ifc)
	m.m.Step(Event{Kind: EventStartup}, time.Now())
	m.m.Step(Event{Kind: EventTimer}, m.m.Deadline())
	if m.m.State() != StateMaster {
		t.Fatalf("state %v, want master", m.m.State())
	}
	if d := m.deadline(); !d.Equal(m.m.Deadline()) {
		t.Errorf("master wakes at %v, want its advert timer %v", d, m.m.Deadline())
	}
	n = &Node{insts: []*instance{m}}
	now = m.m.Deadline().Add(-takeoverLead / 2)
	if got := n.awaitTakeover(now); !got.Equal(now) {
		t.Errorf("a master's advert timer was waited for")
	}
}
