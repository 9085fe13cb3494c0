package lab

import (
	"encoding/binary"
	"net/netip"
	"testing"
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
