package vrrp

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/vip"
)

// Scenarios for where addresses go: source_address, VIPs on another
// interface with a label, and instances without VIPs.

const scnOtherVIP = "198.51.100.30"

// scnOtherVIPs puts scnOtherVIP on eth1 with a label, and scnVIP on eth0.
const scnOtherVIPs = `vips: [{address: ` + scnOtherVIP + `, interface: eth1, label: "eth1:web"}, ` + scnVIP + `]`

// onLink reports whether host h has address a on the link with index.
func (h *simNode) onLink(index int, a string) bool {
	return slices.ContainsFunc(h.addrs[index], func(x vip.Addr) bool { return x.Prefix.Addr() == netip.MustParseAddr(a) })
}

// announcedOn counts the announcements of a by h on link since since.
func (s *simNet) announcedOn(h *simNode, link, a string, since time.Time) int {
	n := 0
	for _, an := range s.anns {
		if an.node == h.name && an.link == link && !an.at.Before(since) && slices.Contains(an.addrs, netip.MustParseAddr(a)) {
			n++
		}
	}
	return n
}

func scnStatus(t *testing.T, h *simNode) InstanceStatus {
	t.Helper()
	st := h.n.status()
	if len(st.Instances) == 0 {
		t.Fatal("no instances in status")
	}
	return st.Instances[0]
}

// Adverts name source_address, not the primary address: the peer sees it
// as the master's address, the tie-break uses it, and a unicast peer that
// lists it accepts the adverts.
func TestScenarioSourceAddress(t *testing.T) {
	for _, unicast := range []bool{false, true} {
		s := newSimNet(t)
		a := s.host("a", "10.0.0.1")
		b := s.host("b", "10.0.0.2")
		a.addrs[2] = append(a.addrs[2], vip.Addr{Prefix: netip.MustParsePrefix("10.0.0.21/24"), Secondary: true})
		var ea, eb []string
		if unicast {
			ea, eb = []string{"unicast_peers: [10.0.0.2]"}, []string{"unicast_peers: [10.0.0.21]"}
		}
		// Equal priorities: the higher address wins, and a's is 10.0.0.21
		// only through source_address (10.0.0.1 < 10.0.0.2).
		a.start(s.config(scnConfig(scnInstance("web", 51, 100, append(ea, "source_address: 10.0.0.21")...))))
		b.start(s.config(scnConfig(scnInstance("web", 51, 100, eb...))))
		s.run(2 * time.Second)
		a.expect("web", StateMaster)
		b.expect("web", StateBackup)
		if got := b.inst("web").m.MasterAddr(); got != netip.MustParseAddr("10.0.0.21") {
			t.Errorf("unicast %v: b sees the master at %v, want 10.0.0.21", unicast, got)
		}
		if d := b.inst("web").count.Dropped; d[DropNotPeer] != 0 || d[DropOwnAddress] != 0 {
			t.Errorf("unicast %v: b dropped a's adverts: %v", unicast, d)
		}
		st := scnStatus(t, a)
		if st.SourceAddr != netip.MustParseAddr("10.0.0.21") || st.PrimaryAddr != netip.MustParseAddr("10.0.0.1") {
			t.Errorf("unicast %v: status source %v primary %v", unicast, st.SourceAddr, st.PrimaryAddr)
		}
		if st := scnStatus(t, b); st.SourceAddr != st.PrimaryAddr || st.SourceAddr != netip.MustParseAddr("10.0.0.2") {
			t.Errorf("unicast %v: b's source %v, want its primary", unicast, st.SourceAddr)
		}
	}
}

// An advert that names our own source_address is our own.
func TestScenarioSourceAddressOwnAdvertDropped(t *testing.T) {
	s := newSimNet(t)
	a := s.host("a", "10.0.0.1")
	a.addrs[2] = append(a.addrs[2], vip.Addr{Prefix: netip.MustParsePrefix("10.0.0.21/24"), Secondary: true})
	a.start(s.config(scnConfig(scnInstance("web", 51, 100, "source_address: 10.0.0.21"))))
	s.run(time.Second)
	s.inject(s.now, netip.MustParseAddr("10.0.0.21"), Advert{Version: 3, VRID: 51, Priority: 200, Interval: 100 * time.Millisecond,
		Addresses: []netip.Addr{netip.MustParseAddr(scnVIP)}})
	s.run(time.Second)
	a.expect("web", StateMaster)
	if got := a.inst("web").count.Dropped[DropOwnAddress]; got != 1 {
		t.Errorf("own-address drops %d, want 1", got)
	}
}

