package vrrp

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/vip"
)

// addGlobal6 gives h's eth0 the IPv6 address a (a /64) besides its
// link-local, as the kernel lists it: after the ones already there.
func addGlobal6(h *simNode, a string) {
	h.addrs[2] = append(h.addrs[2], vip.Addr{Prefix: netip.MustParsePrefix(a + "/64")})
}

// uni6Config is an IPv6 instance (VRID 51, the IPv6 VIP) with
// unicast_peers, and more keys.
func uni6Config(prio int, peers string, extra ...string) string {
	return scnConfig(scnInstance("web", 51, prio, append([]string{"vips: [" + sim6VIP + "]", "unicast_peers: [" + peers + "]"}, extra...)...))
}

// uni6Sent checks every advert h sent since since: IPv6, from src to one
// of peers (never ff02::12), hop limit 255, a VRRPv3 message checksummed
// over that pseudo-header and listing the VIP; it returns how many went to
// each peer.
func uni6Sent(t *testing.T, s *simNet, h *simNode, since time.Time, src netip.Addr, peers ...netip.Addr) map[netip.Addr]int {
	t.Helper()
	to := map[netip.Addr]int{}
	for _, f := range s.sent {
		if f.from != h.name || f.at.Before(since) {
			continue
		}
		if !f.six || f.src != src || !slices.Contains(peers, f.dst) || f.hops != HopLimit {
			t.Fatalf("%s sent %v → %v (IPv6 %v, hop limit %d), want IPv6 from %v to one of %v, hop limit 255", h.name, f.src, f.dst, f.six, f.hops, src, peers)
		}
		var ad Advert
		if err := ad.UnmarshalIPv6(f.data, f.src, f.dst); err != nil {
			t.Fatalf("%s's advert to %v does not parse over IPv6: %v", h.name, f.dst, err)
		}
		if ad.Version != 3 || ad.VRID != 51 || !slices.Equal(ad.Addresses, []netip.Addr{netip.MustParseAddr(sim6VIP)}) {
			t.Fatalf("%s's advert %+v", h.name, ad)
		}
		to[f.dst]++
	}
	return to
}

// An IPv6 pair with unicast_peers and no source_address: each advertises
// to its peer's address from its interface's first global address (the
// one the peer lists), not from the link-local nor to ff02::12, with hop
// limit 255; each accepts the other's adverts; an advert from an address
// not listed (another router's global address, or the peer's own
// link-local) is dropped as not_peer and does not count as a master; the
// backup takes over when the master goes, and then advertises to it.
func TestScenarioIPv6UnicastPeers(t *testing.T) {
	s := newSimNet(t)
	a := s.host6("a", "10.0.0.1", "fe80::1")
	b := s.host6("b", "10.0.0.2", "fe80::2")
	addGlobal6(a, "fd00:18::11")
	addGlobal6(b, "fd00:18::12")
	addGlobal6(b, "fd00:18::22") // a second one: the first is the source
	ga, gb := netip.MustParseAddr("fd00:18::11"), netip.MustParseAddr("fd00:18::12")
	a.start(s.config(uni6Config(150, "fd00:18::12")))
	b.start(s.config(uni6Config(100, "fd00:18::11")))
	s.run(2 * time.Second)
	a.expect("web", StateMaster)
	b.expect("web", StateBackup)
	scnHolders(t, s, sim6VIP, "a")
	if got := a.inst("web").source(); got != ga {
		t.Fatalf("a advertises from %v, want its first global address %v", got, ga)
	}
	if to := uni6Sent(t, s, a, simT0, ga, gb); to[gb] < 15 {
		t.Fatalf("a sent %d adverts to %v in 2 s at 100 ms", to[gb], gb)
	}
	in := b.inst("web")
	if in.count.AdvertsReceived < 15 || in.count.Dropped != [numDropReasons]uint64{} {
		t.Fatalf("b accepted %d adverts, dropped %v; want them all and no drop", in.count.AdvertsReceived, in.count.Dropped)
	}
	if st := b.n.status().Instances[0]; st.SourceAddr != gb || st.MasterAddr != ga {
		t.Errorf("b's status: source %v, master %v; want %v and %v", st.SourceAddr, st.MasterAddr, gb, ga)
	}

	// Adverts from addresses b does not list, at a higher priority and
	// sent to b's address with hop limit 255: dropped as not_peer.
	for i, from := range []netip.Addr{netip.MustParseAddr("fd00:18::99"), netip.MustParseAddr("fe80::1")} {
		ad := Advert{Version: 3, VRID: 51, Priority: 200, Interval: 100 * time.Millisecond, Addresses: []netip.Addr{netip.MustParseAddr(sim6VIP)}}
		msg, err := ad.AppendMarshalIPv6(nil, from, gb)
		if err != nil {
			t.Fatal(err)
		}
		for j := range 5 {
			s.send(simFrame{at: s.now.Add(time.Duration(i*5+j) * 10 * time.Millisecond), to: b, link: "eth0", data: msg, six: true, src: from, dst: gb, hops: HopLimit})
		}
	}
	s.run(time.Second)
	if got := in.count.Dropped[DropNotPeer]; got != 10 {
		t.Fatalf("b dropped %d adverts from unlisted addresses as %v, want 10 (drops %v)", got, DropNotPeer, in.count.Dropped)
	}
	if st := b.n.status().Instances[0]; st.MasterAddr != ga {
		t.Fatalf("b takes %v as the master after adverts from unlisted addresses, want %v", st.MasterAddr, ga)
	}

	// The master goes: b takes over within Master_Down_Interval and
	// advertises to a's address from its own.
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
	if to := uni6Sent(t, s, b, simT0, gb, ga); to[ga] < 5 {
		t.Fatalf("b sent %d adverts to %v after taking over", to[ga], ga)
	}
}

