package vip

import (
	"context"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// inNewNetns runs the test body on a locked thread inside a fresh network
// namespace with a veth interface "vip0" carrying 198.18.0.11/24.
func inNewNetns(t *testing.T, body func(ns netns.NsHandle, index int)) {
	if os.Geteuid() != 0 {
		if os.Getenv("VIPD_LAB") == "required" {
			t.Fatal("VIPD_LAB=required but not root")
		}
		t.Skip("needs root for a network namespace")
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	ns, err := netns.New()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer func() {
		ns.Close()
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked so the runtime discards it.
			t.Errorf("restoring namespace: %v", err)
			return
		}
		orig.Close()
		runtime.UnlockOSThread()
	}()
	l := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "vip0"}, PeerName: "vip1"}
	if err := netlink.LinkAdd(l); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		t.Fatal(err)
	}
	a, _ := netlink.ParseAddr("198.18.0.11/24")
	if err := netlink.AddrAdd(l, a); err != nil {
		t.Fatal(err)
	}
	link, err := netlink.LinkByName("vip0")
	if err != nil {
		t.Fatal(err)
	}
	body(ns, link.Attrs().Index)
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
