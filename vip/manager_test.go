package vip

import (
	"context"
	"errors"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/vipd/vipd/e2e/netnstest"
)

// inNewNetns runs the test body in a fresh network namespace with a veth
// interface "vip0" carrying 198.18.0.11/24.
func inNewNetns(t testing.TB, body func(ns netns.NsHandle, index int)) {
	netnstest.Run(t, func(ns netns.NsHandle) {
		index := netnstest.Veth(t, "vip0", "vip1")
		a, _ := netlink.ParseAddr("198.18.0.11/24")
		if err := netlink.AddrAdd(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Index: index}}, a); err != nil {
			t.Fatal(err)
		}
		body(ns, index)
	})
}

func TestManager(t *testing.T) {
	inNewNetns(t, func(ns netns.NsHandle, index int) {
		m, err := NewManager()
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		vipP := netip.MustParsePrefix("198.18.0.100/32")

		ctx, cancel := context.WithCancel(context.Background())
		changes := make(chan Change, 16)
		done := make(chan struct{})
		go func() {
			defer close(done)
			// Subscribe from inside the test namespace. The thread stays
			// locked, so the runtime discards it when this goroutine ends.
			runtime.LockOSThread()
			if err := netns.Set(ns); err != nil {
				t.Errorf("entering the test namespace: %v", err)
				return
			}
			_ = Watch(ctx, changes)
		}()
		defer func() { cancel(); <-done }()
		time.Sleep(50 * time.Millisecond) // let the subscription start

		for i := 0; i < 2; i++ { // idempotent
			if err := m.Add(index, vipP); err != nil {
				t.Fatalf("add #%d: %v", i+1, err)
			}
		}
		if ok, err := m.Has(index, vipP.Addr()); err != nil || !ok {
			t.Fatalf("Has after Add = %v, %v", ok, err)
		}
		as, err := m.List(index)
		if err != nil {
			t.Fatal(err)
		}
		p, ok := Primary(as, func(a netip.Addr) bool { return a == vipP.Addr() })
		if !ok || p != netip.MustParseAddr("198.18.0.11") {
			t.Errorf("primary %v %v, want 198.18.0.11", p, ok)
		}
		if err := m.Remove(index, vipP); err != nil {
			t.Fatal(err)
		}
		if err := m.Remove(index, vipP); err != nil {
			t.Errorf("removing an absent address: %v, want nil", err)
		}
		if ok, _ := m.Has(index, vipP.Addr()); ok {
			t.Error("address still present after Remove")
		}

		// A wider prefix gets the broadcast address `ip address` gives it.
		wide := netip.MustParsePrefix("198.18.0.77/25")
		if err := m.Add(index, wide); err != nil {
			t.Fatal(err)
		}
		nas, err := netlink.AddrList(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Index: index}}, netlink.FAMILY_V4)
		if err != nil {
			t.Fatal(err)
		}
		var brd string
		for _, a := range nas {
			if a.IP.String() == "198.18.0.77" {
				brd = a.Broadcast.String()
			}
		}
		if brd != "198.18.0.127" {
			t.Errorf("198.18.0.77/25 has broadcast %q, want 198.18.0.127", brd)
		}
		if err := m.Remove(index, wide); err != nil {
			t.Fatal(err)
		}
		// The kernel's refusal comes back as an error naming what failed.
		err = m.Add(9999, vipP)
		if !errors.Is(err, unix.ENODEV) || !strings.Contains(err.Error(), "add 198.18.0.100/32 on interface 9999") {
			t.Errorf("add on a missing interface: %v, want ENODEV naming the address and interface", err)
		}
		if err := m.Add(index, netip.MustParsePrefix("::ffff:198.18.0.1/128")); err == nil {
			t.Error("an IPv4-mapped IPv6 prefix was accepted")
		}
		// The socket still works after the refusals.
		if err := m.Add(index, vipP); err != nil {
			t.Fatalf("add after a refusal: %v", err)
		}
		if err := m.Remove(index, vipP); err != nil {
			t.Fatal(err)
		}
		var added, removed bool
		timeout := time.After(2 * time.Second)
		for !(added && removed) {
			select {
			case c := <-changes:
				if c.Addr == vipP.Addr() && c.Index == index {
					added = added || c.Added
					removed = removed || !c.Added
				}
			case <-timeout:
				t.Fatalf("watch saw added=%v removed=%v, want both", added, removed)
			}
		}
	})
}

