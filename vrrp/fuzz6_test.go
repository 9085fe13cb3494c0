package vrrp_test

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/vipd/vipd/vrrp"
)

// FuzzUnmarshalIPv6: whatever UnmarshalIPv6 accepts, AppendMarshalIPv6
// writes back byte for byte (but the reserved bits, which it zeroes), and
// parsing that gives the same advert.
func FuzzUnmarshalIPv6(f *testing.F) {
	for _, c := range pkt6LoadCaptures(f) {
		f.Add(c.msg, c.src.AsSlice(), c.dst.AsSlice())
	}
	f.Add(pkt6Message(1, 0, 35, pkt6Src, vrrp.GroupV6), pkt6Src.AsSlice(), vrrp.GroupV6.AsSlice())
	f.Add([]byte{0x21, 1, 100, 0, 0, 1, 0, 0}, pkt6Src.AsSlice(), vrrp.GroupV6.AsSlice())
	f.Fuzz(func(t *testing.T, msg, src, dst []byte) {
		s, _ := netip.AddrFromSlice(src)
		d, _ := netip.AddrFromSlice(dst)
		var a vrrp.Advert
		if err := a.UnmarshalIPv6(msg, s, d); err != nil {
			return
		}
		out, err := a.AppendMarshalIPv6(nil, s, d)
		if err != nil {
			t.Fatalf("accepted %x but cannot marshal %+v: %v", msg, a, err)
		}
		want := bytes.Clone(msg)
		if want[4]&0xf0 != 0 {
			want[4] &= 0x0f
			fix6(want, s, d)
		}
		if !bytes.Equal(out, want) {
			t.Fatalf("marshal of %+v = %x, want %x", a, out, want)
		}
		var b vrrp.Advert
		if err := b.UnmarshalIPv6(out, s, d); err != nil || b.VRID != a.VRID || b.Priority != a.Priority || b.Interval != a.Interval || len(b.Addresses) != len(a.Addresses) {
			t.Fatalf("reparse: %+v, %v; want %+v", b, err, a)
		}
	})
}
