package vrrp

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/vipd/vipd/config"
)

// Every (state, event kind) pair: what the machine moves to and what it
// asks of the runtime. "handover" is Init after a shutdown that hands the
// VIPs over (Machine.HandingOver).
func TestMachineStateEventTable(t *testing.T) {
	const (
		none = Action(0)
		take = ActAddVIPs | ActSendAdvert | ActAnnounce
		quit = ActStopAnnounce | ActResign | ActRemoveVIPs
	)
	states := map[string]func(t *testing.T) *Machine{
		"init":   func(*testing.T) *Machine { return NewMachine(cfg(100)) },
		"backup": func(t *testing.T) *Machine { return backup(t, cfg(100)) },
		"master": func(t *testing.T) *Machine { return master(t, cfg(100)) },
		"fault": func(t *testing.T) *Machine {
			m := backup(t, cfg(100))
			m.Step(Event{Kind: EventLinkDown}, t0)
			return m
		},
		"handover": func(t *testing.T) *Machine {
			m := master(t, cfg(100))
			out := m.Step(Event{Kind: EventShutdown, HandOver: true}, m.LastChange())
			if !out.Actions.Has(ActResign|ActHandOver) || out.Actions.Has(ActRemoveVIPs) || !m.HandingOver() {
				t.Fatalf("shutdown with hand-over: %+v, handing over %v", out, m.HandingOver())
			}
			return m
		},
	}
	c120 := cfg(120)
	events := map[EventKind]Event{
		EventStartup:     {Kind: EventStartup},
		EventShutdown:    {Kind: EventShutdown},
		EventAdvert:      advert(highIP, 200, 100*time.Millisecond),
		EventTimer:       {Kind: EventTimer}, // at the machine's deadline
		EventLinkDown:    {Kind: EventLinkDown},
		EventLinkUp:      {Kind: EventLinkUp},
		EventForceMaster: {Kind: EventForceMaster},
		EventForceBackup: {Kind: EventForceBackup},
		EventHold:        {Kind: EventHold, Hold: true, Reason: ReasonMaintenance},
		EventReconfigure: {Kind: EventReconfigure, Config: &c120},
		EventAnnounce:    {Kind: EventAnnounce},
	}
	type want struct {
		to   State
		acts Action
	}
	table := map[string][numEventKinds]want{
		"init": {
			EventStartup: {StateBackup, none}, EventShutdown: {StateInit, none}, EventAdvert: {StateInit, none},
			EventTimer: {StateInit, none}, EventLinkDown: {StateFault, none}, EventLinkUp: {StateInit, none},
			EventForceMaster: {StateInit, none}, EventForceBackup: {StateInit, none}, EventHold: {StateInit, none},
			EventReconfigure: {StateInit, none}, EventAnnounce: {StateInit, none},
		},
		"backup": {
			EventStartup: {StateBackup, none}, EventShutdown: {StateInit, none}, EventAdvert: {StateBackup, none},
			EventTimer: {StateMaster, take}, EventLinkDown: {StateFault, none}, EventLinkUp: {StateBackup, none},
			EventForceMaster: {StateMaster, take}, EventForceBackup: {StateBackup, none}, EventHold: {StateBackup, none},
			EventReconfigure: {StateBackup, none}, EventAnnounce: {StateBackup, none},
		},
		"master": {
			EventStartup: {StateMaster, none}, EventShutdown: {StateInit, quit},
			EventAdvert: {StateBackup, ActStopAnnounce | ActRemoveVIPs | ActSendAdvert},
			EventTimer:  {StateMaster, ActSendAdvert}, EventLinkDown: {StateFault, ActStopAnnounce | ActRemoveVIPs},
			EventLinkUp: {StateMaster, none}, EventForceMaster: {StateMaster, none}, EventForceBackup: {StateBackup, quit},
			EventHold: {StateBackup, quit}, EventReconfigure: {StateMaster, ActSendAdvert},
			EventAnnounce: {StateMaster, ActAnnounce},
		},
		"fault": {
			EventStartup: {StateBackup, none}, EventShutdown: {StateInit, none}, EventAdvert: {StateFault, none},
			EventTimer: {StateFault, none}, EventLinkDown: {StateFault, none}, EventLinkUp: {StateBackup, none},
			EventForceMaster: {StateFault, none}, EventForceBackup: {StateFault, none}, EventHold: {StateFault, none},
			EventReconfigure: {StateFault, none}, EventAnnounce: {StateFault, none},
		},
		"handover": {
			EventStartup: {StateBackup, ActRemoveVIPs}, EventShutdown: {StateInit, none}, EventAdvert: {StateInit, ActRemoveVIPs},
			EventTimer: {StateInit, ActRemoveVIPs}, EventLinkDown: {StateFault, ActRemoveVIPs}, EventLinkUp: {StateInit, none},
			EventForceMaster: {StateInit, none}, EventForceBackup: {StateInit, none}, EventHold: {StateInit, none},
			EventReconfigure: {StateInit, none}, EventAnnounce: {StateInit, none},
		},
	}
	for name, setup := range states {
		for k := range EventKind(numEventKinds) {
			ev, ok := events[k]
			if !ok {
				t.Fatalf("no event for kind %d", k)
			}
			t.Run(fmt.Sprintf("%s/%d", name, k), func(t *testing.T) {
				m := setup(t)
				from := m.State()
				now := m.LastChange().Add(10 * time.Millisecond)
				if d := m.Deadline(); ev.Kind == EventTimer && !d.IsZero() {
					now = d
				}
				out := m.Step(ev, now)
				w := table[name][k]
				if m.State() != w.to || out.Actions != w.acts {
					t.Errorf("%s + event %d: state %v actions %b, want %v %b", name, k, m.State(), out.Actions, w.to, w.acts)
				}
				if out.Transition != (from != m.State()) {
					t.Errorf("%s + event %d: Transition %v from %v to %v", name, k, out.Transition, from, m.State())
				}
				if name == "handover" && w.acts.Has(ActRemoveVIPs) && m.HandingOver() {
					t.Errorf("handover + event %d: still handing over after removing the VIPs", k)
				}
			})
		}
	}
}

