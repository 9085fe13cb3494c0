package vip

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// addrSocket adds and removes IPv4 addresses over a route netlink socket of
// its own. A takeover waits on the add (the new master answers for a VIP
// only once it is there), so the request is built in a reused buffer and
// goes out with one write and one read on a blocking socket: the kernel
// handles an address request inside the write, so the ack is already
// queued when the read asks for it, and no round trip through Go's poller,
// deadline bookkeeping or a fresh receive buffer is spent on it. A receive
// timeout bounds the wait should an ack ever be missing.
type addrSocket struct {
	mu  sync.Mutex
	fd  int
	seq uint32
	req [reqLen]byte
	rx  [4096]byte
}

const (
	nlmsgHdrLen  = unix.SizeofNlMsghdr
	ifaddrmsgLen = unix.SizeofIfAddrmsg
	attrV4Len    = unix.SizeofRtAttr + 4
	// The largest request: header, ifaddrmsg, IFA_LOCAL, IFA_ADDRESS and
	// IFA_BROADCAST.
	reqLen = nlmsgHdrLen + ifaddrmsgLen + 3*attrV4Len

	// ackTimeout bounds the wait for an ack the kernel should have queued
	// before the write returned.
	ackTimeout = 2 // seconds
)

func newAddrSocket() (*addrSocket, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("vip: open netlink socket: %w", err)
	}
	tv := unix.Timeval{Sec: ackTimeout}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("vip: set netlink receive timeout: %w", err)
	}
	// Errors come with the kernel's explanation where it has one.
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_EXT_ACK, 1)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("vip: bind netlink socket: %w", err)
	}
	return &addrSocket{fd: fd}, nil
}

func (s *addrSocket) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fd >= 0 {
		unix.Close(s.fd)
		s.fd = -1
	}
}

// add puts p on the interface, replacing an address already there, as
// `ip address replace` does.
func (s *addrSocket) add(index int, p netip.Prefix) error {
	return s.do(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_REPLACE, index, p)
}

// del takes p off the interface.
func (s *addrSocket) del(index int, p netip.Prefix) error {
	return s.do(unix.RTM_DELADDR, 0, index, p)
}

