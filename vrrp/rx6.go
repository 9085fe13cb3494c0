package vrrp

import (
	"encoding/binary"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Receiving over IPv6. A raw IPv6 socket delivers the payload alone: unlike
// IPv4 there is no header to parse (IPV6_HDRINCL does not exist for
// receive). The source address comes in msg_name (a sockaddr_in6), and the
// hop limit and destination come as control messages once the socket has
// IPV6_RECVHOPLIMIT and IPV6_RECVPKTINFO set. These functions decode those
// buffers as recvmsg/recvmmsg fill them, without allocating, so the
// runtime's receive path stays allocation-free.

// IPv6RxOOBLen is room enough for the control messages an IPv6 advert
// carries: IPV6_HOPLIMIT (an int), IPV6_PKTINFO (struct in6_pktinfo) and the
// receive timestamp (SCM_TIMESTAMPNS, a struct timespec).
var IPv6RxOOBLen = unix.CmsgSpace(4) + unix.CmsgSpace(unix.SizeofInet6Pktinfo) + unix.CmsgSpace(int(unsafe.Sizeof(unix.Timespec{})))

// IPv6Control is what the kernel reports beside one datagram on a raw IPv6
// socket.
type IPv6Control struct {
	// HopLimit is the datagram's hop limit (IPV6_HOPLIMIT), -1 if absent.
	HopLimit int
	// Dst is the datagram's destination address (IPV6_PKTINFO), invalid if
	// absent. It carries no zone.
	Dst netip.Addr
	// IfIndex is the interface it arrived on (IPV6_PKTINFO), 0 if absent.
	IfIndex int
}

// ParseIPv6Control walks oob, the control buffer of one received message
// (msg_control up to msg_controllen), for IPV6_HOPLIMIT and IPV6_PKTINFO.
// Other control messages (a timestamp) are skipped. It stops at the first
// malformed header; what it found before stays.
func ParseIPv6Control(oob []byte) IPv6Control {
	c := IPv6Control{HopLimit: -1}
	hdrLen := unix.CmsgLen(0)
	for len(oob) >= hdrLen {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		n := int(h.Len)
		if n < hdrLen || n > len(oob) {
			break
		}
		data := oob[hdrLen:n]
		if h.Level == unix.IPPROTO_IPV6 {
			switch h.Type {
			case unix.IPV6_HOPLIMIT:
				if len(data) >= 4 {
					c.HopLimit = int(int32(binary.NativeEndian.Uint32(data)))
				}
			case unix.IPV6_PKTINFO:
				if len(data) >= unix.SizeofInet6Pktinfo {
					c.Dst = netip.AddrFrom16([16]byte(data[:16]))
					c.IfIndex = int(binary.NativeEndian.Uint32(data[16:20]))
				}
			}
		}
		next := unix.CmsgSpace(n - hdrLen)
		if next >= len(oob) {
			break
		}
		oob = oob[next:]
	}
	return c
}

// SourceIPv6 decodes name, the msg_name recvmsg filled (a struct
// sockaddr_in6), into the datagram's source address and its scope (the
// interface index of a link-local source, else 0). The address carries no
// zone, so that it compares equal to a configured peer.
func SourceIPv6(name []byte) (src netip.Addr, scopeID uint32, ok bool) {
	if len(name) < unix.SizeofSockaddrInet6 {
		return netip.Addr{}, 0, false
	}
	sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(&name[0]))
	if sa.Family != unix.AF_INET6 {
		return netip.Addr{}, 0, false
	}
	return netip.AddrFrom16(sa.Addr), sa.Scope_id, true
}

// ParseIPv6 is ParseIPv4's counterpart for a raw IPv6 socket: given the
// payload (already the VRRP message), the source from msg_name (see
// SourceIPv6) and the control buffer, it returns the payload, source,
// destination and hop limit. It refuses (ok false) a datagram whose hop
// limit or destination the kernel did not report — a socket without
// IPV6_RECVHOPLIMIT and IPV6_RECVPKTINFO — or whose source is not IPv6, so
// that the caller cannot mistake a missing hop limit for a forwarded one.
// The hop limit itself is the caller's to check (DropTTL when not
// HopLimit), as the TTL is for IPv4.
func ParseIPv6(payload []byte, src netip.Addr, oob []byte) (msg []byte, from, dst netip.Addr, hopLimit int, ok bool) {
	c := ParseIPv6Control(oob)
	if c.HopLimit < 0 || !c.Dst.IsValid() || !isIPv6(src) {
		return nil, netip.Addr{}, netip.Addr{}, 0, false
	}
	return payload, src.WithZone(""), c.Dst, c.HopLimit, true
}
