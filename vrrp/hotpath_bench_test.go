package vrrp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/vipd/vipd/config"
)

// The per-advert hot path: what vipd does for every advertisement it
// receives as a backup and for every one it sends as a master. Both run
// tens of thousands of times a second with 255 instances at 10 ms adverts,
// so they should not allocate. Run with
//
//	go test ./vrrp -run '^$' -bench HotPath -benchmem

var (
	hotLocal = netip.MustParseAddr("198.18.0.12") // the benchmarked node
	hotPeer  = netip.MustParseAddr("198.18.0.11") // the master it hears
)

// hotPathInstance returns an instance on an interface whose primary
// address is hotLocal, with priority prio, VRRPv3, 10 ms adverts and one
// VIP, its machine started (a backup).
func hotPathInstance(b *testing.B, prio uint8) *instance {
	b.Helper()
	c := config.Instance{
		Name:           "web",
		Interface:      "eth0",
		VRID:           51,
		Priority:       prio,
		Version:        3,
		AdvertInterval: 10 * time.Millisecond,
		Preempt:        true,
		VIPs:           []config.VIP{{Address: netip.MustParsePrefix("198.18.0.100/32")}},
		GARP:           config.GARP{Repeat: 5, Interval: time.Second},
	}
	ifc := &iface{name: "eth0", index: 2, primary: hotLocal, up: true}
	in := newInstance(c, ifc)
	ifc.byVRID[c.VRID] = in
	ifc.insts = append(ifc.insts, in)
	in.m.Step(Event{Kind: EventStartup}, time.Unix(1_700_000_000, 0))
	if in.m.State() != StateBackup {
		b.Fatalf("start-up: state %v, want backup", in.m.State())
	}
	return in
}

// BenchmarkHotPathReceive is one advert from the master arriving at a
// backup: parse (Unmarshal with the checksum), the instance's checks
// (validate, and the VIP list comparison that counts config drift), and
// the state machine's step, which restarts the Master_Down_Timer.
func BenchmarkHotPathReceive(b *testing.B) {
	in := hotPathInstance(b, 100)
	peerAd := Advert{Version: 3, VRID: 51, Priority: 150, Interval: 10 * time.Millisecond,
		Addresses: []netip.Addr{netip.MustParseAddr("198.18.0.100")}}
	wire, err := peerAd.AppendMarshal(nil, ChecksumPseudoHeader, hotPeer, GroupV4)
	if err != nil {
		b.Fatal(err)
	}
	var rx Advert // the reader's reused parse target, as Node.rxAd
	now := time.Unix(1_700_000_000, 0)
	b.ReportAllocs()
	b.SetBytes(int64(len(wire)))
	for b.Loop() {
		now = now.Add(10 * time.Millisecond)
		if _, err := rx.Unmarshal(wire, hotPeer, GroupV4); err != nil {
			b.Fatal(err)
		}
		if r := in.validate(&rx); r != DropNone {
			b.Fatal(r)
		}
		if !in.sameAddresses(rx.Addresses) {
			b.Fatal("address list differs")
		}
		out := in.m.Step(Event{Kind: EventAdvert, From: hotPeer, Priority: rx.Priority, Interval: rx.Interval}, now)
		if out.Transition || out.Actions != 0 {
			b.Fatalf("advert in backup: %+v", out)
		}
	}
	if in.m.State() != StateBackup {
		b.Fatalf("state %v, want backup", in.m.State())
	}
}

// BenchmarkHotPathSend is a master's Adver_Timer firing: the machine's
// timer step, which asks for an advert, and marshalling that advert (the
// instance's advert method: Advert built from the instance and
// AppendMarshal into its reused buffer, checksum included).
func BenchmarkHotPathSend(b *testing.B) {
	in := hotPathInstance(b, 150)
	now := in.m.Deadline()
	if out := in.m.Step(Event{Kind: EventTimer}, now); in.m.State() != StateMaster || !out.Actions.Has(ActSendAdvert) {
		b.Fatalf("master-down timer: state %v actions %b, want master sending", in.m.State(), out.Actions)
	}
	prio := in.m.Config().Priority
	b.ReportAllocs()
	for b.Loop() {
		now = in.m.Deadline()
		out := in.m.Step(Event{Kind: EventTimer}, now)
		if !out.Actions.Has(ActSendAdvert) {
			b.Fatalf("adver timer: actions %b, want send", out.Actions)
		}
		msg, err := in.advert(prio, GroupV4)
		if err != nil {
			b.Fatal(err)
		}
		if len(msg) != advertHeaderLen+4 {
			b.Fatalf("advert of %d bytes", len(msg))
		}
	}
}
