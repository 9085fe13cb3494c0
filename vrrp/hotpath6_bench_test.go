package vrrp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/vipd/vipd/config"
)

// BenchmarkHotPathReceiveIPv6 is BenchmarkHotPathReceive for an advert over
// IPv6: UnmarshalIPv6 (pseudo-header checksum over 16-byte addresses), the
// instance's checks and the machine's step. Like the IPv4 path it must not
// allocate.
func BenchmarkHotPathReceiveIPv6(b *testing.B) {
	local, peer := netip.MustParseAddr("fe80::12"), netip.MustParseAddr("fe80::11")
	vip := netip.MustParseAddr("fd00:18::100")
	c := config.Instance{
		Name: "web6", Interface: "eth0", VRID: 51, Priority: 100, Version: 3,
		AdvertInterval: 10 * time.Millisecond, Preempt: true,
		VIPs: []config.VIP{{Address: netip.PrefixFrom(vip, 128)}},
		GARP: config.GARP{Repeat: 5, Interval: time.Second},
	}
	ifc := &iface{name: "eth0", index: 2, primary: local, up: true}
	in := newInstance(c, ifc)
	ifc.byVRID[c.VRID] = in
	ifc.insts = append(ifc.insts, in)
	now := time.Unix(1_700_000_000, 0)
	in.m.Step(Event{Kind: EventStartup}, now)
	if in.m.State() != StateBackup {
		b.Fatalf("start-up: state %v, want backup", in.m.State())
	}
	peerAd := Advert{Version: 3, VRID: 51, Priority: 150, Interval: 10 * time.Millisecond, Addresses: []netip.Addr{vip}}
	wire, err := peerAd.AppendMarshalIPv6(nil, peer, GroupV6)
	if err != nil {
		b.Fatal(err)
	}
	var rx Advert
	b.ReportAllocs()
	b.SetBytes(int64(len(wire)))
	for b.Loop() {
		now = now.Add(10 * time.Millisecond)
		if err := rx.UnmarshalIPv6(wire, peer, GroupV6); err != nil {
			b.Fatal(err)
		}
		if r := in.validate(&rx); r != DropNone {
			b.Fatal(r)
		}
		if !in.sameAddresses(rx.Addresses) {
			b.Fatal("address list differs")
		}
		out := in.m.Step(Event{Kind: EventAdvert, From: peer, Priority: rx.Priority, Interval: rx.Interval}, now)
		if out.Transition || out.Actions != 0 {
			b.Fatalf("advert in backup: %+v", out)
		}
	}
	if in.m.State() != StateBackup {
		b.Fatalf("state %v, want backup", in.m.State())
	}
}
