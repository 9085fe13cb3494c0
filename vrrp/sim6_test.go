package vrrp

import (
	"net/netip"
	"slices"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vipd/vipd/vip"
)

// simReceive hands frame f to the Node as its link's socket would: an IPv4
// datagram with its header; an IPv6 one as a raw IPv6 socket reads it,
// with msg_name and the hop limit and destination control messages. A
// socket receives only its own family.
func simReceive(n *Node, ifc *iface, f simFrame) {
	if f.six && !ifc.family.has(FamilyIPv6) || !f.six && !ifc.family.orIPv4().has(FamilyIPv4) {
		return
	}
	if !f.six {
		n.onDatagram(ifc, f.data, f.at)
		return
	}
	sa := unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: f.src.As16()}
	if f.src.IsLinkLocalUnicast() {
		sa.Scope_id = uint32(ifc.index)
	}
	name := unsafe.Slice((*byte)(unsafe.Pointer(&sa)), unix.SizeofSockaddrInet6)
	oob := cmsg6(nil, unix.IPPROTO_IPV6, unix.IPV6_HOPLIMIT, hopLimitData(int32(f.hops)))
	oob = cmsg6(oob, unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, pktinfoData(f.dst, uint32(ifc.index)))
	n.onDatagram6(ifc, f.data, name, oob, f.at)
}

const sim6VIP = "fd00:18::100"

// host6 is a simulated host whose eth0 also has the link-local ll (none
// if "").
func (s *simNet) host6(name, primary, ll string) *simNode {
	h := s.host(name, primary)
	if ll != "" {
		h.addrs[2] = append(h.addrs[2], vip.Addr{Prefix: netip.MustParsePrefix(ll + "/64")})
	}
	return h
}

func sim6Config(prio int, vips string) string {
	return scnConfig(scnInstance("web", 51, prio, "vips: "+vips))
}

// An IPv6 instance elects over IPv6: adverts from the link-local to
// ff02::12 with hop limit 255, carrying the IPv6 VIP, checksummed over the
// IPv6 pseudo-header; the master adds the VIP and announces it; the backup
// takes over when the master goes.
func TestScenarioIPv6Election(t *testing.T) {
	s := newSimNet(t)
	a := s.host6("a", "10.0.0.1", "fe80::1")
	b := s.host6("b", "10.0.0.2", "fe80::2")
	a.start(s.config(sim6Config(150, "["+sim6VIP+"]")))
	b.start(s.config(sim6Config(100, "["+sim6VIP+"]")))
	s.run(2 * time.Second)
	a.expect("web", StateMaster)
	b.expect("web", StateBackup)
	scnHolders(t, s, sim6VIP, "a")
	if a.n.ifaces[0].family != FamilyIPv6 || a.n.ifaces[0].primary6 != netip.MustParseAddr("fe80::1") {
		t.Fatalf("a's eth0: family %v link-local %v, want ipv6 from fe80::1", a.n.ifaces[0].family, a.n.ifaces[0].primary6)
	}
	seen := 0
	for _, f := range s.sent {
		if f.from != "a" {
			continue
		}
		if !f.six || f.src != netip.MustParseAddr("fe80::1") || f.dst != GroupV6 || f.hops != HopLimit {
			t.Fatalf("a sent %+v, want IPv6 from fe80::1 to ff02::12, hop limit 255", f)
		}
		var ad Advert
		if err := ad.UnmarshalIPv6(f.data, f.src, f.dst); err != nil {
			t.Fatalf("a's advert does not parse over IPv6: %v", err)
		}
		if ad.Version != 3 || ad.VRID != 51 || !slices.Equal(ad.Addresses, []netip.Addr{netip.MustParseAddr(sim6VIP)}) {
			t.Fatalf("a's advert %+v", ad)
		}
		seen++
	}
	if seen < 10 {
		t.Fatalf("a sent %d adverts in 2 s at 100 ms", seen)
	}
	if s.announced(a, sim6VIP, simT0) == 0 {
		t.Error("a never announced the IPv6 VIP")
	}
	if got := b.inst("web").count.AdvertsReceived; got < 10 {
		t.Errorf("b accepted %d adverts, want them all (drops: %v)", got, b.inst("web").count.Dropped)
	}
	// The master goes: the backup takes over within Master_Down_Interval.
	a.kill()
	t0 := s.now
	s.run(time.Second)
	b.expect("web", StateMaster)
	if d := b.became("web", StateMaster).Sub(t0); d > 400*time.Millisecond {
		t.Errorf("b took over %v after a went, want within Master_Down_Interval", d)
	}
	if !b.has(sim6VIP) || s.announced(b, sim6VIP, t0) == 0 {
		t.Error("b took over without adding and announcing the IPv6 VIP")
	}
}

