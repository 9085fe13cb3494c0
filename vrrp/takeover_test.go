package vrrp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/vipd/vipd/config"
)

// A backup that takes over from a silent master announces before it adds
// the VIPs; from a master that still speaks or resigned, after.
func TestMasterSilent(t *testing.T) {
	const iv = 100 * time.Millisecond
	c := config.Instance{Name: "web", Interface: "eth0", VRID: 51, Priority: 100, Version: 3,
		AdvertInterval: iv, Preempt: true,
		VIPs: []config.VIP{{Address: netip.MustParsePrefix("198.18.0.100/32")}}}
	ifc := &iface{name: "eth0", index: 2, primary: netip.MustParseAddr("198.18.0.12"), up: true}
	t0 := time.Unix(1_700_000_000, 0)
	for _, tc := range []struct {
		name     string
		heard    bool
		prio     uint8
		interval time.Duration // the last advert's
		ago      time.Duration // the last advert, before the takeover
		want     bool
	}{
		{"no master ever heard", false, 0, iv, 0, true},
		{"master silent for Master_Down_Interval", true, 150, iv, 3*iv + iv/2, true},
		{"master silent for exactly one interval", true, 150, iv, iv, true},
		{"master still advertising (preemption)", true, 50, iv, iv / 2, false},
		{"slower master still advertising (preemption)", true, 50, 10 * iv, 5 * iv, false},
		{"slower master silent for its Master_Down_Interval", true, 150, 10 * iv, 31 * iv, true},
		{"master resigned (priority 0)", true, 0, iv, iv / 3, false},
		{"master resigned long ago", true, 0, iv, 10 * iv, false},
	} {
		in := newInstance(c, ifc)
		in.m.Step(Event{Kind: EventStartup}, t0)
		now := t0.Add(time.Second)
		if tc.heard {
			in.heard, in.heardPriority, in.heardInterval = now.Add(-tc.ago), tc.prio, tc.interval
		}
		if got := in.masterSilent(now); got != tc.want {
			t.Errorf("%s: masterSilent = %v, want %v", tc.name, got, tc.want)
		}
	}
}
