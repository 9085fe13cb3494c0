package vrrp

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// cmsg6 appends one control message as the kernel lays it out.
func cmsg6(b []byte, level, typ int32, data []byte) []byte {
	msg := make([]byte, unix.CmsgSpace(len(data)))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&msg[0]))
	h.Level, h.Type = level, typ
	h.SetLen(unix.CmsgLen(len(data)))
	copy(msg[unix.CmsgLen(0):], data)
	return append(b, msg...)
}

func hopLimitData(v int32) []byte {
	return binary.NativeEndian.AppendUint32(nil, uint32(v))
}

func pktinfoData(addr netip.Addr, ifindex uint32) []byte {
	a := addr.As16()
	return binary.NativeEndian.AppendUint32(a[:], ifindex)
}

func TestParseIPv6Control(t *testing.T) {
	dst := GroupV6
	ts := make([]byte, unsafe.Sizeof(unix.Timespec{}))
	full := cmsg6(nil, unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, ts)
	full = cmsg6(full, unix.IPPROTO_IPV6, unix.IPV6_HOPLIMIT, hopLimitData(255))
	full = cmsg6(full, unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, pktinfoData(dst, 7))
	if len(full) > IPv6RxOOBLen {
		t.Fatalf("IPv6RxOOBLen %d, the three control messages take %d", IPv6RxOOBLen, len(full))
	}
	tests := []struct {
		name string
		oob  []byte
		want IPv6Control
	}{
		{"all three", full, IPv6Control{HopLimit: 255, Dst: dst, IfIndex: 7}},
		{"pktinfo first, hop limit 64", cmsg6(cmsg6(nil, unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, pktinfoData(netip.MustParseAddr("fd00:18::2"), 3)),
			unix.IPPROTO_IPV6, unix.IPV6_HOPLIMIT, hopLimitData(64)), IPv6Control{HopLimit: 64, Dst: netip.MustParseAddr("fd00:18::2"), IfIndex: 3}},
		{"empty", nil, IPv6Control{HopLimit: -1}},
		{"hop limit only", cmsg6(nil, unix.IPPROTO_IPV6, unix.IPV6_HOPLIMIT, hopLimitData(1)), IPv6Control{HopLimit: 1}},
		{"other level with the same type", cmsg6(nil, unix.SOL_SOCKET, unix.IPV6_HOPLIMIT, hopLimitData(255)), IPv6Control{HopLimit: -1}},
		{"truncated pktinfo", cmsg6(nil, unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, pktinfoData(dst, 1)[:10]), IPv6Control{HopLimit: -1}},
		{"truncated buffer", full[:len(full)-8], IPv6Control{HopLimit: 255}},
	}
	for _, tt := range tests {
		if got := ParseIPv6Control(tt.oob); got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
	if allocs := testing.AllocsPerRun(100, func() { ParseIPv6Control(full) }); allocs != 0 {
		t.Errorf("ParseIPv6Control allocates %v times", allocs)
	}
}

func TestSourceIPv6(t *testing.T) {
	var sa unix.RawSockaddrInet6
	sa.Family = unix.AF_INET6
	sa.Addr = netip.MustParseAddr("fe80::11").As16()
	sa.Scope_id = 4
	name := unsafe.Slice((*byte)(unsafe.Pointer(&sa)), unix.SizeofSockaddrInet6)
	src, scope, ok := SourceIPv6(name)
	if !ok || src != netip.MustParseAddr("fe80::11") || scope != 4 {
		t.Errorf("SourceIPv6 = %v %d %v", src, scope, ok)
	}
	if _, _, ok := SourceIPv6(name[:unix.SizeofSockaddrInet6-1]); ok {
		t.Error("short name accepted")
	}
	sa.Family = unix.AF_INET
	if _, _, ok := SourceIPv6(name); ok {
		t.Error("AF_INET name accepted")
	}
}

func TestParseIPv6(t *testing.T) {
	payload := []byte{0x31, 1, 2, 3}
	src := netip.MustParseAddr("fe80::11").WithZone("eth0")
	oob := cmsg6(cmsg6(nil, unix.IPPROTO_IPV6, unix.IPV6_HOPLIMIT, hopLimitData(255)),
		unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, pktinfoData(GroupV6, 2))
	msg, from, dst, hl, ok := ParseIPv6(payload, src, oob)
	if !ok || &msg[0] != &payload[0] || len(msg) != 4 || from != netip.MustParseAddr("fe80::11") || dst != GroupV6 || hl != 255 {
		t.Errorf("ParseIPv6 = %v %v %v %d %v", msg, from, dst, hl, ok)
	}
	for name, tc := range map[string]struct {
		src netip.Addr
		oob []byte
	}{
		"no hop limit":  {src, cmsg6(nil, unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, pktinfoData(GroupV6, 2))},
		"no pktinfo":    {src, cmsg6(nil, unix.IPPROTO_IPV6, unix.IPV6_HOPLIMIT, hopLimitData(255))},
		"IPv4 source":   {netip.MustParseAddr("198.18.0.1"), oob},
		"mapped source": {netip.AddrFrom16(netip.MustParseAddr("198.18.0.1").As16()), oob},
		"no source":     {netip.Addr{}, oob},
	} {
		if _, _, _, _, ok := ParseIPv6(payload, tc.src, tc.oob); ok {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestParseIPv6FromKernel sends an advert over a raw IPv6 socket on
// loopback and checks that what recvmsg fills in (msg_name and the control
// messages of IPV6_RECVHOPLIMIT, IPV6_RECVPKTINFO and SO_TIMESTAMPNS) in
// IPv6RxOOBLen bytes decodes to the sent hop limit, source and destination,
// with the message intact.
func TestParseIPv6FromKernel(t *testing.T) {
	inNetns(t, func() {
		fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, IPProtocol)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		for _, o := range []struct{ level, opt int }{
			{unix.IPPROTO_IPV6, unix.IPV6_RECVHOPLIMIT}, {unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO}, {unix.SOL_SOCKET, unix.SO_TIMESTAMPNS},
		} {
			if err := unix.SetsockoptInt(fd, o.level, o.opt, 1); err != nil {
				t.Fatal(err)
			}
		}
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 2}); err != nil {
			t.Fatal(err)
		}
		lo := netip.IPv6Loopback()
		ad := Advert{Version: 3, VRID: 61, Priority: 200, Interval: time.Second, Addresses: []netip.Addr{netip.MustParseAddr("fd00:18::210")}}
		for _, hops := range []int{HopLimit, 64} {
			wire, err := ad.AppendMarshalIPv6(nil, lo, lo)
			if err != nil {
				t.Fatal(err)
			}
			if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, hops); err != nil {
				t.Fatal(err)
			}
			if err := unix.Sendto(fd, wire, 0, &unix.SockaddrInet6{Addr: lo.As16()}); err != nil {
				t.Fatal(err)
			}
			var name [unix.SizeofSockaddrInet6]byte
			oob := make([]byte, IPv6RxOOBLen)
			buf := make([]byte, maxDatagram)
			iov := unix.Iovec{Base: &buf[0]}
			iov.SetLen(len(buf))
			h := unix.Msghdr{Name: &name[0], Namelen: uint32(len(name)), Iov: &iov, Control: &oob[0]}
			h.SetIovlen(1)
			h.SetControllen(len(oob))
			n, _, errno := unix.Syscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&h)), 0)
			if errno != 0 {
				t.Fatalf("recvmsg: %v", errno)
			}
			if h.Flags&unix.MSG_CTRUNC != 0 {
				t.Fatalf("control messages truncated in %d bytes", len(oob))
			}
			src, _, ok := SourceIPv6(name[:h.Namelen])
			if !ok {
				t.Fatalf("msg_name %x not an IPv6 source", name[:h.Namelen])
			}
			msg, from, dst, hl, ok := ParseIPv6(buf[:n], src, oob[:h.Controllen])
			if !ok || from != lo || dst != lo || hl != hops {
				t.Fatalf("ParseIPv6 = %v %v %d %v, want %v %v %d", from, dst, hl, ok, lo, lo, hops)
			}
			var rx Advert
			if err := rx.UnmarshalIPv6(msg, from, dst); err != nil || rx.VRID != 61 || len(rx.Addresses) != 1 || rx.Addresses[0] != ad.Addresses[0] {
				t.Fatalf("UnmarshalIPv6: %+v %v", rx, err)
			}
		}
	})
}