// An advert over IPv6 with a hop limit other than 255 was forwarded: it is
// dropped (ttl), and its sender does not count as a master.
func TestScenarioIPv6HopLimitChecked(t *testing.T) {
	s := newSimNet(t)
	b := s.host6("b", "10.0.0.2", "fe80::2")
	b.start(s.config(sim6Config(100, "["+sim6VIP+"]")))
	ad := Advert{Version: 3, VRID: 51, Priority: 200, Interval: 100 * time.Millisecond, Addresses: []netip.Addr{netip.MustParseAddr(sim6VIP)}}
	from := netip.MustParseAddr("fe80::9")
	msg, err := ad.AppendMarshalIPv6(nil, from, GroupV6)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		s.send(simFrame{at: s.now.Add(time.Duration(i) * 100 * time.Millisecond), to: b, link: "eth0", data: msg, six: true, src: from, dst: GroupV6, hops: 64})
	}
	s.run(2 * time.Second)
	in := b.inst("web")
	if in.count.Dropped[DropTTL] != 20 || in.count.AdvertsReceived != 0 {
		t.Fatalf("hop limit 64: dropped %d as ttl, accepted %d; want 20 and 0", in.count.Dropped[DropTTL], in.count.AdvertsReceived)
	}
	b.expect("web", StateMaster)
}

// An IPv6 instance on an interface without a usable link-local goes to
// fault and says why; once one appears it runs.
func TestScenarioIPv6NoLinkLocalFault(t *testing.T) {
	s := newSimNet(t)
	a := s.host6("a", "10.0.0.1", "")
	a.start(s.config(sim6Config(150, "["+sim6VIP+"]")))
	s.run(time.Second)
	a.expect("web", StateFault)
	if len(a.history) == 0 || a.history[len(a.history)-1].Reason != ReasonNoLinkLocal {
		t.Fatalf("history %+v, want the last transition for %v", a.history, ReasonNoLinkLocal)
	}
	if !a.logs.has("no usable IPv6 link-local") {
		t.Fatalf("the log does not say why:\n%s", a.logs)
	}
	if a.has(sim6VIP) {
		t.Fatal("the VIP is on while in fault")
	}
	a.addrs[2] = append(a.addrs[2], vip.Addr{Prefix: netip.MustParsePrefix("fe80::1/64")})
	a.events = append(a.events, vip.Change{Index: 2, Addr: netip.MustParseAddr("fe80::1"), Added: true})
	s.run(time.Second)
	a.expect("web", StateMaster)
	if !a.has(sim6VIP) {
		t.Fatal("master without its VIP")
	}
}

