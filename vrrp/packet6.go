package vrrp

import (
	"encoding/binary"
	"net/netip"
	"time"
)

// VRRPv3 over IPv6 (RFC 5798 §5.1.2, §5.2.8). The message is the v3 one with
// 16-byte addresses; the checksum always covers the IPv6 pseudo-header
// (source, destination, upper-layer length, three zero bytes, next header
// 112), as every IPv6 upper-layer checksum does (RFC 8200 §8.1), so there is
// no mode to choose. VRRPv2 is IPv4 only.

// GroupV6 is the IPv6 multicast group VRRP advertisements are sent to.
var GroupV6 = netip.MustParseAddr("ff02::12")

// HopLimit is the only hop limit an IPv6 advert may be sent and accepted
// with, as TTL is for IPv4.
const HopLimit = 255

// ipv6AddrLen is the size of one address in an IPv6 advert.
const ipv6AddrLen = 16

// AppendMarshalIPv6 appends a's wire form as a VRRPv3 message over IPv6 to b
// and returns the extended slice. src and dst are the IPv6 header's source
// (the interface's link-local address, or source_address for unicast) and
// destination (GroupV6, or a unicast peer); they feed the pseudo-header and
// their zones are ignored. a.AuthType and a.AuthData are ignored. It does not
// allocate when b has room for the message.
//
// It fails, leaving b's contents up to len(b) untouched, on a version other
// than 3, more than 255 addresses, an address that is not IPv6 (IPv4-mapped
// forms included), an interval that is not a whole number of centiseconds in
// 1..4095, or a src or dst that is not IPv6.
func (a *Advert) AppendMarshalIPv6(b []byte, src, dst netip.Addr) ([]byte, error) {
	if err := a.validateIPv6(src, dst); err != nil {
		return b, err
	}
	start := len(b)
	cs := uint16(a.Interval / v3IntervalUnit)
	b = append(b, 3<<4|typeAdvertisement, a.VRID, a.Priority, uint8(len(a.Addresses)),
		uint8(cs>>8), uint8(cs), 0, 0) // checksum zero while it is computed
	for _, addr := range a.Addresses {
		v6 := addr.As16()
		b = append(b, v6[:]...)
	}
	msg := b[start:]
	sum := pseudoHeaderSumIPv6(onesComplementSum(0, msg), src.As16(), dst.As16(), len(msg))
	binary.BigEndian.PutUint16(msg[advertChecksumOffset:], ^foldCarries(sum))
	return b, nil
}

// isIPv6 reports whether addr is a genuine IPv6 address: not invalid, not
// IPv4, not IPv4-mapped.
func isIPv6(addr netip.Addr) bool {
	return addr.Is6() && !addr.Is4In6()
}

// validateIPv6 reports why a cannot be marshalled over IPv6, if it cannot.
func (a *Advert) validateIPv6(src, dst netip.Addr) error {
	if a.Version != 3 {
		return advertMarshalError("version %d over IPv6, want 3 (VRRPv2 is IPv4 only)", a.Version)
	}
	if len(a.Addresses) > maxAdvertAddresses {
		return advertMarshalError("%d addresses, at most %d fit", len(a.Addresses), maxAdvertAddresses)
	}
	for _, addr := range a.Addresses {
		if !isIPv6(addr) {
			return advertMarshalError("address %s is not IPv6", addr)
		}
	}
	if a.Interval <= 0 || a.Interval%v3IntervalUnit != 0 || a.Interval/v3IntervalUnit > maxV3IntervalUnits {
		return advertMarshalError("v3 interval %s is not a whole number of centiseconds in 10ms..40.95s", a.Interval)
	}
	if !isIPv6(src) || !isIPv6(dst) {
		return advertMarshalError("IPv6 pseudo-header needs IPv6 source and destination, have %s and %s", src, dst)
	}
	return nil
}

// UnmarshalIPv6 parses b, a VRRP message received over IPv6 (the IPv6
// header already stripped, as a raw IPv6 socket delivers it), into a. src
// and dst are the datagram's source and destination addresses (see
// ParseIPv6); their zones are ignored.
//
// a.Addresses' backing array is reused as by Unmarshal, so a receive loop
// that keeps one Advert does not allocate. a.AuthType and a.AuthData are set
// to zero.
//
// On failure it returns a DropReason as the error and leaves a unchanged. It
// checks, in this order: length against the fixed header, version (only 3:
// a VRRPv2 message over IPv6 is DropVersion), type, length against the
// address count, the pseudo-header checksum (a src or dst that is not IPv6
// can never match it: DropChecksum), interval. The reserved bits are
// ignored.
func (a *Advert) UnmarshalIPv6(b []byte, src, dst netip.Addr) error {
	if len(b) < advertHeaderLen {
		return DropTooShort
	}
	if b[0]>>4 != 3 {
		return DropVersion
	}
	if b[0]&0x0f != typeAdvertisement {
		return DropType
	}
	count := int(b[3])
	want := advertHeaderLen + ipv6AddrLen*count
	switch {
	case len(b) < want:
		return DropTooShort
	case len(b) > want:
		return DropLength
	}
	if !isIPv6(src) || !isIPv6(dst) ||
		foldCarries(pseudoHeaderSumIPv6(onesComplementSum(0, b), src.As16(), dst.As16(), len(b))) != 0xffff {
		return DropChecksum
	}
	interval := time.Duration(binary.BigEndian.Uint16(b[4:])&maxV3IntervalUnits) * v3IntervalUnit
	if interval == 0 {
		return DropInterval
	}

	a.Version = 3
	a.VRID = b[1]
	a.Priority = b[2]
	a.Interval = interval
	a.AuthType = 0
	a.AuthData = [8]byte{}
	a.Addresses = a.Addresses[:0]
	for i := advertHeaderLen; i < want; i += ipv6AddrLen {
		a.Addresses = append(a.Addresses, netip.AddrFrom16([16]byte(b[i:i+ipv6AddrLen])))
	}
	return nil
}

// pseudoHeaderSumIPv6 adds the IPv6 pseudo-header (RFC 8200 §8.1) of a VRRP
// message of length n: source, destination, the 32-bit upper-layer length,
// three zero bytes and the next header, 112.
func pseudoHeaderSumIPv6(sum uint32, src, dst [16]byte, n int) uint32 {
	sum = onesComplementSum(sum, src[:])
	sum = onesComplementSum(sum, dst[:])
	return sum + uint32(n)>>16 + uint32(n)&0xffff + IPProtocol
}
