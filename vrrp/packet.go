package vrrp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/vipd/vipd/config"
)

// Constants of VRRP over IPv4 that the runtime needs for its sockets.
const (
	// IPProtocol is the IP protocol number of VRRP.
	IPProtocol = 112
	// TTL is the only TTL a sender may use and a receiver may accept: a
	// datagram with any other TTL was forwarded by a router.
	TTL = 255
)

// GroupV4 is the IPv4 multicast group VRRP advertisements are sent to.
var GroupV4 = netip.MustParseAddr("224.0.0.18")

const (
	typeAdvertisement = 1

	// advertHeaderLen is the fixed part common to v2 and v3: version and
	// type, VRID, priority, address count, a 16-bit interval (v3) or auth
	// type plus interval (v2), and the checksum.
	advertHeaderLen = 8
	// v2AuthDataLen is the v2 trailer, present whatever the auth type.
	v2AuthDataLen = 8
	// advertChecksumOffset is where the checksum sits in the message.
	advertChecksumOffset = 6

	maxAdvertAddresses = 255
	// maxV3IntervalUnits is the largest v3 interval the 12-bit field holds.
	maxV3IntervalUnits   = 0x0fff
	v3IntervalUnit       = 10 * time.Millisecond
	maxV2IntervalSeconds = 255
)

// Advert is one VRRP advertisement (v2 or v3, IPv4).
type Advert struct {
	Version  uint8 // 2 or 3
	VRID     uint8
	Priority uint8
	// Interval is the advertisement interval. v3 carries the Max Advert
	// Interval in centiseconds (12 bits); v2 carries Adver Int in whole
	// seconds (8 bits).
	Interval time.Duration
	// AuthType is the v2 authentication type: 0 none, 1 simple password.
	// Other values parse fine; the runtime decides what to accept. v3 has
	// no such field: AppendMarshal ignores it and Unmarshal sets it to 0.
	AuthType uint8
	// AuthData is the v2 authentication data (a password is zero-padded).
	// v3 ignores it as it does AuthType.
	AuthData [8]byte
	// Addresses are the virtual IPv4 addresses.
	Addresses []netip.Addr
}

// ChecksumMode says how a VRRPv3 checksum over IPv4 is computed. Vendors
// read RFC 5798 §5.2.8 differently, so vipd sends one form and accepts
// both. It is the configuration's type (v3_checksum), so that there is one.
type ChecksumMode = config.ChecksumMode

const (
	// ChecksumPseudoHeader prefixes the message with the IPv4 pseudo-header
	// (source, destination, zero, protocol 112, VRRP length). It is what
	// keepalived and FRR do by default, and vipd's default.
	ChecksumPseudoHeader = config.ChecksumPseudoHeader
	// ChecksumMessageOnly covers the VRRP message alone, as RFC 9568 says
	// and as keepalived's v3_checksum_as_v2 does (keepalived 2.2.7 lacks
	// that option and rejects the keyword). It is always the v2 form.
	ChecksumMessageOnly = config.ChecksumMessageOnly
)

// AppendMarshal appends a's wire form to b and returns the extended slice.
// For v3 with ChecksumPseudoHeader, src and dst (the IPv4 header's source and
// destination; IPv4-mapped IPv6 forms are fine) feed the pseudo-header; v2
// ignores mode, src and dst. It does not allocate when b has room for the
// message.
//
// It fails, leaving b's contents up to len(b) untouched, on a version other
// than 2 or 3, more than 255 addresses, an address that is not IPv4, a v3
// interval that is not a whole number of centiseconds in 1..4095, a v2
// interval that is not a whole number of seconds in 1..255, or, for the
// pseudo-header form, a src or dst that is not IPv4.
func (a *Advert) AppendMarshal(b []byte, mode ChecksumMode, src, dst netip.Addr) ([]byte, error) {
	if err := a.validate(mode, src, dst); err != nil {
		return b, err
	}

	start := len(b)
	b = append(b, a.Version<<4|typeAdvertisement, a.VRID, a.Priority, uint8(len(a.Addresses)))
	if a.Version == 3 {
		cs := uint16(a.Interval / v3IntervalUnit)
		b = append(b, uint8(cs>>8), uint8(cs))
	} else {
		b = append(b, a.AuthType, uint8(a.Interval/time.Second))
	}
	b = append(b, 0, 0) // checksum, zero while it is computed
	for _, addr := range a.Addresses {
		v4 := addr.As4()
		b = append(b, v4[:]...)
	}
	if a.Version == 2 {
		b = append(b, a.AuthData[:]...)
	}

	msg := b[start:]
	sum := onesComplementSum(0, msg)
	if a.Version == 3 && mode == ChecksumPseudoHeader {
		sum = pseudoHeaderSum(sum, src.Unmap().As4(), dst.Unmap().As4(), len(msg))
	}
	binary.BigEndian.PutUint16(msg[advertChecksumOffset:], ^foldCarries(sum))
	return b, nil
}