// source_address must be an address of the instance's interface, at start
// and at reload.
func TestScenarioSourceAddressNotOnInterfaceRefused(t *testing.T) {
	s := newSimNet(t)
	a := s.host("a", "10.0.0.1")
	// 10.0.1.1 is eth1's, not eth0's.
	err := a.create(s.config(scnConfig(scnInstance("web", 51, 100, "source_address: 10.0.1.1"))))
	if err == nil || !strings.Contains(err.Error(), "sim.yaml:3: instance web: source_address 10.0.1.1 is not an address of eth0") {
		t.Fatalf("start: %v, want a refusal", err)
	}
	if a.open["eth0"] != nil {
		t.Error("the refused start opened eth0")
	}
	s2, a2, _ := scnPair(t, 150, 100)
	err = a2.n.reload(s2.config(scnConfig(scnInstance("web", 51, 150, "source_address: 10.0.0.99"))), s2.now)
	if err == nil || !strings.Contains(err.Error(), "source_address 10.0.0.99 is not an address of eth0") {
		t.Fatalf("reload: %v, want a refusal", err)
	}
	if a2.inst("web").source() != netip.MustParseAddr("10.0.0.1") {
		t.Error("the refused reload changed the source")
	}
}

// A VIP with an interface of its own goes on that interface with its
// label, only while master, is announced there, is restored there, and
// carrier loss there is no fault.
func TestScenarioVIPOnOtherInterface(t *testing.T) {
	s, a, b := scnPair(t, 150, 100, scnOtherVIPs)
	a.expect("web", StateMaster)
	if !a.onLink(3, scnOtherVIP) || a.onLink(2, scnOtherVIP) || !a.onLink(2, scnVIP) || a.onLink(3, scnVIP) {
		t.Fatalf("a's addresses: eth0 %v, eth1 %v", a.addrs[2], a.addrs[3])
	}
	if got := a.labels[netip.MustParsePrefix(scnOtherVIP+"/32")]; got != "eth1:web" {
		t.Errorf("label %q, want eth1:web", got)
	}
	if b.has(scnOtherVIP) || b.has(scnVIP) {
		t.Error("the backup holds VIPs")
	}
	if s.announcedOn(a, "eth1", scnOtherVIP, simT0) == 0 || s.announcedOn(a, "eth0", scnOtherVIP, simT0) != 0 {
		t.Errorf("announcements of %s: eth1 %d, eth0 %d; want some on eth1 only", scnOtherVIP,
			s.announcedOn(a, "eth1", scnOtherVIP, simT0), s.announcedOn(a, "eth0", scnOtherVIP, simT0))
	}
	if s.announcedOn(a, "eth0", scnVIP, simT0) == 0 || s.announcedOn(a, "eth1", scnVIP, simT0) != 0 {
		t.Error("the VIP on eth0 was not announced on eth0 only")
	}
	if a.open["eth1"] == nil || !a.open["eth1"].announceOnly {
		t.Error("eth1 is not opened for announcements only")
	}
	st := scnStatus(t, a)
	if v := st.VIPs[0]; v.Interface != "eth1" || v.Label != "eth1:web" || !v.Present {
		t.Errorf("status of the VIP on eth1: %+v", v)
	}
	if v := st.VIPs[1]; v.Interface != "eth0" || v.Label != "" {
		t.Errorf("status of the VIP on eth0: %+v", v)
	}

	// Removed behind vipd's back from eth1: put back there.
	ip := netip.MustParseAddr(scnOtherVIP)
	a.addrs[3] = slices.DeleteFunc(a.addrs[3], func(x vip.Addr) bool { return x.Prefix.Addr() == ip })
	a.events = append(a.events, vip.Change{Index: 3, Addr: ip})
	s.run(100 * time.Millisecond)
	if !a.onLink(3, scnOtherVIP) || a.inst("web").count.VIPsRestored != 1 {
		t.Fatalf("not restored on eth1 (restored %d)", a.inst("web").count.VIPsRestored)
	}

	// eth1 is not tracked: losing its carrier is no fault.
	a.setLink("eth1", false, nil)
	s.run(time.Second)
	a.expect("web", StateMaster)
	back := s.now
	a.setLink("eth1", true, nil)
	s.run(10 * time.Millisecond)
	if s.announcedOn(a, "eth1", scnOtherVIP, back) == 0 {
		t.Error("not announced again on eth1 when it had carrier again")
	}

	// A graceful stop hands both over.
	a.stop()
	s.run(time.Second)
	b.expect("web", StateMaster)
	if a.has(scnOtherVIP) || a.has(scnVIP) {
		t.Error("a kept VIPs after stopping")
	}
	if !b.onLink(3, scnOtherVIP) || !b.onLink(2, scnVIP) {
		t.Errorf("b's addresses: eth0 %v, eth1 %v", b.addrs[2], b.addrs[3])
	}
}

