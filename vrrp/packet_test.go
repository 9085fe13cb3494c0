package vrrp_test

import (
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vipd/vipd/vrrp"
)

var (
	pktSrc  = netip.MustParseAddr("198.18.0.1")
	pktVIP1 = netip.MustParseAddr("198.18.0.210")
	pktVIP2 = netip.MustParseAddr("198.18.0.211")
	// pktAddrCmp lets cmp compare netip.Addr, whose fields are unexported.
	pktAddrCmp = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })
)

// pktHex decodes hex with spaces in it, for readable vectors.
func pktHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func pktPassword(s string) [8]byte {
	var b [8]byte
	copy(b[:], s)
	return b
}

// pktFixChecksum rewrites the checksum of a VRRP message in place, written
// out long-hand so that it does not share code with the package.
func pktFixChecksum(msg []byte, pseudo bool, src, dst netip.Addr) []byte {
	msg[6], msg[7] = 0, 0
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
	}
	if pseudo {
		s, d := src.As4(), dst.As4()
		add(s[:])
		add(d[:])
		add([]byte{0, 112, byte(len(msg) >> 8), byte(len(msg))})
	}
	add(msg)
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	msg[6], msg[7] = byte(^sum>>8), byte(^sum)
	return msg
}

// pktVectors are hand-computed (and checked against Wireshark's VRRP
// dissector, including its "VRRPv3 checksum as in v2" preference for the
// message-only form).
var pktVectors = []struct {
	name     string
	advert   vrrp.Advert
	mode     vrrp.ChecksumMode // asked of AppendMarshal; Unmarshal reports it (v2: message-only)
	src, dst netip.Addr
	wire     string
}{
	{
		// 3107+6401+0064+c612+00d2 = 15c50; pseudo-header
		// c612+0001+e000+0012+0070+000c = 1a6a1; total 302f1 -> 02f4 -> fd0b.
		name: "v3 pseudo-header one address",
		advert: vrrp.Advert{Version: 3, VRID: 7, Priority: 100, Interval: time.Second,
			Addresses: []netip.Addr{pktVIP1}},
		mode: vrrp.ChecksumPseudoHeader, src: pktSrc, dst: vrrp.GroupV4,
		wire: "31 07 64 01 00 64 fd 0b c6 12 00 d2",
	},
	{
		// 15c50 -> 5c51 -> a3ae.
		name: "v3 message-only one address",
		advert: vrrp.Advert{Version: 3, VRID: 7, Priority: 100, Interval: time.Second,
			Addresses: []netip.Addr{pktVIP1}},
		mode: vrrp.ChecksumMessageOnly, src: pktSrc, dst: vrrp.GroupV4,
		wire: "31 07 64 01 00 64 a3 ae c6 12 00 d2",
	},
	{
		// The message keepalived's v3-default.hex carries, with the
		// message-only checksum: 3133+c802+0064+c612+00d2+c612+00d3 = 28762
		// -> 8764 -> 789b.
		name: "v3 message-only keepalived advert",
		advert: vrrp.Advert{Version: 3, VRID: 51, Priority: 200, Interval: time.Second,
			Addresses: []netip.Addr{pktVIP1, pktVIP2}},
		mode: vrrp.ChecksumMessageOnly, src: netip.MustParseAddr("198.18.0.201"), dst: vrrp.GroupV4,
		wire: "31 33 c8 02 00 64 78 9b c6 12 00 d2 c6 12 00 d3",
	},
	{
		// Largest interval: 12 bits of centiseconds, 4095 = 40.95s.
		// 31ff+ff01+0fff+c612+00d2 = 207e3 -> 07e5 -> f81a.
		name: "v3 message-only max interval",
		advert: vrrp.Advert{Version: 3, VRID: 255, Priority: 255, Interval: 40950 * time.Millisecond,
			Addresses: []netip.Addr{pktVIP1}},
		mode: vrrp.ChecksumMessageOnly,
		wire: "31 ff ff 01 0f ff f8 1a c6 12 00 d2",
	},
	{
		// Sub-second interval and no addresses: 3101+0000+0023 = 3124 -> cedb;
		// pseudo-header c612+0001+e000+0012+0070+0008 = 1a69d; 3124+1a69d =
		// 1d7c1 -> d7c2 -> 283d.
		name:   "v3 pseudo-header no addresses 350ms",
		advert: vrrp.Advert{Version: 3, VRID: 1, Priority: 0, Interval: 350 * time.Millisecond},
		mode:   vrrp.ChecksumPseudoHeader, src: pktSrc, dst: vrrp.GroupV4,
		wire: "31 01 00 00 00 23 28 3d",
	},
	{
		// 2107+6402+0001+c612+00d2+c612+00d3 = 212d3 -> 12d5 -> ed2a.
		name: "v2 no auth",
		advert: vrrp.Advert{Version: 2, VRID: 7, Priority: 100, Interval: time.Second,
			Addresses: []netip.Addr{pktVIP1, pktVIP2}},
		mode: vrrp.ChecksumMessageOnly,
		wire: "21 07 64 02 00 01 ed 2a c6 12 00 d2 c6 12 00 d3 00 00 00 00 00 00 00 00",
	},
	{
		// As above plus 0100 for the auth type and 7365+6372+6574+3132 for
		// "secret12": 38150 -> 8153 -> 7eac.
		name: "v2 simple password",
		advert: vrrp.Advert{Version: 2, VRID: 7, Priority: 100, Interval: time.Second,
			AuthType: 1, AuthData: pktPassword("secret12"),
			Addresses: []netip.Addr{pktVIP1, pktVIP2}},
		mode: vrrp.ChecksumMessageOnly,
		wire: "21 07 64 02 01 01 7e ac c6 12 00 d2 c6 12 00 d3 73 65 63 72 65 74 31 32",
	},
	{
		// v2 ignores the mode and the (here invalid) source and destination.
		// 2107+6402+0101+c612+00d2+c612+00d3+7077 = 2844a -> 844c -> 7bb3.
		name: "v2 short password, pseudo-header mode ignored",
		advert: vrrp.Advert{Version: 2, VRID: 7, Priority: 100, Interval: time.Second,
			AuthType: 1, AuthData: pktPassword("pw"),
			Addresses: []netip.Addr{pktVIP1, pktVIP2}},
		mode: vrrp.ChecksumPseudoHeader,
		wire: "21 07 64 02 01 01 7b b3 c6 12 00 d2 c6 12 00 d3 70 77 00 00 00 00 00 00",
	},
}

