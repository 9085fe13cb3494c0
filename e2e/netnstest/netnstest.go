// Package netnstest runs a unit test's body inside a fresh, anonymous
// network namespace, for tests of code that opens real sockets (netlink,
// packet, raw IP) and must not touch the host's interfaces.
package netnstest

import (
	"os"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Run runs body on a locked OS thread switched into a new network
// namespace with loopback up; sockets body opens stay in that namespace.
// Without root the test is skipped, unless VIPD_LAB=required (as root CI
// sets it), when it fails. The thread goes back to its namespace
// afterwards; if it cannot, it stays locked and the runtime discards it.
func Run(t testing.TB, body func(ns netns.NsHandle)) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("VIPD_LAB") == "required" {
			t.Fatal("VIPD_LAB=required but not root")
		}
		t.Skip("needs root for a network namespace")
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	ns, err := netns.New()
	if err != nil {
		orig.Close()
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer func() {
		ns.Close()
		if err := netns.Set(orig); err != nil {
			t.Errorf("restoring the network namespace: %v", err) // the thread stays locked
			return
		}
		orig.Close()
		runtime.UnlockOSThread()
	}()
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	body(ns)
}

// Veth adds a veth pair named name and peer, both up, in the current
// namespace (inside Run's body), and returns name's interface index.
func Veth(t testing.TB, name, peer string) int {
	t.Helper()
	l := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: peer}
	if err := netlink.LinkAdd(l); err != nil {
		t.Fatalf("adding veth %s: %v", name, err)
	}
	for _, n := range []string{name, peer} {
		if err := netlink.LinkSetUp(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: n}}); err != nil {
			t.Fatalf("setting %s up: %v", n, err)
		}
	}
	got, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return got.Attrs().Index
}
