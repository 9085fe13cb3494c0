package control

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"github.com/vipd/vipd/vrrp"
)

// A process tracker's count is in its own field, present also when no
// process matches; other trackers have none.
func TestStatusProcessTrackerCount(t *testing.T) {
	st := vrrp.Status{Instances: []vrrp.InstanceStatus{{Name: "web", Trackers: []vrrp.TrackerStatus{
		{Kind: "process", Name: "lb", Failing: true, Value: 0, Weight: -50},
		{Kind: "process", Name: "ssh", Value: 2},
		{Kind: "file", Name: "/run/w", Value: 3, Weight: 2},
	}}}}
	b, err := json.Marshal(toStatus(st, "test").Instances[0].Trackers)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"kind":"process","name":"lb","failing":true,"count":0,"weight":-50},` +
		`{"kind":"process","name":"ssh","failing":false,"count":2,"weight":0},` +
		`{"kind":"file","name":"/run/w","failing":false,"value":3,"weight":2}]`
	if got := string(b); got != want {
		t.Errorf("trackers:\n got %s\nwant %s", got, strings.TrimSpace(want))
	}
}

// Each instance names the family it advertises in, and IPv6 addresses come
// out as written.
func TestStatusFamily(t *testing.T) {
	ll := netip.MustParseAddr("fe80::1")
	st := vrrp.Status{Instances: []vrrp.InstanceStatus{
		{Name: "web", Family: vrrp.FamilyIPv4},
		{Name: "web6", Family: vrrp.FamilyIPv6, PrimaryAddr: ll, SourceAddr: ll, MasterAddr: netip.MustParseAddr("fe80::2")},
	}}
	s := toStatus(st, "test")
	if s.Instances[0].Family != "ipv4" || s.Instances[1].Family != "ipv6" {
		t.Errorf("families %q, %q; want ipv4, ipv6", s.Instances[0].Family, s.Instances[1].Family)
	}
	if in := s.Instances[1]; in.PrimaryAddress != "fe80::1" || in.SourceAddress != "fe80::1" || in.MasterAddress != "fe80::2" {
		t.Errorf("IPv6 addresses %q %q %q", in.PrimaryAddress, in.SourceAddress, in.MasterAddress)
	}
}