// With source_address, IPv6 unicast adverts come from it; the peer lists
// that address, accepts them, and a higher priority preempts.
func TestScenarioIPv6UnicastSourceAddress(t *testing.T) {
	s := newSimNet(t)
	a := s.host6("a", "10.0.0.1", "fe80::1")
	b := s.host6("b", "10.0.0.2", "fe80::2")
	addGlobal6(a, "fd00:18::11")
	addGlobal6(a, "fd00:18::21")
	addGlobal6(b, "fd00:18::12")
	src, gb := netip.MustParseAddr("fd00:18::21"), netip.MustParseAddr("fd00:18::12")
	b.start(s.config(uni6Config(100, "fd00:18::21")))
	s.run(time.Second)
	b.expect("web", StateMaster)
	a.start(s.config(uni6Config(150, "fd00:18::12", "source_address: fd00:18::21")))
	t0 := s.now
	s.run(2 * time.Second)
	a.expect("web", StateMaster)
	b.expect("web", StateBackup)
	scnHolders(t, s, sim6VIP, "a")
	if to := uni6Sent(t, s, a, t0, src, gb); to[gb] < 15 {
		t.Fatalf("a sent %d adverts to %v in 2 s", to[gb], gb)
	}
	if in := b.inst("web"); in.count.AdvertsReceived < 15 || in.count.Dropped != [numDropReasons]uint64{} {
		t.Fatalf("b accepted %d adverts, dropped %v", in.count.AdvertsReceived, in.count.Dropped)
	}
	if st := a.n.status().Instances[0]; st.SourceAddr != src {
		t.Errorf("a's status shows the source %v, want %v", st.SourceAddr, src)
	}
}

// Unicast peers that are all link-locals: adverts come from the
// link-local, which the peers list.
func TestScenarioIPv6UnicastLinkLocalPeers(t *testing.T) {
	s := newSimNet(t)
	a := s.host6("a", "10.0.0.1", "fe80::1")
	b := s.host6("b", "10.0.0.2", "fe80::2")
	addGlobal6(a, "fd00:18::11")
	addGlobal6(b, "fd00:18::12")
	a.start(s.config(uni6Config(150, "fe80::2")))
	b.start(s.config(uni6Config(100, "fe80::1")))
	s.run(2 * time.Second)
	a.expect("web", StateMaster)
	b.expect("web", StateBackup)
	ll := netip.MustParseAddr("fe80::1")
	if to := uni6Sent(t, s, a, simT0, ll, netip.MustParseAddr("fe80::2")); len(to) != 1 {
		t.Fatalf("a's adverts went to %v", to)
	}
	if in := b.inst("web"); in.count.AdvertsReceived < 15 || in.count.Dropped != [numDropReasons]uint64{} {
		t.Fatalf("b accepted %d adverts, dropped %v", in.count.AdvertsReceived, in.count.Dropped)
	}
}

