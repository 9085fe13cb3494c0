package vrrp

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

// healPair6 is healPair on hosts with link-locals (a fe80::1 at 150, b
// fe80::2 at 100), instance web with vips.
func healPair6(t *testing.T, vips string) (s *simNet, a, b *simNode, yield time.Time) {
	s = newSimNet(t)
	a = s.host6("a", "10.0.0.1", "fe80::1")
	b = s.host6("b", "10.0.0.2", "fe80::2")
	a.start(s.config("state_dir: " + t.TempDir() + "\n" + sim6Config(150, vips)))
	b.start(s.config("state_dir: " + t.TempDir() + "\n" + sim6Config(100, vips)))
	s.run(4 * time.Second)
	a.expect("web", StateMaster)
	s.cut = true
	s.run(2 * time.Second)
	a.expect("web", StateMaster)
	b.expect("web", StateMaster)
	s.cut = false
	s.run(2 * time.Second)
	a.expect("web", StateMaster)
	b.expect("web", StateBackup)
	return s, a, b, b.became("web", StateBackup)
}

// expectAnnouncedAt checks that b made one announcement at a's MAC, of
// want on eth0, within one advert interval of its yield.
func expectAnnouncedAt(t *testing.T, s *simNet, a, b *simNode, yield time.Time, want ...string) {
	t.Helper()
	got := atMACAnnounces(s, b)
	if len(got) != 1 {
		t.Fatalf("b's announcements at another MAC: %+v, want one", got)
	}
	var addrs []netip.Addr
	for _, w := range want {
		addrs = append(addrs, netip.MustParseAddr(w))
	}
	an := got[0]
	mac := a.links["eth0"].MAC.String()
	if an.mac != mac || an.link != "eth0" || !slices.Equal(an.addrs, addrs) {
		t.Errorf("b announced %v at %s on %s, want %v at a's %s on eth0", an.addrs, an.mac, an.link, addrs, mac)
	}
	if d := an.at.Sub(yield); d < 0 || d > 100*time.Millisecond+2*simDelay {
		t.Errorf("b announced %v after it yielded, want within one advert interval", d)
	}
}

// Over IPv6 too, the master that yields at the heal learns the winner's
// MAC from the winner's next advert (from its link-local, through the
// learner's kernel filter) and announces the IPv6 VIP at it, once.
func TestHealIPv6AnnouncesVIPAtNewMastersMAC(t *testing.T) {
	s, a, b, yield := healPair6(t, "["+sim6VIP+"]")
	expectAnnouncedAt(t, s, a, b, yield, sim6VIP)
	if b.has(sim6VIP) || !a.has(sim6VIP) {
		t.Errorf("VIP on a %v, on b %v; want on a only", a.has(sim6VIP), b.has(sim6VIP))
	}
	if !b.logs.has("announced the VIPs at the new master's MAC") {
		t.Errorf("b's log does not say it announced at the new master's MAC:\n%s", b.logs)
	}
	if got := b.inst("web").count.GARPSent; got == 0 {
		t.Error("b counted no announcement frames")
	}
}

// An instance with VIPs of both families announces at the winner's MAC
// only those of the advert's family (the winner's advert lists them); the
// other family's, not advertised, are left to the winner, which announces
// all its VIPs when it hears the loser's advert (reassert.go) — both ways
// round.
func TestHealDualStackAnnouncesAdvertisedFamilyAtMAC(t *testing.T) {
	for _, c := range []struct {
		name, vips, advertised, other string
	}{
		{"ipv4-instance", "[" + scnVIP + ", {address: " + sim6VIP + ", advertise: false}]", scnVIP, sim6VIP},
		{"ipv6-instance", "[" + sim6VIP + ", {address: " + scnVIP + ", advertise: false}]", sim6VIP, scnVIP},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, a, b, yield := healPair6(t, c.vips)
			expectAnnouncedAt(t, s, a, b, yield, c.advertised)
			for _, v := range []string{c.advertised, c.other} {
				if b.has(v) || !a.has(v) {
					t.Errorf("%s on a %v, on b %v; want on a only", v, a.has(v), b.has(v))
				}
			}
			// The winner announced the other family's VIP itself as the
			// split ended (b's last advert as master), at its own MAC.
			if s.announced(a, c.other, yield.Add(-time.Second)) == 0 {
				t.Errorf("a did not announce %s as the split ended", c.other)
			}
		})
	}
}
