package vip

import (
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

func TestRouterRoutes(t *testing.T) {
	inNewNetns(t, func(_ netns.NsHandle, index int) {
		r, err := NewRouter()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		def := Route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gw: netip.MustParseAddr("198.18.0.1"), LinkIndex: index, Table: 100}
		for i := range 2 { // idempotent
			if err := r.AddRoute(def); err != nil {
				t.Fatalf("add #%d: %v", i+1, err)
			}
		}
		if ok, err := r.HasRoute(def); !ok || err != nil {
			t.Fatalf("HasRoute after add = %v, %v", ok, err)
		}
		owned, err := r.OwnedRoutes()
		if err != nil || len(owned) != 1 || owned[0].Dst != def.Dst || owned[0].Gw != def.Gw || owned[0].Table != 100 {
			t.Fatalf("OwnedRoutes = %+v, %v", owned, err)
		}

		// A reload that changes the gateway replaces vipd's route in place.
		moved := def
		moved.Gw = netip.MustParseAddr("198.18.0.2")
		if err := r.AddRoute(moved); err != nil {
			t.Fatalf("add with another gateway: %v", err)
		}
		if ok, _ := r.HasRoute(moved); !ok {
			t.Fatal("the route was not replaced")
		}
		if ok, _ := r.HasRoute(def); ok {
			t.Fatal("the old gateway is still reported")
		}
		if err := r.RemoveRoute(moved); err != nil {
			t.Fatal(err)
		}
		if ok, _ := r.HasRoute(moved); ok {
			t.Fatal("route still there after remove")
		}
		if err := r.RemoveRoute(moved); err != nil {
			t.Fatalf("removing an absent route: %v", err)
		}

		// A route the administrator added under the same key is not vipd's:
		// neither replaced nor removed.
		hand := &netlink.Route{Dst: &net.IPNet{IP: net.IPv4(198, 18, 9, 0).To4(), Mask: net.CIDRMask(24, 32)},
			Gw: net.IPv4(198, 18, 0, 1).To4(), LinkIndex: index, Table: 100}
		if err := netlink.RouteAdd(hand); err != nil {
			t.Fatal(err)
		}
		theirs := Route{Dst: netip.MustParsePrefix("198.18.9.0/24"), Gw: netip.MustParseAddr("198.18.0.2"), LinkIndex: index, Table: 100}
		if err := r.AddRoute(theirs); !errors.Is(err, ErrNotOurs) {
			t.Errorf("add over the administrator's route: %v, want ErrNotOurs", err)
		}
		if err := r.RemoveRoute(theirs); !errors.Is(err, ErrNotOurs) {
			t.Errorf("remove the administrator's route: %v, want ErrNotOurs", err)
		}
		rs, _ := netlink.RouteListFiltered(unix.AF_INET, &netlink.Route{Table: 100}, netlink.RT_FILTER_TABLE)
		if len(rs) != 1 || !rs[0].Gw.Equal(net.IPv4(198, 18, 0, 1)) {
			t.Errorf("the administrator's route changed: %+v", rs)
		}

		bh := Route{Dst: netip.MustParsePrefix("198.18.10.0/24"), Type: unix.RTN_BLACKHOLE}
		if err := r.AddRoute(bh); err != nil {
			t.Fatal(err)
		}
		if ok, err := r.HasRoute(bh); !ok || err != nil {
			t.Fatalf("blackhole: HasRoute = %v, %v", ok, err)
		}
		if err := r.RemoveRoute(bh); err != nil {
			t.Fatal(err)
		}
	})
}

func TestRouterRules(t *testing.T) {
	inNewNetns(t, func(_ netns.NsHandle, _ int) {
		r, err := NewRouter()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		ru := Rule{From: netip.MustParsePrefix("198.18.0.100/32"), Table: 100, Priority: 100}
		for i := range 2 {
			if err := r.AddRule(ru); err != nil {
				t.Fatalf("add #%d: %v", i+1, err)
			}
		}
		all, _ := netlink.RuleList(unix.AF_INET)
		n := 0
		for _, x := range all {
			if x.Table == 100 {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%d rules for table 100 after two adds, want 1", n)
		}
		if ok, err := r.HasRule(ru); !ok || err != nil {
			t.Fatalf("HasRule = %v, %v", ok, err)
		}
		marked := Rule{To: netip.MustParsePrefix("198.18.8.0/24"), IIF: "lo", HasMark: true, Mark: 0x10, Mask: 0xff, Table: 101}
		if err := r.AddRule(marked); err != nil {
			t.Fatal(err)
		}
		owned, err := r.OwnedRules()
		if err != nil || len(owned) != 2 {
			t.Fatalf("OwnedRules = %+v, %v", owned, err)
		}
		for _, x := range []Rule{ru, marked} {
			if err := r.RemoveRule(x); err != nil {
				t.Fatal(err)
			}
			if ok, _ := r.HasRule(x); ok {
				t.Fatalf("rule %s still there", x)
			}
		}

		// The administrator's identical rule is left alone.
		hand := netlink.NewRule()
		hand.Src = &net.IPNet{IP: net.IPv4(198, 18, 0, 101).To4(), Mask: net.CIDRMask(32, 32)}
		hand.Table, hand.Priority = 102, 102
		if err := netlink.RuleAdd(hand); err != nil {
			t.Fatal(err)
		}
		theirs := Rule{From: netip.MustParsePrefix("198.18.0.101/32"), Table: 102, Priority: 102}
		if err := r.AddRule(theirs); !errors.Is(err, ErrNotOurs) {
			t.Errorf("add over the administrator's rule: %v, want ErrNotOurs", err)
		}
		if err := r.RemoveRule(theirs); !errors.Is(err, ErrNotOurs) {
			t.Errorf("remove the administrator's rule: %v, want ErrNotOurs", err)
		}
	})
}