// A VIP already on its other interface without vipd's mark refuses the
// start, as on the instance's own; so does a VIP interface that does not
// exist.
func TestScenarioVIPOtherInterfaceRefused(t *testing.T) {
	s := newSimNet(t)
	a := s.host("a", "10.0.0.1")
	a.addrs[3] = append(a.addrs[3], vip.Addr{Prefix: netip.MustParsePrefix(scnOtherVIP + "/32")})
	err := a.create(s.config(scnConfig(scnInstance("web", 51, 100, scnOtherVIPs))))
	if err == nil || !strings.Contains(err.Error(), "VIP "+scnOtherVIP+"/32 is already on eth1 without vipd's mark") {
		t.Fatalf("start: %v, want a refusal", err)
	}
	if !a.onLink(3, scnOtherVIP) {
		t.Error("the foreign address was touched")
	}
	err = a.create(s.config(scnConfig(scnInstance("web", 51, 100, "vips: [{address: "+scnOtherVIP+", interface: eth9}]"))))
	if err == nil || !strings.Contains(err.Error(), "VIP "+scnOtherVIP+"/32 of instance web: interface eth9") {
		t.Fatalf("start: %v, want a refusal", err)
	}
	// A stale VIP that a crashed run left on eth1 goes at start.
	a.addrs[3][len(a.addrs[3])-1].Owned = true
	a.start(s.config(scnConfig(scnInstance("web", 51, 100, scnOtherVIPs))))
	if a.inst("web").m.State() == StateMaster {
		t.Fatal("master at once")
	}
	if a.onLink(3, scnOtherVIP) {
		t.Error("the stale VIP on eth1 stayed")
	}
}

// Reload moves a VIP between interfaces on a master, adds a VIP-only link
// and closes it when nothing uses it any more; a missing VIP interface
// refuses the reload.
func TestScenarioReloadVIPInterface(t *testing.T) {
	s, a, _ := scnPair(t, 150, 100)
	cfg := func(extra string) string { return scnConfig(scnInstance("web", 51, 150, extra)) }
	if err := a.n.reload(s.config(cfg(scnOtherVIPs)), s.now); err != nil {
		t.Fatal(err)
	}
	s.run(10 * time.Millisecond)
	if !a.onLink(3, scnOtherVIP) || !a.onLink(2, scnVIP) {
		t.Fatalf("after adding a VIP on eth1: eth0 %v, eth1 %v", a.addrs[2], a.addrs[3])
	}
	// scnVIP moves to eth1 with a label.
	if err := a.n.reload(s.config(cfg(`vips: [{address: `+scnVIP+`, interface: eth1, label: "eth1:x"}]`)), s.now); err != nil {
		t.Fatal(err)
	}
	s.run(10 * time.Millisecond)
	if a.onLink(2, scnVIP) || !a.onLink(3, scnVIP) || a.onLink(3, scnOtherVIP) {
		t.Fatalf("after moving: eth0 %v, eth1 %v", a.addrs[2], a.addrs[3])
	}
	if got := a.labels[netip.MustParsePrefix(scnVIP+"/32")]; got != "eth1:x" {
		t.Errorf("label %q", got)
	}
	err := a.n.reload(s.config(cfg(`vips: [{address: `+scnVIP+`, interface: eth9}]`)), s.now)
	if err == nil || !strings.Contains(err.Error(), "interface eth9") {
		t.Fatalf("reload: %v, want a refusal", err)
	}
	if !a.onLink(3, scnVIP) {
		t.Error("the refused reload moved the VIP")
	}
	// Back to eth0 only: eth1 is closed.
	if err := a.n.reload(s.config(cfg("vips: ["+scnVIP+"]")), s.now); err != nil {
		t.Fatal(err)
	}
	s.run(10 * time.Millisecond)
	if !a.onLink(2, scnVIP) || a.onLink(3, scnVIP) {
		t.Fatalf("after moving back: eth0 %v, eth1 %v", a.addrs[2], a.addrs[3])
	}
	if !a.open["eth1"].closed || len(a.n.ifaces) != 1 {
		t.Errorf("eth1 still open (%d links)", len(a.n.ifaces))
	}
	a.expect("web", StateMaster)
}

