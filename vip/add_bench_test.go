package vip

import (
	"net"
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// BenchmarkAdd is the VIP add a takeover waits for, and the remove after
// it, on a veth in a fresh namespace (root). "manager" is vipd's: the add
// carries vipd's address-protocol mark, and the remove first lists the
// interface's addresses to check that the address is vipd's (built with
// vishvananda/netlink's nl package); "netlink-library" is the plain add and
// remove through vishvananda/netlink's AddrReplace and AddrDel, for
// comparison. The figures to read are ns/op and allocs/op of each pair.
func BenchmarkAdd(b *testing.B) {
	p := netip.MustParsePrefix("198.18.0.100/32")
	b.Run("manager", func(b *testing.B) {
		inNewNetns(b, func(_ netns.NsHandle, index int) {
			m, err := NewManager()
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			b.ReportAllocs()
			for b.Loop() {
				if err := m.Add(index, p); err != nil {
					b.Fatal(err)
				}
				if err := m.Remove(index, p); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("netlink-library", func(b *testing.B) {
		inNewNetns(b, func(_ netns.NsHandle, index int) {
			h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
			if err != nil {
				b.Fatal(err)
			}
			defer h.Close()
			l := &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Index: index}}
			a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(32, 32)}}
			b.ReportAllocs()
			for b.Loop() {
				if err := h.AddrReplace(l, a); err != nil {
					b.Fatal(err)
				}
				if err := h.AddrDel(l, a); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}