// validate reports why a cannot be marshalled, if it cannot.
func (a *Advert) validate(mode ChecksumMode, src, dst netip.Addr) error {
	if len(a.Addresses) > maxAdvertAddresses {
		return advertMarshalError("%d addresses, at most %d fit", len(a.Addresses), maxAdvertAddresses)
	}
	for _, addr := range a.Addresses {
		if !addr.Is4() {
			return advertMarshalError("address %s is not IPv4", addr)
		}
	}
	switch a.Version {
	case 3:
		// Rounding would advertise an interval other than the configured
		// one, and peers learn it from us: refuse instead.
		if a.Interval <= 0 || a.Interval%v3IntervalUnit != 0 || a.Interval/v3IntervalUnit > maxV3IntervalUnits {
			return advertMarshalError("v3 interval %s is not a whole number of centiseconds in 10ms..40.95s", a.Interval)
		}
		switch mode {
		case ChecksumPseudoHeader:
			if !src.Unmap().Is4() || !dst.Unmap().Is4() {
				return advertMarshalError("pseudo-header checksum needs IPv4 source and destination, have %s and %s", src, dst)
			}
		case ChecksumMessageOnly:
		default:
			return advertMarshalError("unknown checksum mode %s", mode)
		}
	case 2:
		if a.Interval <= 0 || a.Interval%time.Second != 0 || a.Interval/time.Second > maxV2IntervalSeconds {
			return advertMarshalError("v2 interval %s is not a whole number of seconds in 1s..255s", a.Interval)
		}
	default:
		return advertMarshalError("version %d, want 2 or 3", a.Version)
	}
	return nil
}

func advertMarshalError(format string, args ...any) error {
	return fmt.Errorf("vrrp: marshal advertisement: "+format, args...)
}

// Unmarshal parses b, a VRRP message with the IP header already stripped,
// into a. src and dst are the IPv4 header's addresses (IPv4-mapped IPv6 forms
// are fine), used for the v3 pseudo-header; if either is not IPv4, only the
// message-only form can match. For v3 it accepts either checksum form and reports which
// one matched (the pseudo-header form when, for some src/dst pair, both do);
// for v2 it reports ChecksumMessageOnly.
//
// a.Addresses' backing array is reused (a.Addresses[:0], then append), so a
// receive loop that keeps one Advert does not allocate once the array has
// grown to the peer's address count.
//
// On failure it returns a DropReason as the error (the mode is then
// meaningless) and leaves a unchanged. It checks, in this order: length
// against the fixed header, version, type, length against the address count,
// checksum, interval. The reserved bits of a v3 message are ignored.
func (a *Advert) Unmarshal(b []byte, src, dst netip.Addr) (ChecksumMode, error) {
	if len(b) < advertHeaderLen {
		return 0, DropTooShort
	}
	version := b[0] >> 4
	if version != 2 && version != 3 {
		return 0, DropVersion
	}
	if b[0]&0x0f != typeAdvertisement {
		return 0, DropType
	}
	count := int(b[3])
	want := advertHeaderLen + 4*count
	if version == 2 {
		want += v2AuthDataLen
	}
	switch {
	case len(b) < want:
		return 0, DropTooShort
	case len(b) > want:
		return 0, DropLength
	}

	var mode ChecksumMode
	sum := onesComplementSum(0, b)
	if version == 2 {
		if foldCarries(sum) != 0xffff {
			return 0, DropChecksum
		}
		mode = ChecksumMessageOnly
	} else {
		s, d := src.Unmap(), dst.Unmap()
		switch {
		case s.Is4() && d.Is4() && foldCarries(pseudoHeaderSum(sum, s.As4(), d.As4(), len(b))) == 0xffff:
			mode = ChecksumPseudoHeader
		case foldCarries(sum) == 0xffff:
			mode = ChecksumMessageOnly
		default:
			return 0, DropChecksum
		}
	}

	var interval time.Duration
	if version == 3 {
		interval = time.Duration(binary.BigEndian.Uint16(b[4:])&maxV3IntervalUnits) * v3IntervalUnit
	} else {
		interval = time.Duration(b[5]) * time.Second
	}
	if interval == 0 {
		return 0, DropInterval
	}

	a.Version = version
	a.VRID = b[1]
	a.Priority = b[2]
	a.Interval = interval
	a.AuthType = 0
	a.AuthData = [8]byte{}
	if version == 2 {
		a.AuthType = b[4]
		copy(a.AuthData[:], b[want-v2AuthDataLen:])
	}
	a.Addresses = a.Addresses[:0]
	for i := advertHeaderLen; i < advertHeaderLen+4*count; i += 4 {
		a.Addresses = append(a.Addresses, netip.AddrFrom4([4]byte(b[i:i+4])))
	}
	return mode, nil
}

