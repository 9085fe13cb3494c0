package vrrp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/vipd/vipd/config"
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
