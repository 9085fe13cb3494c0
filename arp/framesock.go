package arp

import (
	"fmt"
	"net"
	"syscall"

	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"
)

// frameSocket is what Announcer and NAAnnouncer share: a packet socket on
// one interface that writes whole Ethernet frames to one link-layer
// destination, without allocating. It is bound to no protocol, so the
// kernel never queues received frames on it.
type frameSocket struct {
	ifname  string
	ifi     *net.Interface // as it was at the last open
	p       *packet.Conn
	rc      syscall.RawConn
	to      unix.SockaddrLinklayer
	frame   []byte // the frame being written, filled in by the caller
	werr    error  // its write's result
	writeFn func(fd uintptr) bool
}

// open opens a socket on ifi for frames of size bytes to dst with
// ethType, and closes the one it replaces once the new one is open.
func (s *frameSocket) open(ifi *net.Interface, ethType uint16, dst net.HardwareAddr, size int) error {
	p, err := packet.Listen(ifi, packet.Raw, 0, nil)
	if err != nil {
		return fmt.Errorf("arp: open packet socket on %s: %w", s.ifname, err)
	}
	rc, err := p.SyscallConn()
	if err != nil {
		p.Close()
		return fmt.Errorf("arp: packet socket on %s: %w", s.ifname, err)
	}
	if s.p != nil {
		s.p.Close()
	}
	if s.writeFn == nil {
		s.writeFn = s.write
	}
	s.ifi, s.p, s.rc = ifi, p, rc
	s.frame = make([]byte, size)
	s.to = unix.SockaddrLinklayer{Protocol: htons(ethType), Ifindex: ifi.Index, Halen: 6}
	copy(s.to.Addr[:], dst)
	return nil
}

// closed reports whether the socket is closed.
func (s *frameSocket) closed() bool { return s.p == nil }

// close releases the socket.
func (s *frameSocket) close() error {
	if s.p == nil {
		return nil
	}
	err := s.p.Close()
	s.p, s.rc = nil, nil
	return err
}

// send writes s.frame.
func (s *frameSocket) send() error {
	if err := s.rc.Write(s.writeFn); err != nil {
		return err
	}
	return s.werr
}

// write sends s.frame on the socket; RawConn.Write calls it with the fd.
// It is bound once (writeFn), so a send allocates no closure.
func (s *frameSocket) write(fd uintptr) bool {
	s.werr = unix.Sendto(int(fd), s.frame, 0, &s.to)
	// A full send queue: wait until the socket is writable again.
	return s.werr != unix.EAGAIN
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
