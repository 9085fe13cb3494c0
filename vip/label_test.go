package vip

import (
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// AddLabel puts the address on with the label asked for, marked as vipd's,
// and Remove takes it off again.
func TestManagerAddLabel(t *testing.T) {
	inNewNetns(t, func(_ netns.NsHandle, index int) {
		m, err := NewManager()
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		p := netip.MustParsePrefix("198.18.0.101/32")
		for i := 0; i < 2; i++ { // idempotent
			if err := m.AddLabel(index, p, "vip0:web"); err != nil {
				t.Fatalf("add #%d: %v", i+1, err)
			}
		}
		link, err := netlink.LinkByIndex(index)
		if err != nil {
			t.Fatal(err)
		}
		as, err := netlink.AddrList(link, unix.AF_INET)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, a := range as {
			if a.IP.String() == p.Addr().String() {
				found = true
				if a.Label != "vip0:web" {
					t.Errorf("label = %q, want vip0:web", a.Label)
				}
			} else if a.Label != "vip0" {
				t.Errorf("the interface's own address %s got label %q", a.IP, a.Label)
			}
		}
		if !found {
			t.Fatalf("%s not on the interface: %v", p, as)
		}
		owned, err := m.List(index)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range owned {
			if a.Prefix == p && !a.Owned {
				t.Errorf("labelled VIP not marked as vipd's: %+v", a)
			}
		}
		if err := m.Remove(index, p); err != nil {
			t.Fatal(err)
		}
		if ok, err := m.Has(index, p.Addr()); err != nil || ok {
			t.Errorf("Has after Remove = %v, %v", ok, err)
		}
	})
}