// onesComplementSum adds b, as big-endian 16-bit words, to sum without
// folding the carries. A VRRP message is at most 1036 bytes, far from
// overflowing 32 bits.
func onesComplementSum(sum uint32, b []byte) uint32 {
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	return sum
}

// pseudoHeaderSum adds the IPv4 pseudo-header of a VRRP message of length n.
func pseudoHeaderSum(sum uint32, src, dst [4]byte, n int) uint32 {
	sum = onesComplementSum(sum, src[:])
	sum = onesComplementSum(sum, dst[:])
	return sum + IPProtocol + uint32(n)
}

// foldCarries folds the carries of a ones-complement sum into 16 bits.
func foldCarries(sum uint32) uint16 {
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return uint16(sum)
}

// DropReason says why a received datagram was refused. It is an error, and
// Unmarshal returns these values directly, so a caller can switch on the
// error (or use errors.Is) without unwrapping and without an allocation.
// Unmarshal produces the codec-level reasons; the runtime uses the others.
type DropReason uint8

// The reasons. Their String labels are stable: they name metric series.
const (
	DropNone            DropReason = iota
	DropTooShort                   // shorter than the fixed header, or than the address count says
	DropLength                     // longer than the address count says
	DropVersion                    // version not 2 or 3
	DropType                       // type not 1 (advertisement)
	DropChecksum                   // checksum matches neither form
	DropInterval                   // interval 0; the runtime also uses it for a v2 interval mismatch
	DropTTL                        // runtime: TTL not 255
	DropVRID                       // runtime: VRID not configured here
	DropAuth                       // runtime: v2 auth type or password mismatch
	DropVersionMismatch            // runtime: version differs from the instance's
	DropOwnAddress                 // runtime: advert from our own primary address
	DropNotPeer                    // runtime: source not a configured unicast peer
	numDropReasons                 // keep last
)

var dropLabels = [numDropReasons]string{
	DropNone:            "none",
	DropTooShort:        "too_short",
	DropLength:          "bad_length",
	DropVersion:         "version",
	DropType:            "type",
	DropChecksum:        "checksum",
	DropInterval:        "interval",
	DropTTL:             "ttl",
	DropVRID:            "unknown_vrid",
	DropAuth:            "auth",
	DropVersionMismatch: "version_mismatch",
	DropOwnAddress:      "own_address",
	DropNotPeer:         "not_peer",
}

// dropErrors are whole strings so that Error does not allocate either.
var dropErrors = [numDropReasons]string{
	DropNone:            "vrrp: dropped: no reason",
	DropTooShort:        "vrrp: dropped: message shorter than its header or address count",
	DropLength:          "vrrp: dropped: message longer than its address count says",
	DropVersion:         "vrrp: dropped: unknown VRRP version",
	DropType:            "vrrp: dropped: not an advertisement",
	DropChecksum:        "vrrp: dropped: bad checksum",
	DropInterval:        "vrrp: dropped: bad advertisement interval",
	DropTTL:             "vrrp: dropped: TTL is not 255",
	DropVRID:            "vrrp: dropped: virtual router ID not configured",
	DropAuth:            "vrrp: dropped: authentication mismatch",
	DropVersionMismatch: "vrrp: dropped: VRRP version differs from the instance's",
	DropOwnAddress:      "vrrp: dropped: advertisement from our own address",
	DropNotPeer:         "vrrp: dropped: source is not a configured unicast peer",
}

// String returns the reason's metric label, such as "too_short".
func (r DropReason) String() string {
	if r < numDropReasons {
		return dropLabels[r]
	}
	return "DropReason(" + strconv.Itoa(int(r)) + ")"
}

// Error returns "vrrp: dropped: " and a human description of the reason.
func (r DropReason) Error() string {
	if r < numDropReasons {
		return dropErrors[r]
	}
	return "vrrp: dropped: " + r.String()
}

// AllDropReasons returns every reason except DropNone, in order, so that the
// runtime can create each metric series before the first drop.
func AllDropReasons() []DropReason {
	rs := make([]DropReason, 0, numDropReasons-1)
	for r := DropNone + 1; r < numDropReasons; r++ {
		rs = append(rs, r)
	}
	return rs
}
