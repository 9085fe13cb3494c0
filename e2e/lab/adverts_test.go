package lab

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// arpPacket builds an Ethernet/IPv4 ARP packet (without the Ethernet
// header, as a SOCK_DGRAM packet socket hands it over).
func arpPacket(op uint16, mac [6]byte, sender, target netip.Addr) []byte {
	b := make([]byte, 28)
	binary.BigEndian.PutUint16(b[0:2], 1)      // Ethernet
	binary.BigEndian.PutUint16(b[2:4], 0x0800) // IPv4
	b[4], b[5] = 6, 4
	binary.BigEndian.PutUint16(b[6:8], op)
	copy(b[8:14], mac[:])
	s, t := sender.As4(), target.As4()
	copy(b[14:18], s[:])
	copy(b[24:28], t[:])
	return b
}

func TestParseAnnounce(t *testing.T) {
	mac := [6]byte{0x02, 0, 0, 0, 0, 0x12}
	vip := netip.MustParseAddr("198.18.0.100")
	other := netip.MustParseAddr("198.18.0.50")
	for _, tc := range []struct {
		name string
		b    []byte
		ok   bool
	}{
		{"gratuitous request", arpPacket(1, mac, vip, vip), true},
		{"gratuitous reply", arpPacket(2, mac, vip, vip), true},
		{"ordinary request", arpPacket(1, mac, other, vip), false},
		{"other operation", arpPacket(3, mac, vip, vip), false},
		{"truncated", arpPacket(1, mac, vip, vip)[:27], false},
	} {
		a, ok := parseAnnounce(tc.b)
		if ok != tc.ok {
			t.Errorf("%s: ok = %v, want %v", tc.name, ok, tc.ok)
			continue
		}
		if ok && (a.Addr != vip || a.MAC.String() != "02:00:00:00:00:12") {
			t.Errorf("%s: got %s at %s", tc.name, a.Addr, a.MAC)
		}
	}
}

// ipv6Packet builds an IPv6 packet with no extension header (without the
// Ethernet header) around payload.
func ipv6Packet(next byte, src, dst netip.Addr, payload []byte) []byte {
	b := make([]byte, 40, 40+len(payload))
	b[0] = 6 << 4
	binary.BigEndian.PutUint16(b[4:6], uint16(len(payload)))
	b[6], b[7] = next, 255
	s, d := src.As16(), dst.As16()
	copy(b[8:24], s[:])
	copy(b[24:40], d[:])
	return append(b, payload...)
}

// naPayload is a neighbour advertisement for target with flags and, when
// mac is not nil, a target link-layer address option.
func naPayload(flags byte, target netip.Addr, mac []byte) []byte {
	b := make([]byte, 24)
	b[0] = icmpv6NeighbourAdv
	b[4] = flags
	t := target.As16()
	copy(b[8:24], t[:])
	if mac != nil {
		b = append(append(b, 2, 1), mac...)
	}
	return b
}

func TestParseNA(t *testing.T) {
	vip := netip.MustParseAddr("fd00:18::100")
	src, all := netip.MustParseAddr("fd00:18::100"), netip.MustParseAddr("ff02::1")
	tlla := []byte{0x02, 0, 0, 0, 0, 0x12}
	frame := &unix.SockaddrLinklayer{Halen: 6, Addr: [8]byte{0x02, 0, 0, 0, 0, 0x99}}
	for _, tc := range []struct {
		name string
		b    []byte
		ok   bool
		mac  string
	}{
		{"unsolicited with the option", ipv6Packet(nextHeaderICMPv6, src, all, naPayload(0x20, vip, tlla)), true, "02:00:00:00:00:12"},
		{"unsolicited without it: the frame's source", ipv6Packet(nextHeaderICMPv6, src, all, naPayload(0x20, vip, nil)), true, "02:00:00:00:00:99"},
		{"solicited", ipv6Packet(nextHeaderICMPv6, src, all, naPayload(0x60, vip, tlla)), false, ""},
		{"a solicitation", ipv6Packet(nextHeaderICMPv6, src, all, append([]byte{135}, naPayload(0x20, vip, tlla)[1:]...)), false, ""},
		{"payload length past the end", ipv6Packet(nextHeaderICMPv6, src, all, naPayload(0x20, vip, tlla))[:60], false, ""},
		{"not ICMPv6", ipv6Packet(protocolVRRP, src, all, naPayload(0x20, vip, tlla)), false, ""},
	} {
		an, ok := parseNA(tc.b, frame)
		if ok != tc.ok {
			t.Errorf("%s: ok = %v, want %v", tc.name, ok, tc.ok)
			continue
		}
		if ok && (an.Addr != vip || an.MAC.String() != tc.mac) {
			t.Errorf("%s: got %s at %s, want %s at %s", tc.name, an.Addr, an.MAC, vip, tc.mac)
		}
	}
}

func TestParseAdvertIPv6(t *testing.T) {
	ll, group := netip.MustParseAddr("fe80::11"), netip.MustParseAddr("ff02::12")
	advert := []byte{0x31, 51, 150, 1, 0, 10, 0, 0}
	advert = append(advert, netip.MustParseAddr("fd00:18::100").AsSlice()...)
	a, ok := parseAdvert(ipv6Packet(protocolVRRP, ll, group, advert))
	if !ok || a.Src != ll || a.VRID != 51 || a.Priority != 150 {
		t.Errorf("IPv6 advert: got %+v, %v; want from %s, VRID 51, priority 150", a, ok, ll)
	}
	if _, ok := parseAdvert(ipv6Packet(protocolVRRP, ll, group, advert)[:47]); ok {
		t.Error("a truncated IPv6 advert was parsed")
	}
	if _, ok := parseAdvert(ipv6Packet(nextHeaderICMPv6, ll, group, advert)); ok {
		t.Error("an ICMPv6 packet was parsed as an advert")
	}
}

// An advert's destination and hop limit are read, so that a test can tell
// a unicast advert from a multicast one and see a forwarded one.
func TestParseAdvertDestination(t *testing.T) {
	src, peer := netip.MustParseAddr("fd00:18::11"), netip.MustParseAddr("fd00:18::12")
	advert := []byte{0x31, 51, 150, 1, 0, 10, 0, 0}
	advert = append(advert, netip.MustParseAddr("fd00:18::100").AsSlice()...)
	b := ipv6Packet(protocolVRRP, src, peer, advert)
	b[7] = 64
	if a, ok := parseAdvert(b); !ok || a.Src != src || a.Dst != peer || a.HopLimit != 64 {
		t.Errorf("IPv6 unicast advert: got %+v, %v; want %s → %s, hop limit 64", a, ok, src, peer)
	}
	v4 := make([]byte, 20, 28)
	v4[0], v4[8], v4[9] = 0x45, 255, protocolVRRP
	binary.BigEndian.PutUint16(v4[2:4], 28)
	copy(v4[12:16], []byte{198, 18, 0, 11})
	copy(v4[16:20], []byte{198, 18, 0, 12})
	v4 = append(v4, 0x31, 51, 150, 1, 0, 10, 0, 0)
	if a, ok := parseAdvert(v4); !ok || a.Dst != netip.MustParseAddr("198.18.0.12") || a.HopLimit != 255 || a.VRID != 51 {
		t.Errorf("IPv4 unicast advert: got %+v, %v; want to 198.18.0.12, TTL 255, VRID 51", a, ok)
	}
}
