package vrrp_test

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vipd/vipd/vrrp"
)

// FuzzUnmarshal checks that whatever Unmarshal accepts, AppendMarshal writes
// back in a form Unmarshal reads as the same advert with the same checksum
// mode. src and dst are the IPv4 header's addresses as integers. fix, when
// 1 or 2, first rewrites the checksum (message-only or pseudo-header) so that
// the fuzzer gets past the checksum to the fields behind it.
func FuzzUnmarshal(f *testing.F) {
	for _, c := range pktLoadCaptures(f) {
		f.Add(c.msg, binary.BigEndian.Uint32(c.src.AsSlice()), binary.BigEndian.Uint32(c.dst.AsSlice()), uint8(0))
	}
	for _, v := range pktVectors {
		var src, dst uint32
		if v.src.Is4() {
			src = binary.BigEndian.Uint32(v.src.AsSlice())
		}
		if v.dst.Is4() {
			dst = binary.BigEndian.Uint32(v.dst.AsSlice())
		}
		f.Add(pktHex(f, v.wire), src, dst, uint8(0))
	}
	// Past the checksum with odd fields: reserved bits, unknown auth type,
	// zero intervals, counts that disagree with the length.
	f.Add(pktHex(f, "31 07 64 01 f0 64 00 00 c6 12 00 d2"), uint32(0xc6120001), uint32(0xe0000012), uint8(2))
	f.Add(pktHex(f, "21 07 64 00 ff ff 00 00 00 00 00 00 00 00 00 00"), uint32(0), uint32(0), uint8(1))
	f.Add(pktHex(f, "31 07 64 00 00 00 00 00"), uint32(0), uint32(0), uint8(1))
	f.Add(pktHex(f, "31 07 64 ff 00 64 00 00"), uint32(0), uint32(0), uint8(1))

	f.Fuzz(func(t *testing.T, data []byte, src32, dst32 uint32, fix uint8) {
		var s, d [4]byte
		binary.BigEndian.PutUint32(s[:], src32)
		binary.BigEndian.PutUint32(d[:], dst32)
		src, dst := netip.AddrFrom4(s), netip.AddrFrom4(d)

		b := append([]byte(nil), data...)
		if len(b) >= 8 && (fix == 1 || fix == 2) {
			pktFixChecksum(b, fix == 2, src, dst)
		}

		var first vrrp.Advert
		mode, err := first.Unmarshal(b, src, dst)
		if err != nil {
			if _, ok := err.(vrrp.DropReason); !ok {
				t.Fatalf("Unmarshal returned %T %v, want a DropReason", err, err)
			}
			return
		}
		out, err := first.AppendMarshal(nil, mode, src, dst)
		if err != nil {
			t.Fatalf("AppendMarshal of a parsed advert %+v: %v", first, err)
		}
		if len(out) != len(b) {
			t.Fatalf("AppendMarshal wrote %d bytes, parsed %d", len(out), len(b))
		}
		var second vrrp.Advert
		mode2, err := second.Unmarshal(out, src, dst)
		if err != nil {
			t.Fatalf("Unmarshal of own output % x: %v", out, err)
		}
		if mode2 != mode {
			t.Errorf("checksum mode %v, then %v", mode, mode2)
		}
		if diff := cmp.Diff(first, second, pktAddrCmp); diff != "" {
			t.Errorf("round trip (-first +second):\n%s", diff)
		}
	})
}