// An IPv6 instance with unicast peers on an interface without a global
// address (and without source_address) goes to fault and says why; once
// one appears it runs, from that address. A VIP or a tentative address
// is never taken as the source.
func TestScenarioIPv6UnicastNoGlobalAddressFault(t *testing.T) {
	s := newSimNet(t)
	a := s.host6("a", "10.0.0.1", "fe80::1")
	a.addrs[2] = append(a.addrs[2], vip.Addr{Prefix: netip.MustParsePrefix("fd00:18::11/64"), Tentative: true})
	a.start(s.config(uni6Config(150, "fd00:18::12")))
	s.run(time.Second)
	a.expect("web", StateFault)
	if len(a.history) == 0 || a.history[len(a.history)-1].Reason != ReasonNoGlobalAddress {
		t.Fatalf("history %+v, want the last transition for %v", a.history, ReasonNoGlobalAddress)
	}
	if ReasonNoGlobalAddress.String() != "no_global_address" {
		t.Fatalf("reason named %q", ReasonNoGlobalAddress)
	}
	if !a.logs.has("no usable global IPv6 address") {
		t.Fatalf("the log does not say why:\n%s", a.logs)
	}
	if a.has(sim6VIP) {
		t.Fatal("the VIP is on while in fault")
	}
	ga := netip.MustParseAddr("fd00:18::31")
	addGlobal6(a, ga.String())
	a.events = append(a.events, vip.Change{Index: 2, Addr: ga, Added: true})
	s.run(time.Second)
	a.expect("web", StateMaster)
	if !a.has(sim6VIP) {
		t.Fatal("master without its VIP")
	}
	// The VIP, now on eth0 too, does not become the source when it is
	// listed first.
	slices.SortFunc(a.addrs[2], func(x, y vip.Addr) int {
		return map[bool]int{true: -1, false: 1}[x.Prefix.Addr() == netip.MustParseAddr(sim6VIP)]
	})
	a.events = append(a.events, vip.Change{Index: 2, Addr: ga, Added: true})
	t0 := s.now
	s.run(500 * time.Millisecond)
	if to := uni6Sent(t, s, a, t0, ga, netip.MustParseAddr("fd00:18::12")); len(to) != 1 {
		t.Fatalf("a's adverts went to %v", to)
	}
}

// A listed peer's IPv6 unicast adverts with hop limit 64 (keepalived's
// default without unicast_ttl) are dropped as ttl, and one from a
// link-local that is not listed (keepalived's default without
// unicast_src_ip) as not_peer; each time the log says what the peer
// must set, once a minute at most.
func TestScenarioIPv6UnicastKeepalivedDefaultsExplained(t *testing.T) {
	s := newSimNet(t)
	b := s.host6("b", "10.0.0.2", "fe80::2")
	addGlobal6(b, "fd00:18::12")
	gb := netip.MustParseAddr("fd00:18::12")
	b.start(s.config(uni6Config(100, "fd00:18::11")))
	ad := Advert{Version: 3, VRID: 51, Priority: 200, Interval: 100 * time.Millisecond, Addresses: []netip.Addr{netip.MustParseAddr(sim6VIP)}}
	for i, tc := range []struct {
		from netip.Addr
		hops int
	}{{netip.MustParseAddr("fd00:18::11"), 64}, {netip.MustParseAddr("fe80::1"), HopLimit}} {
		msg, err := ad.AppendMarshalIPv6(nil, tc.from, gb)
		if err != nil {
			t.Fatal(err)
		}
		for j := range 10 {
			s.send(simFrame{at: s.now.Add(time.Duration(i*10+j) * 10 * time.Millisecond), to: b, link: "eth0", data: msg, six: true, src: tc.from, dst: gb, hops: tc.hops})
		}
	}
	s.run(2 * time.Second)
	in := b.inst("web")
	if in.count.Dropped[DropTTL] != 10 || in.count.Dropped[DropNotPeer] != 10 || in.count.AdvertsReceived != 0 {
		t.Fatalf("dropped %v, accepted %d; want 10 as ttl, 10 as not_peer, none accepted", in.count.Dropped, in.count.AdvertsReceived)
	}
	b.expect("web", StateMaster)
	for _, want := range []string{"unicast_ttl 255", "unicast_src_ip"} {
		if n := strings.Count(b.logs.String(), want); n != 1 {
			t.Errorf("the log names %q %d times, want once:\n%s", want, n, b.logs)
		}
	}
}
