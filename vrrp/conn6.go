package vrrp

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// ListenConn6 opens the advert socket of interface ifi for VRRPv3 over IPv6
// (RFC 5798 §5.1.2): a raw IPv6 protocol 112 socket bound to the
// interface, joined to ff02::12 there, sending with hop limit 255 (unicast
// and multicast) without looping its own multicast back, and reporting
// each datagram's hop limit, destination (IPV6_RECVHOPLIMIT,
// IPV6_RECVPKTINFO) and arrival time (SO_TIMESTAMPNS). Adverts leave from
// the source Queue is given (IPV6_PKTINFO): the interface's link-local, or
// source_address. The checksum is the message's own (AppendMarshalIPv6);
// the kernel computes none for protocol 112. Adverts go through the IP
// socket, not as prebuilt frames: the kernel resolves no neighbour for
// ff02::12 and this path costs one sendmmsg per flush like the other;
// but those of an instance with virtual_mac, which must leave from the
// virtual MAC, go as Ethernet frames on a packet socket (frameSender.add6).
func ListenConn6(ifi *net.Interface) (*Conn, error) {
	var sockErr error
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		err := rc.Control(func(fd uintptr) {
			sockErr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, ifi.Name)
		})
		if err != nil {
			return err
		}
		return sockErr
	}}
	pconn, err := lc.ListenPacket(context.Background(), "ip6:112", "::")
	if err != nil {
		return nil, fmt.Errorf("vrrp: open raw IPv6 socket on %s: %w", ifi.Name, err)
	}
	c := &Conn{ifname: ifi.Name, ifi: ifi, c: pconn.(*net.IPConn), six: true,
		group: &net.IPAddr{IP: GroupV6.AsSlice()}, held: heldSocket{fd: -1}}
	pc := ipv6.NewPacketConn(c.c)
	if c.raw, err = c.c.SyscallConn(); err != nil {
		c.c.Close()
		return nil, fmt.Errorf("vrrp: raw IPv6 socket on %s: %w", ifi.Name, err)
	}
	c.readFn, c.writeFn = c.doRead, c.doWrite
	c.tx = &SendBatch{}
	if len(ifi.HardwareAddr) == 6 {
		if c.frames, err = newFrameSender(ifi); err != nil {
			c.c.Close()
			return nil, err
		}
	}
	steps := []struct {
		what string
		do   func() error
	}{
		{"join ff02::12", func() error { return pc.JoinGroup(ifi, c.group) }},
		{"set multicast interface", func() error { return pc.SetMulticastInterface(ifi) }},
		{"set multicast hop limit 255", func() error { return pc.SetMulticastHopLimit(HopLimit) }},
		{"set hop limit 255", func() error { return pc.SetHopLimit(HopLimit) }},
		{"turn multicast loopback off", func() error { return pc.SetMulticastLoopback(false) }},
		{"ask for the hop limit", func() error { return c.setInt(unix.IPPROTO_IPV6, unix.IPV6_RECVHOPLIMIT, 1) }},
		{"ask for the destination", func() error { return c.setInt(unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1) }},
		{"ask for receive timestamps", c.stampReceived},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			c.c.Close()
			return nil, fmt.Errorf("vrrp: %s on %s: %w", s.what, ifi.Name, err)
		}
	}
	return c, nil
}

// setInt sets an integer socket option on the advert socket.
func (c *Conn) setInt(level, opt, v int) error {
	var serr error
	err := c.raw.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), level, opt, v) })
	if err != nil {
		return err
	}
	return serr
}

// queue6 is Queue over IPv6. A multicast advert with an Ethernet source
// mac (virtual_mac) leaves as a frame from it; any other through the IP
// socket, from the interface's MAC.
func (c *Conn) queue6(b []byte, src, dst netip.Addr, mac net.HardwareAddr) error {
	if !isIPv6(src) || !isIPv6(dst) {
		return fmt.Errorf("vrrp: send on %s: need IPv6 addresses, have %s → %s", c.ifname, src, dst)
	}
	var err error
	if mac != nil && c.frames != nil && dst == GroupV6 {
		if c.frames.full(len(b)) {
			err = c.Flush()
		}
		c.frames.add6(b, src.WithZone(""), mac)
		return err
	}
	if c.tx.full(len(b)) {
		err = c.Flush()
	}
	c.tx.add6(b, src.WithZone(""), dst.WithZone(""), c.ifi.Index)
	return err
}
