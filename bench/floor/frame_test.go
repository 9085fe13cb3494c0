package main

import (
	"encoding/binary"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/vipd/vipd/vrrp"
)

// The floor's frame is a VRRPv3 advert that vipd's own parser accepts,
// with the pseudo-header checksum, in an IPv4 header whose checksum
// verifies, from the interface's MAC to the VRRP group's, TTL 255, DSCP
// CS6; each nextID gives the next ID and keeps the checksum right.
func TestFrame(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0x11, 0x22, 0x33, 0x44, 0x55}
	src := netip.MustParseAddr("198.18.0.11")
	vip := netip.MustParseAddr("198.18.0.100")
	fr, err := buildFrame(mac, src, 7, 150, 20*time.Millisecond, vip)
	if err != nil {
		t.Fatal(err)
	}
	if len(fr) != 14+20+8+4 {
		t.Fatalf("frame of %d bytes, want 46", len(fr))
	}
	if !slices.Equal(fr[0:6], groupMAC) || !slices.Equal(fr[6:12], mac) || binary.BigEndian.Uint16(fr[12:14]) != 0x0800 {
		t.Fatalf("Ethernet header % x", fr[:14])
	}
	for id := uint16(1); id <= 3; id++ {
		nextID(fr)
		ip := fr[ipStart:ipEnd]
		if got := binary.BigEndian.Uint16(ip[4:6]); got != id {
			t.Errorf("frame %d: IPv4 ID %d", id, got)
		}
		if c := ipChecksum(ip); c != 0 {
			t.Errorf("frame %d: the IPv4 header does not verify (sum %#04x): % x", id, c, ip)
		}
		if ip[0] != 0x45 || ip[1] != 0xc0 || ip[8] != 255 || ip[9] != 112 ||
			int(binary.BigEndian.Uint16(ip[2:4])) != len(fr)-14 {
			t.Errorf("frame %d: IPv4 header % x", id, ip)
		}
		if got, want := netip.AddrFrom4([4]byte(ip[12:16])), src; got != want {
			t.Errorf("source %v, want %v", got, want)
		}
		if got := netip.AddrFrom4([4]byte(ip[16:20])); got != vrrp.GroupV4 {
			t.Errorf("destination %v, want %v", got, vrrp.GroupV4)
		}
		var a vrrp.Advert
		mode, err := a.Unmarshal(fr[ipEnd:], src, vrrp.GroupV4)
		if err != nil {
			t.Fatalf("vipd's parser refuses the advert: %v", err)
		}
		if mode != vrrp.ChecksumPseudoHeader {
			t.Errorf("checksum mode %v, want the pseudo-header's", mode)
		}
		if a.Version != 3 || a.VRID != 7 || a.Priority != 150 || a.Interval != 20*time.Millisecond ||
			!slices.Equal(a.Addresses, []netip.Addr{vip}) {
			t.Errorf("advert %+v", a)
		}
	}
	// The IPv4 checksum breaks when a byte changes: the check above can
	// fail.
	fr[ipStart+8] = 64
	if ipChecksum(fr[ipStart:ipEnd]) == 0 {
		t.Error("a header with TTL 64 and TTL 255's checksum verifies")
	}
}

// The ID wraps from 65535 to 0 with the checksum still right.
func TestFrameIDWraps(t *testing.T) {
	fr, err := buildFrame(net.HardwareAddr{2, 0, 0, 0, 0, 1}, netip.MustParseAddr("198.18.0.11"), 1, 150, time.Second, netip.MustParseAddr("198.18.0.100"))
	if err != nil {
		t.Fatal(err)
	}
	binary.BigEndian.PutUint16(fr[ipStart+4:], 0xffff)
	nextID(fr)
	if id := binary.BigEndian.Uint16(fr[ipStart+4:]); id != 0 {
		t.Errorf("ID %d after 65535", id)
	}
	if c := ipChecksum(fr[ipStart:ipEnd]); c != 0 {
		t.Errorf("header does not verify after the wrap (sum %#04x)", c)
	}
}

func TestFrameRefuses(t *testing.T) {
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	v4 := netip.MustParseAddr("198.18.0.11")
	for _, c := range []struct {
		name     string
		mac      net.HardwareAddr
		src, vip netip.Addr
		iv       time.Duration
	}{
		{"no MAC", nil, v4, v4, time.Second},
		{"IPv6 source", mac, netip.MustParseAddr("fd00::1"), v4, time.Second},
		{"IPv6 VIP", mac, v4, netip.MustParseAddr("fd00::1"), time.Second},
		{"interval not in centiseconds", mac, v4, v4, 15 * time.Millisecond},
	} {
		if _, err := buildFrame(c.mac, c.src, 1, 150, c.iv, c.vip); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
}