// A master's gratuitous ARP: the first burst on becoming master, then
// AnnounceRepeat repeats AnnounceInterval apart, then a refresh every
// AnnounceRefresh; a new burst (EventAnnounce) starts the count over, and
// leaving master cancels the schedule.
func TestMachineAnnounceSchedule(t *testing.T) {
	c := cfg(100)
	c.AnnounceRepeat, c.AnnounceInterval, c.AnnounceRefresh = 2, time.Second, 10*time.Second
	m := master(t, c)
	start := m.LastChange()
	var got []time.Duration
	for m.AnnounceDue().Sub(start) < 25*time.Second {
		at := m.AnnounceDue()
		if out := m.Step(Event{Kind: EventTimer}, at); out.Actions.Has(ActAnnounce) {
			got = append(got, at.Sub(start))
		}
	}
	want := []time.Duration{time.Second, 2 * time.Second, 12 * time.Second, 22 * time.Second}
	if !slices.Equal(got, want) {
		t.Errorf("announcements at %v, want %v", got, want)
	}
	now := m.AnnounceDue().Add(-time.Second)
	if out := m.Step(Event{Kind: EventAnnounce}, now); !out.Actions.Has(ActAnnounce) || !m.AnnounceDue().Equal(now.Add(time.Second)) {
		t.Errorf("a new burst: %+v, next at %v", out, m.AnnounceDue().Sub(now))
	}
	m.Step(advert(highIP, 200, 100*time.Millisecond), now)
	if m.State() != StateBackup || !m.AnnounceDue().IsZero() {
		t.Errorf("after yielding: state %v, announcement due %v", m.State(), m.AnnounceDue())
	}
}

// A takeover's echoes (a virtual MAC's): one more announcement at each
// echo after the takeover, besides the burst's repeats, none after a
// new burst that is not a takeover, and none left after yielding.
func TestMachineAnnounceEchoes(t *testing.T) {
	c := cfg(100)
	c.AnnounceRepeat, c.AnnounceInterval = 1, time.Second
	c.AnnounceEchoes = [2]time.Duration{10 * time.Millisecond, 50 * time.Millisecond}
	m := master(t, c)
	start := m.LastChange()
	var got []time.Duration
	for m.AnnounceDue().Sub(start) < 5*time.Second && !m.AnnounceDue().IsZero() {
		at := m.AnnounceDue()
		if out := m.Step(Event{Kind: EventTimer}, at); out.Actions.Has(ActAnnounce) {
			got = append(got, at.Sub(start))
		}
	}
	want := []time.Duration{10 * time.Millisecond, 50 * time.Millisecond, time.Second}
	if !slices.Equal(got, want) {
		t.Errorf("announcements at %v, want %v", got, want)
	}
	now := start.Add(2 * time.Second)
	if out := m.Step(Event{Kind: EventAnnounce}, now); !out.Actions.Has(ActAnnounce) || !m.AnnounceDue().Equal(now.Add(time.Second)) {
		t.Errorf("a new burst that is no takeover: %+v, next at %v, want its repeat alone", out, m.AnnounceDue().Sub(now))
	}
	m.Step(advert(highIP, 200, 100*time.Millisecond), now)
	if m.State() != StateBackup || !m.AnnounceDue().IsZero() {
		t.Errorf("after yielding: state %v, announcement due %v", m.State(), m.AnnounceDue())
	}
	// Echoes that the next advert comes before are left out
	// (instance.announceEchoes), and only a virtual MAC has them.
	for _, tc := range []struct {
		vmac     bool
		interval time.Duration
		want     [2]time.Duration
	}{
		{true, time.Second, [2]time.Duration{10 * time.Millisecond, 50 * time.Millisecond}},
		{true, 20 * time.Millisecond, [2]time.Duration{10 * time.Millisecond}},
		{true, 10 * time.Millisecond, [2]time.Duration{}},
		{false, time.Second, [2]time.Duration{}},
	} {
		in := &instance{}
		in.setConfig(config.Instance{VirtualMAC: tc.vmac, AdvertInterval: tc.interval})
		if got := in.announceEchoes(); got != tc.want {
			t.Errorf("virtual MAC %v at %v: echoes %v, want %v", tc.vmac, tc.interval, got, tc.want)
		}
	}
}