// vipd marks what it adds with its address protocol and reads the mark
// back, so that it removes only its own addresses: never one of the
// host's, not even one equal to a configured VIP.
func TestManagerMarksItsAddresses(t *testing.T) {
	inNewNetns(t, func(_ netns.NsHandle, index int) {
		m, err := NewManager()
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		l := &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Index: index}}
		// The host's own addresses: 198.18.0.11/24 (the helper's) and a
		// secondary in the same subnet.
		host := netip.MustParsePrefix("198.18.0.11/24")
		second, _ := netlink.ParseAddr("198.18.0.13/24")
		if err := netlink.AddrAdd(l, second); err != nil {
			t.Fatal(err)
		}
		vipP := netip.MustParsePrefix("198.18.0.100/32")
		if err := m.Add(index, vipP); err != nil {
			t.Fatal(err)
		}
		byPrefix := func(m *Manager) map[netip.Prefix]Addr {
			t.Helper()
			as, err := m.List(index)
			if err != nil {
				t.Fatal(err)
			}
			out := map[netip.Prefix]Addr{}
			for _, a := range as {
				out[a.Prefix] = a
			}
			return out
		}
		as := byPrefix(m)
		if a := as[vipP]; a.Proto != Proto || !a.Owned {
			t.Errorf("vipd's own address listed as %+v, want proto %#x and owned", a, Proto)
		}
		for _, p := range []string{"198.18.0.11/24", "198.18.0.13/24"} {
			a, ok := as[netip.MustParsePrefix(p)]
			if !ok || a.Proto != 0 || a.Owned {
				t.Errorf("the host's %s listed as %+v (present %v), want unmarked, not owned", p, a, ok)
			}
		}
		if !as[netip.MustParsePrefix("198.18.0.13/24")].Secondary {
			t.Error("198.18.0.13/24 not listed as a secondary")
		}

		// A VIP equal to the host's primary, same prefix: vipd neither
		// takes it over nor removes it (which would also flush the
		// secondary).
		if err := m.Add(index, host); !errors.Is(err, ErrNotOurs) {
			t.Errorf("adding the host's own %s: %v, want ErrNotOurs", host, err)
		}
		if err := m.Remove(index, host); !errors.Is(err, ErrNotOurs) || !strings.Contains(err.Error(), "198.18.0.11/24") {
			t.Errorf("removing the host's own %s: %v, want ErrNotOurs naming it", host, err)
		}
		as = byPrefix(m)
		for _, p := range []string{"198.18.0.11/24", "198.18.0.13/24"} {
			if a, ok := as[netip.MustParsePrefix(p)]; !ok || a.Proto != 0 {
				t.Errorf("after the refusals the host's %s is %+v (present %v), want present and unmarked", p, a, ok)
			}
		}

		// A later run (a fresh Manager, as after kill -9) knows the VIP
		// by its mark alone, and may remove it.
		m2, err := NewManager()
		if err != nil {
			t.Fatal(err)
		}
		defer m2.Close()
		if a := byPrefix(m2)[vipP]; !a.Owned {
			t.Errorf("a fresh Manager lists the marked VIP as %+v, want owned", a)
		}
		if err := m2.Add(index, vipP); err != nil {
			t.Errorf("adding the marked VIP again: %v, want nil (idempotent)", err)
		}
		if err := m2.Remove(index, vipP); err != nil {
			t.Fatal(err)
		}
		if ok, _ := m2.Has(index, vipP.Addr()); ok {
			t.Error("the marked VIP is still there after Remove")
		}
	})
}

func TestReleaseAtLeast(t *testing.T) {
	for _, tc := range []struct {
		release string
		want    bool
	}{
		{"5.18.0", true}, {"6.18.44-fc-v669", true}, {"5.17.15-generic", false},
		{"4.19.0", false}, {"10.0", true}, {"garbage", false},
	} {
		if got := releaseAtLeast(tc.release, 5, 18); got != tc.want {
			t.Errorf("releaseAtLeast(%q, 5, 18) = %v, want %v", tc.release, got, tc.want)
		}
	}
}