// A dual-stack instance: IPv4 adverts carrying the IPv4 VIP only; the IPv6
// VIP (advertise: false) moves with the master and is announced on its
// link too.
func TestScenarioDualStackInstance(t *testing.T) {
	s := newSimNet(t)
	a := s.host6("a", "10.0.0.1", "fe80::1")
	b := s.host6("b", "10.0.0.2", "fe80::2")
	vips := "[" + scnVIP + ", {address: " + sim6VIP + ", advertise: false}]"
	a.start(s.config(sim6Config(150, vips)))
	b.start(s.config(sim6Config(100, vips)))
	s.run(2 * time.Second)
	a.expect("web", StateMaster)
	scnHolders(t, s, scnVIP, "a")
	scnHolders(t, s, sim6VIP, "a")
	if s.announced(a, sim6VIP, simT0) == 0 || s.announced(a, scnVIP, simT0) == 0 {
		t.Error("a did not announce both VIPs")
	}
	for _, f := range s.sent {
		if f.six {
			t.Fatalf("an IPv4 instance sent over IPv6: %+v", f)
		}
	}
	if got := a.inst("web").advertised; !slices.Equal(got, []netip.Addr{netip.MustParseAddr(scnVIP)}) {
		t.Errorf("advertised %v, want the IPv4 VIP only", got)
	}
	a.kill()
	t0 := s.now
	s.run(time.Second)
	b.expect("web", StateMaster)
	scnHolders(t, s, sim6VIP, "a", "b") // a was killed, not stopped
	if s.announced(b, sim6VIP, t0) == 0 {
		t.Error("b took over without announcing the IPv6 VIP")
	}
}

// IPv4 and IPv6 instances on one interface: the link carries adverts of
// both families, each instance elects in its own, and a takeover moves
// each VIP.
func TestScenarioBothFamiliesOnOneInterface(t *testing.T) {
	s := newSimNet(t)
	a := s.host6("a", "10.0.0.1", "fe80::1")
	b := s.host6("b", "10.0.0.2", "fe80::2")
	cfg := func(prio int) string {
		return scnConfig(scnInstance("four", 51, prio, "vips: ["+scnVIP+"]"), scnInstance("six", 52, prio, "vips: ["+sim6VIP+"]"))
	}
	if fams := ifaceFamilies(s.config(cfg(100))); fams["eth0"] != FamilyBoth {
		t.Fatalf("eth0's family %v, want both", fams["eth0"])
	}
	a.start(s.config(cfg(150)))
	b.start(s.config(cfg(100)))
	s.run(2 * time.Second)
	for _, name := range []string{"four", "six"} {
		a.expect(name, StateMaster)
		b.expect(name, StateBackup)
	}
	scnHolders(t, s, scnVIP, "a")
	scnHolders(t, s, sim6VIP, "a")
	if got := a.inst("six").source(); got != netip.MustParseAddr("fe80::1") {
		t.Errorf("the IPv6 instance advertises from %v, want the link-local", got)
	}
	if got := a.inst("four").source(); got != netip.MustParseAddr("10.0.0.1") {
		t.Errorf("the IPv4 instance advertises from %v, want the primary address", got)
	}
	var four, six int
	for _, f := range s.sent {
		if f.from != "a" {
			continue
		}
		if f.six {
			six++
			if f.data[1] != 52 {
				t.Fatalf("VRID %d over IPv6, want 52", f.data[1])
			}
		} else {
			four++
			if f.data[21] != 51 {
				t.Fatalf("VRID %d over IPv4, want 51", f.data[21])
			}
		}
	}
	if four < 10 || six < 10 {
		t.Fatalf("a sent %d IPv4 and %d IPv6 adverts in 2 s, want both families", four, six)
	}
	for _, name := range []string{"four", "six"} {
		if in := b.inst(name); in.count.AdvertsReceived < 10 || in.count.Dropped != [numDropReasons]uint64{} {
			t.Errorf("b's %s accepted %d adverts, dropped %v", name, in.count.AdvertsReceived, in.count.Dropped)
		}
	}
	a.kill()
	s.run(time.Second)
	b.expect("four", StateMaster)
	b.expect("six", StateMaster)
	if !b.has(scnVIP) || !b.has(sim6VIP) {
		t.Fatal("b took over without both VIPs")
	}
}