// A VIP-only link that an instance comes to advertise on is opened for
// adverts too.
func TestScenarioReloadVIPLinkGetsInstance(t *testing.T) {
	s, a, _ := scnPair(t, 150, 100, scnOtherVIPs)
	both := scnConfig(scnInstance("web", 51, 150, scnOtherVIPs)) +
		"  - name: db\n    interface: eth1\n    vrid: 52\n    priority: 150\n    advert_interval: 100ms\n    vips: [198.51.100.50]\n"
	if err := a.n.reload(s.config(both), s.now); err != nil {
		t.Fatal(err)
	}
	s.run(2 * time.Second)
	a.expect("db", StateMaster)
	if a.open["eth1"].announceOnly {
		t.Error("eth1 still announce-only")
	}
	if a.inst("db").count.AdvertsSent == 0 || !a.onLink(3, scnOtherVIP) {
		t.Error("db sends no adverts, or web's VIP on eth1 went")
	}
}

// An instance with no VIPs elects, advertises no address, hands over, and
// its status has an empty VIP list.
func TestScenarioNoVIPs(t *testing.T) {
	s, a, b := scnPair(t, 150, 100, "vips: []")
	a.expect("web", StateMaster)
	b.expect("web", StateBackup)
	if n := b.inst("web").count.AddressListMismatch; n != 0 {
		t.Errorf("address list mismatches %d", n)
	}
	if b.inst("web").count.AdvertsReceived == 0 {
		t.Fatal("b received no adverts")
	}
	if len(s.anns) != 0 {
		t.Errorf("announcements without VIPs: %v", s.anns)
	}
	st := scnStatus(t, a)
	if st.VIPs != nil || st.State != StateMaster {
		t.Errorf("status: %+v", st)
	}
	a.stop()
	s.run(time.Second)
	b.expect("web", StateMaster)
}

// A VIP with advertise: false (keepalived's virtual_ipaddress_excluded)
// moves with the master like the others but is not in the adverts, so a
// peer that lists only the advertised ones sees no drift.
func TestScenarioVIPNotAdvertised(t *testing.T) {
	s, a, b := scnPair(t, 150, 100, "vips: ["+scnVIP+", {address: 198.51.100.12, advertise: false}]")
	a.expect("web", StateMaster)
	b.expect("web", StateBackup)
	scnHolders(t, s, scnVIP, "a")
	scnHolders(t, s, "198.51.100.12", "a")
	if s.announced(a, "198.51.100.12", simT0) == 0 {
		t.Error("the VIP left out of the adverts was not announced")
	}
	in := a.inst("web")
	msg, err := in.advert(150, GroupV4)
	if err != nil {
		t.Fatal(err)
	}
	var ad Advert
	if _, err := ad.Unmarshal(msg, in.source(), GroupV4); err != nil {
		t.Fatal(err)
	}
	if want := []netip.Addr{netip.MustParseAddr(scnVIP)}; !slices.Equal(ad.Addresses, want) {
		t.Errorf("advert lists %v, want %v", ad.Addresses, want)
	}
	if n := b.inst("web").count.AddressListMismatch; n != 0 {
		t.Errorf("b counted %d address list mismatches", n)
	}
	st := scnStatus(t, a)
	if len(st.VIPs) != 2 || !st.VIPs[0].Advertised || st.VIPs[1].Advertised {
		t.Errorf("status VIPs: %+v", st.VIPs)
	}
	a.stop()
	s.run(time.Second)
	b.expect("web", StateMaster)
	scnHolders(t, s, "198.51.100.12", "b")
}