// do sends one address request and waits for its ack. The error is the
// kernel's errno (a syscall.Errno, so errors.Is works on it), with the
// kernel's message where it gave one.
func (s *addrSocket) do(typ uint16, flags uint16, index int, p netip.Prefix) error {
	if !p.Addr().Is4() {
		return fmt.Errorf("%s is not an IPv4 prefix", p)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fd < 0 {
		return syscall.EBADF
	}
	s.seq++
	n := encodeAddrRequest(s.req[:], typ, flags|unix.NLM_F_REQUEST|unix.NLM_F_ACK, s.seq, index, p)
	// Unaddressed, a netlink datagram goes to the kernel; write and read
	// take no socket address to convert, so nothing is allocated.
	if _, err := unix.Write(s.fd, s.req[:n]); err != nil {
		return fmt.Errorf("netlink send: %w", err)
	}
	for {
		m, err := unix.Read(s.fd, s.rx[:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("netlink ack: %w", err)
		}
		done, err := parseAck(s.rx[:m], s.seq)
		if done {
			return err
		}
		// A late ack of an earlier request that timed out: read on.
	}
}

// encodeAddrRequest writes an RTM_NEWADDR or RTM_DELADDR request for p on
// the interface into b (at least reqLen bytes) and returns its length. The
// attributes are those `ip address` sends: IFA_LOCAL and IFA_ADDRESS, and
// for a prefix shorter than /31 the IFA_BROADCAST it implies.
func encodeAddrRequest(b []byte, typ, flags uint16, seq uint32, index int, p netip.Prefix) int {
	ne := binary.NativeEndian
	a := p.Addr().As4()
	off := nlmsgHdrLen
	b[off] = unix.AF_INET
	b[off+1] = uint8(p.Bits())
	b[off+2] = 0 // flags
	b[off+3] = 0 // scope: universe
	ne.PutUint32(b[off+4:], uint32(index))
	off += ifaddrmsgLen
	putAttr := func(t uint16, v [4]byte) {
		ne.PutUint16(b[off:], attrV4Len)
		ne.PutUint16(b[off+2:], t)
		copy(b[off+unix.SizeofRtAttr:], v[:])
		off += attrV4Len
	}
	putAttr(unix.IFA_LOCAL, a)
	putAttr(unix.IFA_ADDRESS, a)
	if p.Bits() < 31 {
		host := ^uint32(0) >> p.Bits()
		var brd [4]byte
		binary.BigEndian.PutUint32(brd[:], binary.BigEndian.Uint32(a[:])|host)
		putAttr(unix.IFA_BROADCAST, brd)
	}
	ne.PutUint32(b[0:], uint32(off))
	ne.PutUint16(b[4:], typ)
	ne.PutUint16(b[6:], flags)
	ne.PutUint32(b[8:], seq)
	ne.PutUint32(b[12:], 0) // port id: the kernel fills in ours
	return off
}

// parseAck looks through a datagram from the kernel for the ack of request
// seq. It reports whether it found it and the error it carries.
func parseAck(b []byte, seq uint32) (bool, error) {
	ne := binary.NativeEndian
	for len(b) >= nlmsgHdrLen {
		l := int(ne.Uint32(b[0:]))
		if l < nlmsgHdrLen || l > len(b) {
			return true, fmt.Errorf("netlink ack: malformed message of %d bytes in %d", l, len(b))
		}
		typ, flags, mseq := ne.Uint16(b[4:]), ne.Uint16(b[6:]), ne.Uint32(b[8:])
		msg := b[:l]
		b = b[min(nlmsgAlign(l), len(b)):]
		if mseq != seq || typ != unix.NLMSG_ERROR {
			continue
		}
		if l < nlmsgHdrLen+4 {
			return true, fmt.Errorf("netlink ack: truncated error message")
		}
		errno := -int32(ne.Uint32(msg[nlmsgHdrLen:]))
		if errno == 0 {
			return true, nil
		}
		err := error(syscall.Errno(errno))
		if text := extackMessage(msg, flags); text != "" {
			err = &kernelError{errno: syscall.Errno(errno), msg: text}
		}
		return true, err
	}
	return false, nil
}

// extackMessage is the NLMSGERR_ATTR_MSG text of an error ack, if any.
func extackMessage(msg []byte, flags uint16) string {
	if flags&unix.NLM_F_ACK_TLVS == 0 {
		return ""
	}
	ne := binary.NativeEndian
	// nlmsgerr: the errno, then the request's header, and its payload
	// unless the kernel capped it.
	off := nlmsgHdrLen + 4 + nlmsgHdrLen
	if flags&unix.NLM_F_CAPPED == 0 && len(msg) >= nlmsgHdrLen+4+4 {
		off = nlmsgHdrLen + 4 + nlmsgAlign(int(ne.Uint32(msg[nlmsgHdrLen+4:])))
	}
	for off+unix.SizeofRtAttr <= len(msg) {
		l := int(ne.Uint16(msg[off:]))
		t := ne.Uint16(msg[off+2:])
		if l < unix.SizeofRtAttr || off+l > len(msg) {
			return ""
		}
		if t&^(unix.NLA_F_NESTED|unix.NLA_F_NET_BYTEORDER) == unix.NLMSGERR_ATTR_MSG {
			v := msg[off+unix.SizeofRtAttr : off+l]
			for i, c := range v {
				if c == 0 {
					v = v[:i]
					break
				}
			}
			return string(v)
		}
		off += nlmsgAlign(l)
	}
	return ""
}

func nlmsgAlign(n int) int { return (n + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1) }

// kernelError is an errno with the kernel's extended-ack message.
type kernelError struct {
	errno syscall.Errno
	msg   string
}

func (e *kernelError) Error() string { return e.errno.Error() + ": " + e.msg }
func (e *kernelError) Unwrap() error { return e.errno }
