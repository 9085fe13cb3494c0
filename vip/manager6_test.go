package vip

import (
	"errors"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// enableIPv6 turns IPv6 on in the test's namespace (it may inherit it off)
// and duplicate address detection off on vip0, so that its link-local is
// usable at once.
func enableIPv6(t *testing.T) {
	t.Helper()
	for _, f := range []string{"all/accept_dad", "default/accept_dad", "vip0/accept_dad", "all/disable_ipv6", "default/disable_ipv6", "vip0/disable_ipv6"} {
		if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+f, []byte("0"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// An IPv6 VIP is added without duplicate address detection and with
// preferred lifetime 0 (deprecated: never a source address), marked as
// vipd's like an IPv4 one, listed and removed; the host's own IPv6
// addresses are listed unowned and left alone.
func TestManagerIPv6(t *testing.T) {
	inNewNetns(t, func(_ netns.NsHandle, index int) {
		enableIPv6(t)
		l := &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Index: index}}
		host, _ := netlink.ParseAddr("fd00:18::11/64")
		host.Flags = unix.IFA_F_NODAD
		if err := netlink.AddrAdd(l, host); err != nil {
			t.Fatal(err)
		}
		m, err := NewManager()
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		vipP := netip.MustParsePrefix("fd00:18::100/128")
		for i := 0; i < 2; i++ { // idempotent
			if err := m.Add(index, vipP); err != nil {
				t.Fatalf("add #%d: %v", i+1, err)
			}
		}
		nas, err := netlink.AddrList(l, netlink.FAMILY_V6)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, a := range nas {
			if a.IP.String() != "fd00:18::100" {
				continue
			}
			found = true
			if a.Flags&unix.IFA_F_NODAD == 0 || a.Flags&unix.IFA_F_DEPRECATED == 0 || a.Flags&unix.IFA_F_TENTATIVE != 0 {
				t.Errorf("VIP flags %#x, want nodad and deprecated, not tentative", a.Flags)
			}
			if a.PreferedLft != 0 || a.ValidLft != infinityLifetime {
				t.Errorf("VIP lifetimes preferred %d valid %d, want 0 and forever", a.PreferedLft, a.ValidLft)
			}
		}
		if !found {
			t.Fatalf("VIP not on the interface: %v", nas)
		}
		as, err := m.List(index)
		if err != nil {
			t.Fatal(err)
		}
		by := map[netip.Prefix]Addr{}
		for _, a := range as {
			by[a.Prefix] = a
		}
		if a := by[vipP]; a.Proto != Proto || !a.Owned || a.Tentative {
			t.Errorf("the IPv6 VIP listed as %+v, want marked %#x, owned, not tentative", a, Proto)
		}
		hp := netip.MustParsePrefix("fd00:18::11/64")
		if a, ok := by[hp]; !ok || a.Owned {
			t.Errorf("the host's %s listed as %+v (present %v), want present, not owned", hp, a, ok)
		}
		// The link-local came with the veth, before duplicate address
		// detection was turned off: tentative for a second or so.
		deadline := time.Now().Add(5 * time.Second)
		for {
			ll, ok := LinkLocal(as, nil)
			if ok && ll.IsLinkLocalUnicast() {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no usable link-local in %+v", as)
			}
			time.Sleep(50 * time.Millisecond)
			if as, err = m.List(index); err != nil {
				t.Fatal(err)
			}
		}
		if p, ok := Primary(as, nil); !ok || !p.Is4() {
			t.Errorf("Primary = %v, %v; want the interface's IPv4 address", p, ok)
		}
		if err := m.Remove(index, hp); !errors.Is(err, ErrNotOurs) {
			t.Errorf("removing the host's own %s: %v, want ErrNotOurs", hp, err)
		}
		// A fresh Manager (as after a crash) knows the VIP by its mark.
		m2, err := NewManager()
		if err != nil {
			t.Fatal(err)
		}
		defer m2.Close()
		if err := m2.Remove(index, vipP); err != nil {
			t.Fatal(err)
		}
		if ok, _ := m2.Has(index, vipP.Addr()); ok {
			t.Error("the IPv6 VIP is still there after Remove")
		}
		if ok, _ := m2.Has(index, hp.Addr()); !ok {
			t.Error("the host's own IPv6 address went")
		}
	})
}

func TestLinkLocal(t *testing.T) {
	p := netip.MustParsePrefix
	as := []Addr{
		{Prefix: p("198.18.0.1/24")},
		{Prefix: p("fd00:18::1/64")},
		{Prefix: p("fe80::1/64"), Tentative: true},
		{Prefix: p("fe80::2/64")},
		{Prefix: p("fe80::3/64")},
	}
	if got, ok := LinkLocal(as, nil); !ok || got != netip.MustParseAddr("fe80::2") {
		t.Errorf("LinkLocal = %v, %v; want fe80::2 (the first usable link-local)", got, ok)
	}
	skip := func(a netip.Addr) bool { return a == netip.MustParseAddr("fe80::2") }
	if got, ok := LinkLocal(as, skip); !ok || got != netip.MustParseAddr("fe80::3") {
		t.Errorf("LinkLocal skipping fe80::2 = %v, %v; want fe80::3", got, ok)
	}
	if got, ok := LinkLocal(as[:3], nil); ok {
		t.Errorf("LinkLocal with only a tentative link-local = %v, want none", got)
	}
	if got, ok := Primary(as[1:], nil); ok {
		t.Errorf("Primary of IPv6 addresses = %v, want none", got)
	}
}
