package main

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vipd/vipd/vrrp"
	"golang.org/x/sys/unix"
)

// groupMAC is the Ethernet address of 224.0.0.18.
var groupMAC = net.HardwareAddr{0x01, 0x00, 0x5e, 0x00, 0x00, 0x12}

// ipHeader is where the IPv4 header sits in the frame: after Ethernet's
// 14 bytes, 20 bytes without options.
const (
	ipStart = 14
	ipEnd   = ipStart + 20
)

// buildFrame returns the Ethernet frame of a VRRPv3 advert from mac and
// src to 01:00:5e:00:00:12 and 224.0.0.18, as vipd's frameSender.add
// builds it: DSCP CS6, TTL 255, protocol 112, the advert's checksum over
// the IPv4 pseudo-header (vrrp.Advert.AppendMarshal), IPv4 ID 0 and its
// header checksum (nextID sets both for each frame sent).
func buildFrame(mac net.HardwareAddr, src netip.Addr, vrid, prio uint8, interval time.Duration, vip netip.Addr) ([]byte, error) {
	if len(mac) != 6 {
		return nil, fmt.Errorf("source MAC %v: not an Ethernet address", mac)
	}
	if !src.Is4() || !vip.Is4() {
		return nil, fmt.Errorf("source %v, VIP %v: want IPv4 addresses", src, vip)
	}
	a := vrrp.Advert{Version: 3, VRID: vrid, Priority: prio, Interval: interval, Addresses: []netip.Addr{vip}}
	fr := make([]byte, ipEnd, ipEnd+16)
	copy(fr[0:6], groupMAC)
	copy(fr[6:12], mac)
	binary.BigEndian.PutUint16(fr[12:14], unix.ETH_P_IP)
	fr, err := a.AppendMarshal(fr, vrrp.ChecksumPseudoHeader, src, vrrp.GroupV4)
	if err != nil {
		return nil, err
	}
	ip := fr[ipStart:ipEnd]
	ip[0] = 0x45
	ip[1] = 0xc0 // DSCP CS6: network control
	binary.BigEndian.PutUint16(ip[2:4], uint16(len(fr)-ipStart))
	ip[8] = vrrp.TTL
	ip[9] = vrrp.IPProtocol
	s4, g4 := src.As4(), vrrp.GroupV4.As4()
	copy(ip[12:16], s4[:])
	copy(ip[16:20], g4[:])
	binary.BigEndian.PutUint16(ip[10:12], ipChecksum(ip))
	return fr, nil
}

// nextID gives the frame's IPv4 header the next ID and redoes its
// checksum, as frameSender.add does for every frame.
func nextID(fr []byte) {
	ip := fr[ipStart:ipEnd]
	binary.BigEndian.PutUint16(ip[4:6], binary.BigEndian.Uint16(ip[4:6])+1)
	ip[10], ip[11] = 0, 0
	binary.BigEndian.PutUint16(ip[10:12], ipChecksum(ip))
}

// ipChecksum is the IPv4 header checksum of h (its checksum field zero);
// over a header with its checksum in place it is 0.
func ipChecksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(h[i])<<8 | uint32(h[i+1])
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
