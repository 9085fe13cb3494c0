package vrrp

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// frameSender sends multicast adverts as whole Ethernet frames on a packet
// socket bound to the interface, with PACKET_QDISC_BYPASS. A master with
// hundreds of instances sends thousands of adverts a second; building the
// IP and Ethernet headers here (they are the same for every advert but for
// length, ID and checksum) skips the kernel's route lookup, IP output and
// queueing for each one. The socket is bound to no protocol, so it never
// receives. Unicast adverts, which need a neighbour's MAC, keep to the IP
// socket.
//
// The socket is not registered with the Go runtime's poller: a registered
// socket reports every sent frame's release from its buffer as an event
// (EPOLLOUT, edge-triggered), which the poller then fetches and polls on
// the master's every wake-up. Sends never wait (MSG_DONTWAIT); only when
// the send buffer is full (a burst the NIC has not sent yet) does flush
// wait for it to drain, with poll(2), for frameSendWait at most.
type frameSender struct {
	ifname string
	fd     int // -1 once closed
	src    [6]byte
	id     uint16
	n      int
	used   int
	arena  [batchSize * 1100]byte
	iov    [batchSize]unix.Iovec
	hdr    [batchSize]unix.Mmsghdr
	off    int
	errs   []error
}

// frameSendWait is the longest flush waits for a full send buffer to
// drain before it gives up on the frames left.
const frameSendWait = 100 * time.Millisecond

// groupMAC is the Ethernet address of 224.0.0.18.
var groupMAC = [6]byte{0x01, 0x00, 0x5e, 0x00, 0x00, 0x12}

// groupMAC6 is the Ethernet address of ff02::12 (RFC 2464 §7).
var groupMAC6 = [6]byte{0x33, 0x33, 0x00, 0x00, 0x00, 0x12}

func newFrameSender(ifi *net.Interface) (*frameSender, error) {
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("vrrp: %s has no Ethernet address", ifi.Name)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("vrrp: packet socket on %s: %w", ifi.Name, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifi.Index}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("vrrp: bind packet socket to %s: %w", ifi.Name, err)
	}
	// Best effort: without it frames still go out, through the queue.
	_ = unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1)
	s := &frameSender{ifname: ifi.Name, fd: fd}
	copy(s.src[:], ifi.HardwareAddr)
	return s, nil
}

// headerLen is Ethernet (14) plus IPv4 without options (20);
// headerLen6 Ethernet plus the IPv6 header (40).
const (
	headerLen  = 14 + 20
	headerLen6 = 14 + 40
)

// add queues msg as a frame from src to the VRRP group, with Ethernet
// source mac, or the interface's address if mac is not an Ethernet one.
func (s *frameSender) add(msg []byte, src netip.Addr, mac net.HardwareAddr) {
	fr := s.frame(groupMAC, unix.ETH_P_IP, headerLen, msg, mac)
	ip := fr[14:headerLen]
	ip[0] = 0x45
	ip[1] = 0xc0 // DSCP CS6: network control
	binary.BigEndian.PutUint16(ip[2:4], uint16(20+len(msg)))
	s.id++
	binary.BigEndian.PutUint16(ip[4:6], s.id)
	ip[6], ip[7] = 0, 0
	ip[8] = TTL
	ip[9] = IPProtocol
	ip[10], ip[11] = 0, 0
	s4, g4 := src.As4(), GroupV4.As4()
	copy(ip[12:16], s4[:])
	copy(ip[16:20], g4[:])
	binary.BigEndian.PutUint16(ip[10:12], ipChecksum(ip))
	s.push(fr)
}

// add6 queues msg, an advert whose checksum covers the IPv6 pseudo-header
// of src and ff02::12, as a frame from src to ff02::12 with hop limit 255,
// with Ethernet source mac, or the interface's address if mac is not an
// Ethernet one. Over IPv6 only the virtual MAC's adverts take this path
// (Conn.queue6).
func (s *frameSender) add6(msg []byte, src netip.Addr, mac net.HardwareAddr) {
	fr := s.frame(groupMAC6, unix.ETH_P_IPV6, headerLen6, msg, mac)
	ip := fr[14:headerLen6]
	// Version 6, traffic class CS6 (network control, as over IPv4), no
	// flow label.
	ip[0], ip[1], ip[2], ip[3] = 0x6c, 0x00, 0x00, 0x00
	binary.BigEndian.PutUint16(ip[4:6], uint16(len(msg)))
	ip[6] = IPProtocol
	ip[7] = HopLimit
	s16, g16 := src.As16(), GroupV6.As16()
	copy(ip[8:24], s16[:])
	copy(ip[24:40], g16[:])
	s.push(fr)
}

// frame takes the next frame of hdrLen+len(msg) bytes from the arena: the
// Ethernet header to dst for ethType, from mac (or the interface's
// address if mac is not an Ethernet one), and msg after the headers; the
// caller writes the IP header between them and pushes it.
func (s *frameSender) frame(dst [6]byte, ethType uint16, hdrLen int, msg []byte, mac net.HardwareAddr) []byte {
	fr := s.arena[s.used : s.used+hdrLen+len(msg)]
	copy(fr[0:6], dst[:])
	if len(mac) == 6 {
		copy(fr[6:12], mac)
	} else {
		copy(fr[6:12], s.src[:])
	}
	binary.BigEndian.PutUint16(fr[12:14], ethType)
	copy(fr[hdrLen:], msg)
	return fr
}

// push queues fr, taken by frame and filled in.
func (s *frameSender) push(fr []byte) {
	i := s.n
	s.iov[i].Base = &fr[0]
	s.iov[i].SetLen(len(fr))
	s.hdr[i].Hdr.Iov = &s.iov[i]
	s.hdr[i].Hdr.SetIovlen(1)
	s.used += len(fr)
	s.n++
}

// full reports whether a message of size bytes may not fit, with the
// larger (IPv6) headers.
func (s *frameSender) full(size int) bool {
	return s.n == batchSize || s.used+headerLen6+size > len(s.arena)
}

// ipChecksum is the IPv4 header checksum of h (its checksum field zero).
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

func (s *frameSender) flush() error {
	if s.n == 0 {
		return nil
	}
	s.off, s.errs = 0, s.errs[:0]
	err := s.send()
	s.n, s.used = 0, 0
	if err != nil {
		return fmt.Errorf("vrrp: send frames on %s: %w", s.ifname, err)
	}
	if len(s.errs) > 0 {
		return fmt.Errorf("vrrp: send frames on %s: %v", s.ifname, s.errs[0])
	}
	return nil
}

// send writes the queued frames, waiting with poll(2) while the send
// buffer is full, for frameSendWait at most.
func (s *frameSender) send() error {
	if s.fd < 0 {
		return os.ErrClosed
	}
	var deadline time.Time
	for !sendmmsgAll(uintptr(s.fd), s.hdr[:s.n], &s.off, &s.errs) {
		if deadline.IsZero() {
			deadline = time.Now().Add(frameSendWait)
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("%d frames not sent: the send buffer stayed full for %v", s.n-s.off, frameSendWait)
		}
		pfd := []unix.PollFd{{Fd: int32(s.fd), Events: unix.POLLOUT}}
		if _, err := unix.Poll(pfd, int(left/time.Millisecond)+1); err != nil && err != unix.EINTR {
			return fmt.Errorf("wait for the send buffer: %w", err)
		}
	}
	return nil
}

func (s *frameSender) close() error {
	if s.fd < 0 {
		return nil
	}
	err := unix.Close(s.fd)
	s.fd = -1
	return err
}