func TestAppendMarshalVectors(t *testing.T) {
	for _, tt := range pktVectors {
		t.Run(tt.name, func(t *testing.T) {
			want := pktHex(t, tt.wire)
			got, err := tt.advert.AppendMarshal(nil, tt.mode, tt.src, tt.dst)
			if err != nil {
				t.Fatalf("AppendMarshal: %v", err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("AppendMarshal (-want +got):\n%s", diff)
			}

			// Appending keeps what the buffer already holds.
			prefix := []byte{0xde, 0xad}
			got, err = tt.advert.AppendMarshal(prefix, tt.mode, tt.src, tt.dst)
			if err != nil {
				t.Fatalf("AppendMarshal after prefix: %v", err)
			}
			if diff := cmp.Diff(append([]byte{0xde, 0xad}, want...), got); diff != "" {
				t.Errorf("AppendMarshal after prefix (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUnmarshalVectors(t *testing.T) {
	for _, tt := range pktVectors {
		t.Run(tt.name, func(t *testing.T) {
			var a vrrp.Advert
			mode, err := a.Unmarshal(pktHex(t, tt.wire), tt.src, tt.dst)
			if err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			wantMode := tt.mode
			if tt.advert.Version == 2 {
				wantMode = vrrp.ChecksumMessageOnly
			}
			if mode != wantMode {
				t.Errorf("mode = %v, want %v", mode, wantMode)
			}
			if diff := cmp.Diff(tt.advert, a, pktAddrCmp); diff != "" {
				t.Errorf("Unmarshal (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	many := make([]netip.Addr, 255)
	for i := range many {
		many[i] = netip.AddrFrom4([4]byte{198, 18, 1, byte(i)})
	}
	adverts := []vrrp.Advert{
		{Version: 3, VRID: 1, Priority: 1, Interval: 10 * time.Millisecond, Addresses: []netip.Addr{pktVIP1}},
		{Version: 3, VRID: 200, Priority: 254, Interval: 2500 * time.Millisecond, Addresses: many},
		{Version: 2, VRID: 9, Priority: 255, Interval: 255 * time.Second, AuthType: 2,
			AuthData: [8]byte{1, 2, 3, 4, 5, 6, 7, 8}, Addresses: many},
		{Version: 2, VRID: 9, Priority: 0, Interval: time.Second},
	}
	for _, want := range adverts {
		for _, mode := range []vrrp.ChecksumMode{vrrp.ChecksumPseudoHeader, vrrp.ChecksumMessageOnly} {
			b, err := want.AppendMarshal(nil, mode, pktSrc, vrrp.GroupV4)
			if err != nil {
				t.Fatalf("v%d %v: AppendMarshal: %v", want.Version, mode, err)
			}
			var got vrrp.Advert
			gotMode, err := got.Unmarshal(b, pktSrc, vrrp.GroupV4)
			if err != nil {
				t.Fatalf("v%d %v: Unmarshal: %v", want.Version, mode, err)
			}
			wantMode := mode
			if want.Version == 2 {
				wantMode = vrrp.ChecksumMessageOnly
			}
			if gotMode != wantMode {
				t.Errorf("v%d %v: mode = %v, want %v", want.Version, mode, gotMode, wantMode)
			}
			if diff := cmp.Diff(want, got, pktAddrCmp); diff != "" {
				t.Errorf("v%d %v: round trip (-want +got):\n%s", want.Version, mode, diff)
			}
		}
	}
}

func TestAppendMarshalErrors(t *testing.T) {
	v3 := func(f func(*vrrp.Advert)) vrrp.Advert {
		a := vrrp.Advert{Version: 3, VRID: 1, Priority: 100, Interval: time.Second, Addresses: []netip.Addr{pktVIP1}}
		f(&a)
		return a
	}
	v2 := func(f func(*vrrp.Advert)) vrrp.Advert {
		a := vrrp.Advert{Version: 2, VRID: 1, Priority: 100, Interval: time.Second, Addresses: []netip.Addr{pktVIP1}}
		f(&a)
		return a
	}
	tooMany := make([]netip.Addr, 256)
	for i := range tooMany {
		tooMany[i] = pktVIP1
	}
	tests := []struct {
		name     string
		advert   vrrp.Advert
		mode     vrrp.ChecksumMode
		src, dst netip.Addr
	}{
		{name: "version 0", advert: v3(func(a *vrrp.Advert) { a.Version = 0 })},
		{name: "version 4", advert: v3(func(a *vrrp.Advert) { a.Version = 4 })},
		{name: "256 addresses", advert: v3(func(a *vrrp.Advert) { a.Addresses = tooMany })},
		{name: "IPv6 address", advert: v3(func(a *vrrp.Advert) { a.Addresses = []netip.Addr{netip.MustParseAddr("2001:db8::1")} })},
		{name: "4in6 address", advert: v3(func(a *vrrp.Advert) { a.Addresses = []netip.Addr{netip.MustParseAddr("::ffff:198.18.0.210")} })},
		{name: "zero address", advert: v3(func(a *vrrp.Advert) { a.Addresses = []netip.Addr{{}} })},
		{name: "v3 interval 0", advert: v3(func(a *vrrp.Advert) { a.Interval = 0 })},
		{name: "v3 interval negative", advert: v3(func(a *vrrp.Advert) { a.Interval = -time.Second })},
		{name: "v3 interval 15ms", advert: v3(func(a *vrrp.Advert) { a.Interval = 15 * time.Millisecond })},
		{name: "v3 interval 5ms", advert: v3(func(a *vrrp.Advert) { a.Interval = 5 * time.Millisecond })},
		{name: "v3 interval 1s+1ns", advert: v3(func(a *vrrp.Advert) { a.Interval = time.Second + 1 })},
		{name: "v3 interval 40.96s", advert: v3(func(a *vrrp.Advert) { a.Interval = 40960 * time.Millisecond })},
		{name: "v3 unknown mode", advert: v3(func(*vrrp.Advert) {}), mode: 2},
		{name: "v3 pseudo-header without src", advert: v3(func(*vrrp.Advert) {}), dst: vrrp.GroupV4},
		{name: "v3 pseudo-header IPv6 dst", advert: v3(func(*vrrp.Advert) {}), src: pktSrc, dst: netip.MustParseAddr("ff02::12")},
		{name: "v2 interval 0", advert: v2(func(a *vrrp.Advert) { a.Interval = 0 })},
		{name: "v2 interval 1.5s", advert: v2(func(a *vrrp.Advert) { a.Interval = 1500 * time.Millisecond })},
		{name: "v2 interval 500ms", advert: v2(func(a *vrrp.Advert) { a.Interval = 500 * time.Millisecond })},
		{name: "v2 interval 256s", advert: v2(func(a *vrrp.Advert) { a.Interval = 256 * time.Second })},
		{name: "v2 IPv6 address", advert: v2(func(a *vrrp.Advert) { a.Addresses = []netip.Addr{netip.MustParseAddr("2001:db8::1")} })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf := []byte{1, 2, 3}
			got, err := tt.advert.AppendMarshal(buf, tt.mode, tt.src, tt.dst)
			if err == nil {
				t.Fatalf("AppendMarshal succeeded with % x, want an error", got)
			}
			if !strings.HasPrefix(err.Error(), "vrrp: marshal advertisement: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			if diff := cmp.Diff([]byte{1, 2, 3}, got); diff != "" {
				t.Errorf("buffer changed on error (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAppendMarshalV3MessageOnlyIgnoresAddresses(t *testing.T) {
	a := vrrp.Advert{Version: 3, VRID: 7, Priority: 100, Interval: time.Second, Addresses: []netip.Addr{pktVIP1}}
	got, err := a.AppendMarshal(nil, vrrp.ChecksumMessageOnly, netip.Addr{}, netip.Addr{})
	if err != nil {
		t.Fatalf("AppendMarshal: %v", err)
	}
	if diff := cmp.Diff(pktHex(t, "31 07 64 01 00 64 a3 ae c6 12 00 d2"), got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestAppendMarshalV3IgnoresAuth(t *testing.T) {
	a := vrrp.Advert{Version: 3, VRID: 7, Priority: 100, Interval: time.Second,
		AuthType: 1, AuthData: pktPassword("secret12"), Addresses: []netip.Addr{pktVIP1}}
	got, err := a.AppendMarshal(nil, vrrp.ChecksumPseudoHeader, pktSrc, vrrp.GroupV4)
	if err != nil {
		t.Fatalf("AppendMarshal: %v", err)
	}
	if diff := cmp.Diff(pktHex(t, "31 07 64 01 00 64 fd 0b c6 12 00 d2"), got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// pktV3 returns a valid v3 message (pseudo-header checksum from pktSrc to
// GroupV4) after edit has changed it; the checksum is fixed after the edit.
func pktV3(t *testing.T, edit func([]byte) []byte) []byte {
	b := edit(pktHex(t, "31 07 64 02 00 64 00 00 c6 12 00 d2 c6 12 00 d3"))
	return pktFixChecksum(b, true, pktSrc, vrrp.GroupV4)
}

func pktV2(t *testing.T, edit func([]byte) []byte) []byte {
	b := edit(pktHex(t, "21 07 64 02 01 01 00 00 c6 12 00 d2 c6 12 00 d3 73 65 63 72 65 74 31 32"))
	return pktFixChecksum(b, false, netip.Addr{}, netip.Addr{})
}

func TestParseDropReasons(t *testing.T) {
	same := func(b []byte) []byte { return b }
	tests := []struct {
		name string
		b    []byte
		want vrrp.DropReason
	}{
		{name: "empty", b: nil, want: vrrp.DropTooShort},
		{name: "7 bytes", b: pktHex(t, "31 07 64 00 00 64 ce"), want: vrrp.DropTooShort},
		{name: "v3 one address missing", b: pktV3(t, func(b []byte) []byte { return b[:12] }), want: vrrp.DropTooShort},
		{name: "v3 count 0 with address", b: pktV3(t, func(b []byte) []byte { b[3] = 0; return b[:12] }), want: vrrp.DropLength},
		{name: "v3 trailing byte", b: pktV3(t, func(b []byte) []byte { return append(b, 0) }), want: vrrp.DropLength},
		{name: "v3 trailing auth data", b: pktV3(t, func(b []byte) []byte { return append(b, make([]byte, 8)...) }), want: vrrp.DropLength},
		{name: "v2 without auth data", b: pktV2(t, func(b []byte) []byte { return b[:16] }), want: vrrp.DropTooShort},
		{name: "v2 short auth data", b: pktV2(t, func(b []byte) []byte { return b[:23] }), want: vrrp.DropTooShort},
		{name: "v2 trailing byte", b: pktV2(t, func(b []byte) []byte { return append(b, 0) }), want: vrrp.DropLength},
		{name: "count 255, 8 bytes", b: pktV3(t, func(b []byte) []byte { b[3] = 255; return b }), want: vrrp.DropTooShort},
		{name: "version 0", b: pktV3(t, func(b []byte) []byte { b[0] = 0x01; return b }), want: vrrp.DropVersion},
		{name: "version 1", b: pktV3(t, func(b []byte) []byte { b[0] = 0x11; return b }), want: vrrp.DropVersion},
		{name: "version 4", b: pktV3(t, func(b []byte) []byte { b[0] = 0x41; return b }), want: vrrp.DropVersion},
		{name: "version 15, 8 bytes", b: pktHex(t, "f1 07 64 00 00 64 00 00"), want: vrrp.DropVersion},
		{name: "type 0", b: pktV3(t, func(b []byte) []byte { b[0] = 0x30; return b }), want: vrrp.DropType},
		{name: "type 2", b: pktV3(t, func(b []byte) []byte { b[0] = 0x32; return b }), want: vrrp.DropType},
		{name: "v2 type 15", b: pktV2(t, func(b []byte) []byte { b[0] = 0x2f; return b }), want: vrrp.DropType},
		{name: "v3 checksum off by one", b: func() []byte { b := pktV3(t, same); b[7]++; return b }(), want: vrrp.DropChecksum},
		{name: "v3 address corrupted", b: func() []byte { b := pktV3(t, same); b[15] ^= 0x40; return b }(), want: vrrp.DropChecksum},
		{name: "v3 zero checksum", b: func() []byte { b := pktV3(t, same); b[6], b[7] = 0, 0; return b }(), want: vrrp.DropChecksum},
		{name: "v2 checksum off by one", b: func() []byte { b := pktV2(t, same); b[7]++; return b }(), want: vrrp.DropChecksum},
		{name: "v2 password corrupted", b: func() []byte { b := pktV2(t, same); b[23] = '3'; return b }(), want: vrrp.DropChecksum},
		{
			// The v2 checksum never includes a pseudo-header.
			name: "v2 with pseudo-header checksum",
			b:    pktFixChecksum(pktV2(t, same), true, pktSrc, vrrp.GroupV4),
			want: vrrp.DropChecksum,
		},
		{name: "v3 interval 0", b: pktV3(t, func(b []byte) []byte { b[4], b[5] = 0, 0; return b }), want: vrrp.DropInterval},
		{name: "v3 interval 0, reserved bits set", b: pktV3(t, func(b []byte) []byte { b[4], b[5] = 0xf0, 0; return b }), want: vrrp.DropInterval},
		{name: "v2 interval 0", b: pktV2(t, func(b []byte) []byte { b[5] = 0; return b }), want: vrrp.DropInterval},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := vrrp.Advert{Version: 2, VRID: 99, Priority: 1, Interval: 3 * time.Second, AuthType: 1,
				AuthData: pktPassword("keep"), Addresses: []netip.Addr{pktVIP2}}
			a := before
			a.Addresses = append([]netip.Addr(nil), before.Addresses...)
			_, err := a.Unmarshal(tt.b, pktSrc, vrrp.GroupV4)
			if err != tt.want { // Unmarshal returns the reason itself, unwrapped.
				t.Fatalf("Unmarshal(% x) = %v, want %v", tt.b, err, tt.want)
			}
			var r vrrp.DropReason
			if !errors.As(err, &r) || r != tt.want {
				t.Errorf("errors.As gave %v, want %v", r, tt.want)
			}
			if diff := cmp.Diff(before, a, pktAddrCmp); diff != "" {
				t.Errorf("failed Unmarshal changed the Advert (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseIgnoresV3ReservedBits(t *testing.T) {
	b := pktV3(t, func(b []byte) []byte { b[4] |= 0xf0; return b })
	var a vrrp.Advert
	if _, err := a.Unmarshal(b, pktSrc, vrrp.GroupV4); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	if a.Interval != time.Second {
		t.Errorf("Interval = %v, want 1s", a.Interval)
	}
	// And they are sent as zero.
	out, err := a.AppendMarshal(nil, vrrp.ChecksumPseudoHeader, pktSrc, vrrp.GroupV4)
	if err != nil {
		t.Fatalf("AppendMarshal: %v", err)
	}
	if out[4] != 0 {
		t.Errorf("reserved bits sent as %#x, want 0", out[4]>>4)
	}
}

func TestParseV3ChecksumModes(t *testing.T) {
	other := netip.MustParseAddr("198.18.0.2")
	pseudo := pktV3(t, func(b []byte) []byte { return b })
	msgOnly := pktFixChecksum(pktV3(t, func(b []byte) []byte { return b }), false, netip.Addr{}, netip.Addr{})
	tests := []struct {
		name     string
		b        []byte
		src, dst netip.Addr
		want     vrrp.ChecksumMode
		err      error
	}{
		{name: "pseudo-header", b: pseudo, src: pktSrc, dst: vrrp.GroupV4, want: vrrp.ChecksumPseudoHeader},
		{name: "message-only", b: msgOnly, src: pktSrc, dst: vrrp.GroupV4, want: vrrp.ChecksumMessageOnly},
		{name: "pseudo-header, other source", b: pseudo, src: other, dst: vrrp.GroupV4, err: vrrp.DropChecksum},
		{name: "pseudo-header, unicast destination", b: pseudo, src: pktSrc, dst: other, err: vrrp.DropChecksum},
		{name: "pseudo-header, no addresses", b: pseudo, err: vrrp.DropChecksum},
		{name: "message-only, no addresses", b: msgOnly, want: vrrp.ChecksumMessageOnly},
		{
			name: "pseudo-header, 4in6 addresses",
			b:    pseudo, src: netip.AddrFrom16(pktSrc.As16()), dst: netip.AddrFrom16(vrrp.GroupV4.As16()),
			want: vrrp.ChecksumPseudoHeader,
		},
		{
			// The pseudo-header of 255.127.0.0 -> 0.0.0.0 with a 16-byte
			// message sums to ff7f+0070+0010 = ffff, a ones-complement zero,
			// so both forms hold: the default one is reported.
			name: "both forms match",
			b:    msgOnly, src: netip.MustParseAddr("255.127.0.0"), dst: netip.MustParseAddr("0.0.0.0"),
			want: vrrp.ChecksumPseudoHeader,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a vrrp.Advert
			got, err := a.Unmarshal(tt.b, tt.src, tt.dst)
			if err != tt.err {
				t.Fatalf("Unmarshal error = %v, want %v", err, tt.err)
			}
			if err == nil && got != tt.want {
				t.Errorf("mode = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseReusesAddresses(t *testing.T) {
	v2 := pktV2(t, func(b []byte) []byte { return b })
	v3one := pktFixChecksum(pktHex(t, "31 07 64 01 00 64 00 00 c6 12 00 d2"), true, pktSrc, vrrp.GroupV4)

	var a vrrp.Advert
	if _, err := a.Unmarshal(v2, pktSrc, vrrp.GroupV4); err != nil {
		t.Fatalf("Unmarshal v2: %v", err)
	}
	first := &a.Addresses[0]
	if _, err := a.Unmarshal(v3one, pktSrc, vrrp.GroupV4); err != nil {
		t.Fatalf("Unmarshal v3: %v", err)
	}
	if &a.Addresses[0] != first {
		t.Error("Unmarshal did not reuse the Addresses backing array")
	}
	want := vrrp.Advert{Version: 3, VRID: 7, Priority: 100, Interval: time.Second, Addresses: []netip.Addr{pktVIP1}}
	// The v2 auth fields must not leak into the v3 advert.
	if diff := cmp.Diff(want, a, pktAddrCmp); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestPacketDropReasons(t *testing.T) {
	labels := map[vrrp.DropReason]string{
		vrrp.DropTooShort:        "too_short",
		vrrp.DropLength:          "bad_length",
		vrrp.DropVersion:         "version",
		vrrp.DropType:            "type",
		vrrp.DropChecksum:        "checksum",
		vrrp.DropInterval:        "interval",
		vrrp.DropTTL:             "ttl",
		vrrp.DropVRID:            "unknown_vrid",
		vrrp.DropAuth:            "auth",
		vrrp.DropVersionMismatch: "version_mismatch",
		vrrp.DropOwnAddress:      "own_address",
		vrrp.DropNotPeer:         "not_peer",
	}
	all := vrrp.AllDropReasons()
	if len(all) != len(labels) {
		t.Fatalf("AllDropReasons has %d reasons, want %d", len(all), len(labels))
	}
	for i, r := range all {
		if r != vrrp.DropReason(i+1) {
			t.Errorf("AllDropReasons()[%d] = %d, want %d", i, r, i+1)
		}
		if got, want := r.String(), labels[r]; got != want {
			t.Errorf("%d.String() = %q, want %q", r, got, want)
		}
		msg := r.Error()
		if !strings.HasPrefix(msg, "vrrp: dropped: ") || len(msg) <= len("vrrp: dropped: ") {
			t.Errorf("%v.Error() = %q", r, msg)
		}
		var err error = r
		if !errors.Is(err, r) {
			t.Errorf("errors.Is(%v, %v) = false", err, r)
		}
	}
	if got := vrrp.DropNone.String(); got != "none" {
		t.Errorf("DropNone.String() = %q", got)
	}
	if got := vrrp.DropReason(200).String(); got != "DropReason(200)" {
		t.Errorf("DropReason(200).String() = %q", got)
	}
	if got := vrrp.DropReason(200).Error(); got != "vrrp: dropped: DropReason(200)" {
		t.Errorf("DropReason(200).Error() = %q", got)
	}
	// Each call returns a fresh slice the caller may keep or change.
	all[0] = vrrp.DropNone
	if vrrp.AllDropReasons()[0] != vrrp.DropTooShort {
		t.Error("AllDropReasons shares its slice between calls")
	}
}

func TestChecksumModeString(t *testing.T) {
	for m, want := range map[vrrp.ChecksumMode]string{
		vrrp.ChecksumPseudoHeader: "pseudo-header",
		vrrp.ChecksumMessageOnly:  "message-only",
		7:                         "ChecksumMode(7)",
	} {
		if got := m.String(); got != want {
			t.Errorf("ChecksumMode(%d).String() = %q, want %q", uint8(m), got, want)
		}
	}
}

func TestPacketConstants(t *testing.T) {
	if vrrp.IPProtocol != 112 || vrrp.TTL != 255 {
		t.Errorf("IPProtocol, TTL = %d, %d", vrrp.IPProtocol, vrrp.TTL)
	}
	if vrrp.GroupV4 != netip.AddrFrom4([4]byte{224, 0, 0, 18}) {
		t.Errorf("GroupV4 = %v", vrrp.GroupV4)
	}
}

func TestParseDoesNotAllocate(t *testing.T) {
	v3 := pktV3(t, func(b []byte) []byte { return b })
	v2 := pktV2(t, func(b []byte) []byte { return b })
	bad := append(pktV3(t, func(b []byte) []byte { return b }), 0)
	var a vrrp.Advert
	if _, err := a.Unmarshal(v3, pktSrc, vrrp.GroupV4); err != nil { // grows Addresses once
		t.Fatalf("Unmarshal: %v", err)
	}
	for name, b := range map[string][]byte{"v3": v3, "v2": v2, "dropped": bad} {
		var err error
		allocs := testing.AllocsPerRun(100, func() {
			_, err = a.Unmarshal(b, pktSrc, vrrp.GroupV4)
		})
		if name != "dropped" && err != nil {
			t.Fatalf("%s: Unmarshal: %v", name, err)
		}
		if allocs != 0 {
			t.Errorf("%s: Unmarshal allocates %v times per call, want 0", name, allocs)
		}
	}
}

func TestAppendMarshalDoesNotAllocate(t *testing.T) {
	buf := make([]byte, 0, 64)
	for _, tt := range pktVectors {
		var err error
		allocs := testing.AllocsPerRun(100, func() {
			_, err = tt.advert.AppendMarshal(buf[:0], tt.mode, tt.src, tt.dst)
		})
		if err != nil {
			t.Fatalf("%s: AppendMarshal: %v", tt.name, err)
		}
		if allocs != 0 {
			t.Errorf("%s: AppendMarshal allocates %v times per call, want 0", tt.name, allocs)
		}
	}
}

func BenchmarkUnmarshalV3(b *testing.B) {
	src := netip.MustParseAddr("198.18.0.201")
	msg := pktFixChecksum(pktHex(b, "31 33 c8 02 00 64 00 00 c6 12 00 d2 c6 12 00 d3"), true, src, vrrp.GroupV4)
	var a vrrp.Advert
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if _, err := a.Unmarshal(msg, src, vrrp.GroupV4); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendMarshalV3(b *testing.B) {
	src := netip.MustParseAddr("198.18.0.201")
	a := vrrp.Advert{Version: 3, VRID: 51, Priority: 200, Interval: time.Second,
		Addresses: []netip.Addr{pktVIP1, pktVIP2}}
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		out, err := a.AppendMarshal(buf[:0], vrrp.ChecksumPseudoHeader, src, vrrp.GroupV4)
		if err != nil {
			b.Fatal(err)
		}
		buf = out
	}
	b.SetBytes(int64(len(buf)))
}
