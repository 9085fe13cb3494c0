package vrrp

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// Conn is the raw IP protocol 112 socket of one interface: bound to the
// interface, joined to 224.0.0.18 there, sending with TTL 255 and without
// looping its own multicast back. All instances on the interface share it.
type Conn struct {
	ifname string
	ifi    *net.Interface
	six    bool // a raw IPv6 socket (conn6.go)
	c      *net.IPConn
	pc     *ipv4.PacketConn
	group  *net.IPAddr

	// Batched I/O (batch.go): the callbacks are bound once so that a read
	// or a flush allocates nothing.
	raw     syscall.RawConn
	readFn  func(uintptr) bool
	writeFn func(uintptr) bool
	rb      *RecvBatch // the batch being read into (reader goroutine)
	rerr    error
	tx      *SendBatch // queued adverts (loop goroutine)
	st      sendState
	frames  *frameSender // multicast adverts as Ethernet frames; nil: through tx
	held    heldSocket   // held-back adverts (hostholdback.go)
}

// ListenConn opens the socket for interface ifi.
func ListenConn(ifi *net.Interface) (*Conn, error) {
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
	pconn, err := lc.ListenPacket(context.Background(), "ip4:112", "0.0.0.0")
	if err != nil {
		return nil, fmt.Errorf("vrrp: open raw socket on %s: %w", ifi.Name, err)
	}
	c := &Conn{ifname: ifi.Name, ifi: ifi, c: pconn.(*net.IPConn), group: &net.IPAddr{IP: GroupV4.AsSlice()}, held: heldSocket{fd: -1}}
	c.pc = ipv4.NewPacketConn(c.c)
	if c.raw, err = c.c.SyscallConn(); err != nil {
		c.c.Close()
		return nil, fmt.Errorf("vrrp: raw socket on %s: %w", ifi.Name, err)
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
		{"join 224.0.0.18", func() error { return c.pc.JoinGroup(ifi, c.group) }},
		{"set multicast interface", func() error { return c.pc.SetMulticastInterface(ifi) }},
		{"set multicast TTL 255", func() error { return c.pc.SetMulticastTTL(TTL) }},
		{"set TTL 255", func() error { return c.pc.SetTTL(TTL) }},
		{"turn multicast loopback off", func() error { return c.pc.SetMulticastLoopback(false) }},
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

// stampReceived makes the kernel hand each datagram's arrival time over
// with it (RecvBatch.Received).
func (c *Conn) stampReceived() error {
	var serr error
	err := c.raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

// SendTo sends one VRRP message from src to dst at once.
func (c *Conn) SendTo(b []byte, src, dst netip.Addr) error {
	if err := c.Queue(b, src, dst, nil); err != nil {
		return err
	}
	return c.Flush()
}

// SetHardwareAddr makes the adverts sent as Ethernet frames name mac, the
// interface's hardware address now, as their source. It may only be
// called from the goroutine that sends.
func (c *Conn) SetHardwareAddr(mac net.HardwareAddr) {
	if c.frames != nil && len(mac) == len(c.frames.src) {
		copy(c.frames.src[:], mac)
	}
}

// Close closes the sockets; a blocked Read returns.
func (c *Conn) Close() error {
	if c.frames != nil {
		c.frames.close()
	}
	c.closeHeld()
	return c.c.Close()
}
