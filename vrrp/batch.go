package vrrp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Batched socket I/O for the per-advert hot path. A master with hundreds
// of instances sends their adverts in one burst, and a backup receives them
// in one; recvmmsg and sendmmsg move a whole burst per system call, through
// buffers allocated once, so a steady stream of adverts costs no
// allocation.

// batchSize is how many datagrams one system call moves at most.
const batchSize = 64

// maxDatagram bounds one received datagram: a 60-byte IP header and the
// largest VRRP message (v2 with 255 addresses), rounded up.
const maxDatagram = 1152

// rxOOBLen is room for the control messages a datagram carries: over IPv4
// the kernel's receive timestamp alone (SCM_TIMESTAMPNS, a struct
// timespec, 32 bytes); over IPv6 the hop limit and IPV6_PKTINFO too
// (IPv6RxOOBLen, 96 bytes). The timestamp comes first either way.
const rxOOBLen = 96

// maxRxAge bounds how long before it was handled a datagram is taken to
// have arrived. The stamp is wall-clock time, so a wall clock stepped back
// while a datagram waited would make it look older than it is; the bound
// keeps that error small. A datagram that really waited longer is taken as
// younger, which can only delay a backup's takeover, never hasten it.
const maxRxAge = 2 * time.Millisecond

// RecvBatch holds the datagrams of one recvmmsg call, IP headers included,
// and the kernel's receive timestamp of each.
type RecvBatch struct {
	N    int // datagrams received
	bufs [batchSize][maxDatagram]byte
	oob  [batchSize][rxOOBLen]byte
	name [batchSize]unix.RawSockaddrInet6 // the source (read over IPv6; IPv4 has it in the header)
	iov  [batchSize]unix.Iovec
	hdr  [batchSize]unix.Mmsghdr
}

// NewRecvBatch returns a batch ready for Conn.ReadBatch.
func NewRecvBatch() *RecvBatch {
	b := &RecvBatch{}
	for i := range b.hdr {
		b.iov[i].Base = &b.bufs[i][0]
		b.iov[i].SetLen(maxDatagram)
		b.hdr[i].Hdr.Iov = &b.iov[i]
		b.hdr[i].Hdr.SetIovlen(1)
		b.hdr[i].Hdr.Control = &b.oob[i][0]
		b.hdr[i].Hdr.Name = (*byte)(unsafe.Pointer(&b.name[i]))
	}
	b.resetControl()
	return b
}

// resetControl gives every message its whole control buffer again; the
// kernel shrinks msg_controllen to what it wrote.
func (b *RecvBatch) resetControl() {
	for i := range b.hdr {
		b.hdr[i].Hdr.SetControllen(rxOOBLen)
		b.hdr[i].Hdr.Namelen = unix.SizeofSockaddrInet6
	}
}

// Source returns the source address msg_name holds for the i'th datagram
// (a struct sockaddr_in6 over IPv6).
func (b *RecvBatch) Source(i int) []byte {
	n := min(int(b.hdr[i].Hdr.Namelen), unix.SizeofSockaddrInet6)
	return unsafe.Slice((*byte)(unsafe.Pointer(&b.name[i])), unix.SizeofSockaddrInet6)[:n]
}

// Control returns the control messages received with the i'th datagram.
func (b *RecvBatch) Control(i int) []byte {
	return b.oob[i][:min(int(b.hdr[i].Hdr.Controllen), rxOOBLen)]
}

// Datagram returns the i'th datagram received.
func (b *RecvBatch) Datagram(i int) []byte {
	return b.bufs[i][:b.hdr[i].Len]
}

// Received returns when the i'th datagram arrived, on the monotonic clock
// of now, which must have been read after the datagram was: the kernel's
// receive timestamp, carried over as an age before now (at most
// maxRxAge), so that it stays comparable with other time.Now values. A
// datagram without a timestamp arrived at now. This is when the RFC's
// timers start: a backup's Master_Down_Timer runs from the moment the
// advert reached the host, not from when the loop got round to it.
func (b *RecvBatch) Received(i int, now time.Time) time.Time {
	h := &b.hdr[i].Hdr
	dataOff, size := unix.CmsgLen(0), int(unsafe.Sizeof(unix.Timespec{}))
	if int(h.Controllen) < dataOff+size {
		return now
	}
	c := (*unix.Cmsghdr)(unsafe.Pointer(&b.oob[i][0]))
	if c.Level != unix.SOL_SOCKET || c.Type != unix.SCM_TIMESTAMPNS || int(c.Len) < dataOff+size {
		return now
	}
	ts := (*unix.Timespec)(unsafe.Pointer(&b.oob[i][dataOff]))
	stamp := time.Unix(ts.Unix())
	age := now.Sub(stamp) // wall clock: the stamp has no monotonic reading
	if age <= 0 {
		return now
	}
	return now.Add(-min(age, maxRxAge))
}

// Stamp is the i'th datagram's kernel receive stamp in nanoseconds since
// the epoch (wall clock), 0 without one: an identity for the datagram, the
// same on every socket that received it.
func (b *RecvBatch) Stamp(i int) int64 {
	ts, ok := b.timespec(i)
	if !ok {
		return 0
	}
	return ts.Nano()
}

func (b *RecvBatch) timespec(i int) (*unix.Timespec, bool) {
	h := &b.hdr[i].Hdr
	dataOff, size := unix.CmsgLen(0), int(unsafe.Sizeof(unix.Timespec{}))
	if int(h.Controllen) < dataOff+size {
		return nil, false
	}
	c := (*unix.Cmsghdr)(unsafe.Pointer(&b.oob[i][0]))
	if c.Level != unix.SOL_SOCKET || c.Type != unix.SCM_TIMESTAMPNS || int(c.Len) < dataOff+size {
		return nil, false
	}
	return (*unix.Timespec)(unsafe.Pointer(&b.oob[i][dataOff])), true
}

// ReceivedSince is Received for a datagram that may have waited long in
// the kernel (a held-back advert): its age may be up to now − floor,
// floor being a time before the socket was last read empty, after which
// it must have arrived. With a wall clock stepped since (step), the stamp
// cannot be trusted, and the datagram is taken to have arrived at now,
// which can only delay a takeover, never hasten it.
func (b *RecvBatch) ReceivedSince(i int, now, floor time.Time, step bool) time.Time {
	ts, ok := b.timespec(i)
	if !ok || step {
		return now
	}
	age := now.Sub(time.Unix(ts.Unix())) // wall clock: the stamp has no monotonic reading
	if age <= 0 {
		return now
	}
	return now.Add(-min(age, now.Sub(floor)))
}

// ParseIPv4 splits a raw socket's datagram into its IPv4 header fields and
// payload. It refuses what is not a whole IPv4 datagram.
func ParseIPv4(b []byte) (payload []byte, src, dst netip.Addr, ttl int, ok bool) {
	if len(b) < 20 || b[0]>>4 != 4 {
		return nil, src, dst, 0, false
	}
	ihl := int(b[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(b[2:4]))
	if ihl < 20 || total < ihl || total > len(b) {
		return nil, src, dst, 0, false
	}
	src = netip.AddrFrom4([4]byte(b[12:16]))
	dst = netip.AddrFrom4([4]byte(b[16:20]))
	return b[ihl:total], src, dst, int(b[8]), true
}

// SendBatch queues adverts for one sendmmsg call. Each message carries an
// IP_PKTINFO control message naming the source address, so adverts leave
// from the interface's primary address whatever the routing table says.
type SendBatch struct {
	n      int
	used   int // bytes of arena in use
	arena  [batchSize * 1100]byte
	iov    [batchSize]unix.Iovec
	hdr    [batchSize]unix.Mmsghdr
	names  [batchSize]unix.RawSockaddrInet4
	names6 [batchSize]unix.RawSockaddrInet6
	oob    [batchSize][unix.SizeofCmsghdr + unix.SizeofInet6Pktinfo + 4]byte
}

func (b *SendBatch) full(size int) bool {
	return b.n == batchSize || b.used+size > len(b.arena)
}

// add queues msg from src to dst out of the interface with index ifindex.
func (b *SendBatch) add(msg []byte, src, dst netip.Addr, ifindex int) {
	i := b.n
	copy(b.arena[b.used:], msg)
	b.iov[i].Base = &b.arena[b.used]
	b.iov[i].SetLen(len(msg))
	b.used += len(msg)

	b.names[i] = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: dst.As4()}

	oob := b.oob[i][:]
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level = unix.IPPROTO_IP
	h.Type = unix.IP_PKTINFO
	h.SetLen(unix.CmsgLen(unix.SizeofInet4Pktinfo))
	pi := (*unix.Inet4Pktinfo)(unsafe.Pointer(&oob[unix.CmsgLen(0)]))
	*pi = unix.Inet4Pktinfo{Ifindex: int32(ifindex), Spec_dst: src.As4()}

	m := &b.hdr[i].Hdr
	m.Name = (*byte)(unsafe.Pointer(&b.names[i]))
	m.Namelen = unix.SizeofSockaddrInet4
	m.Iov = &b.iov[i]
	m.SetIovlen(1)
	m.Control = &oob[0]
	m.SetControllen(unix.CmsgSpace(unix.SizeofInet4Pktinfo))
	b.n++
}

// add6 is add over IPv6: IPV6_PKTINFO names the source and the
// interface. A link-local destination is scoped to the interface.
func (b *SendBatch) add6(msg []byte, src, dst netip.Addr, ifindex int) {
	i := b.n
	copy(b.arena[b.used:], msg)
	b.iov[i].Base = &b.arena[b.used]
	b.iov[i].SetLen(len(msg))
	b.used += len(msg)

	b.names6[i] = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: dst.As16()}
	if dst.IsLinkLocalUnicast() || dst.IsLinkLocalMulticast() {
		b.names6[i].Scope_id = uint32(ifindex)
	}

	oob := b.oob[i][:]
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level = unix.IPPROTO_IPV6
	h.Type = unix.IPV6_PKTINFO
	h.SetLen(unix.CmsgLen(unix.SizeofInet6Pktinfo))
	pi := (*unix.Inet6Pktinfo)(unsafe.Pointer(&oob[unix.CmsgLen(0)]))
	*pi = unix.Inet6Pktinfo{Addr: src.As16(), Ifindex: uint32(ifindex)}

	m := &b.hdr[i].Hdr
	m.Name = (*byte)(unsafe.Pointer(&b.names6[i]))
	m.Namelen = unix.SizeofSockaddrInet6
	m.Iov = &b.iov[i]
	m.SetIovlen(1)
	m.Control = &oob[0]
	m.SetControllen(unix.CmsgSpace(unix.SizeofInet6Pktinfo))
	b.n++
}

func (b *SendBatch) reset() { b.n, b.used = 0, 0 }

// sendState is the Conn's flush in progress, read by its write callback.
type sendState struct {
	off  int
	errs []error
}

// Queue adds one VRRP message to the send batch, flushing first if it is
// full. The message is copied; b may be reused at once. A multicast advert
// leaves as an Ethernet frame from mac (the instance's virtual MAC), or
// from the interface's address if mac is nil; a unicast one leaves through
// the IP socket, from the interface's address, whatever mac. Over IPv6 a
// multicast advert without mac goes through the IP socket too (queue6).
func (c *Conn) Queue(b []byte, src, dst netip.Addr, mac net.HardwareAddr) error {
	if c.six {
		return c.queue6(b, src, dst, mac)
	}
	if !src.Is4() || !dst.Is4() {
		return fmt.Errorf("vrrp: send on %s: need IPv4 addresses, have %s → %s", c.ifname, src, dst)
	}
	var err error
	if c.frames != nil && dst == GroupV4 {
		if c.frames.full(len(b)) {
			err = c.Flush()
		}
		c.frames.add(b, src, mac)
		return err
	}
	if c.tx.full(len(b)) {
		err = c.Flush()
	}
	c.tx.add(b, src, dst, c.ifi.Index)
	return err
}

// Pending reports whether adverts wait for Flush.
func (c *Conn) Pending() bool { return c.tx.n > 0 || (c.frames != nil && c.frames.n > 0) }

// Flush sends every queued message, in as few sendmmsg calls as the
// kernel accepts. A message the kernel refuses is skipped and reported.
func (c *Conn) Flush() error {
	var ferr error
	if c.frames != nil {
		ferr = c.frames.flush()
	}
	if c.tx.n == 0 {
		return ferr
	}
	c.st.off, c.st.errs = 0, c.st.errs[:0]
	err := c.raw.Write(c.writeFn)
	c.tx.reset()
	if err != nil {
		return errors.Join(ferr, fmt.Errorf("vrrp: send adverts on %s: %w", c.ifname, err))
	}
	if len(c.st.errs) > 0 {
		return errors.Join(ferr, fmt.Errorf("vrrp: send adverts on %s: %w", c.ifname, errors.Join(c.st.errs...)))
	}
	return ferr
}

// doWrite is the raw connection's write callback; false means "wait until
// the socket is writable, then call again".
func (c *Conn) doWrite(fd uintptr) bool {
	return sendmmsgAll(fd, c.tx.hdr[:c.tx.n], &c.st.off, &c.st.errs)
}

// The hot path's system calls (recvmmsg and sendmmsg here, the timer's in
// waketimer.go) never block: the sockets are read and written with
// MSG_DONTWAIT, and the runtime's poller does the waiting. So they are made
// with RawSyscall6, which skips the runtime's system-call bookkeeping. That
// bookkeeping (entersyscall) wakes the runtime's sysmon thread whenever it
// is in its deep sleep, which it is whenever the daemon is idle, that is
// before nearly every advert: sysmon then ran and slept again, extra
// context switches per advert on top of the wake-up that delivers it. A raw
// call holds the P for the few microseconds it takes, as any Go code does.

// sendmmsgAll is the one sendmmsg loop, of the IP socket's adverts and of
// the packet socket's frames: it sends hdr from *off on, in as few calls as
// the kernel accepts, skipping (and recording in errs, up to four) a
// message the kernel refuses. It returns false when the socket is full:
// the caller's raw connection waits until it is writable and calls again.
func sendmmsgAll(fd uintptr, hdr []unix.Mmsghdr, off *int, errs *[]error) bool {
	for *off < len(hdr) {
		n, _, errno := unix.RawSyscall6(unix.SYS_SENDMMSG, fd,
			uintptr(unsafe.Pointer(&hdr[*off])), uintptr(len(hdr)-*off), unix.MSG_DONTWAIT, 0, 0)
		switch {
		case errno == unix.EAGAIN:
			return false
		case errno == unix.EINTR:
			continue
		case errno != 0:
			// The first remaining message failed: skip it, go on.
			if len(*errs) < 4 {
				*errs = append(*errs, errno)
			}
			*off++
		default:
			*off += int(n)
		}
	}
	return true
}

// ReadBatch waits for datagrams and reads as many as are queued, up to the
// batch's size, into b. Only one goroutine may read at a time.
func (c *Conn) ReadBatch(b *RecvBatch) error {
	b.resetControl()
	c.rb = b
	err := c.raw.Read(c.readFn)
	c.rb = nil
	if err != nil {
		return err
	}
	return c.rerr
}

func (c *Conn) doRead(fd uintptr) bool {
	n, _, errno := unix.RawSyscall6(unix.SYS_RECVMMSG, fd,
		uintptr(unsafe.Pointer(&c.rb.hdr[0])), batchSize, unix.MSG_DONTWAIT, 0, 0)
	for errno == unix.EINTR {
		n, _, errno = unix.RawSyscall6(unix.SYS_RECVMMSG, fd,
			uintptr(unsafe.Pointer(&c.rb.hdr[0])), batchSize, unix.MSG_DONTWAIT, 0, 0)
	}
	switch errno {
	case unix.EAGAIN:
		return false
	case 0:
		c.rb.N, c.rerr = int(n), nil
	default:
		c.rb.N, c.rerr = 0, errno
	}
	return true
}

// ReadNow reads into b, without waiting, the datagrams the socket has
// queued: b.N is 0 when there are none. It does not go through the
// runtime's poller, so it sees a datagram the moment the kernel has
// queued it, however long the poller takes to notice; and it may run while
// another goroutine waits in ReadBatch with another batch.
func (c *Conn) ReadNow(b *RecvBatch) error {
	b.N = 0
	b.resetControl()
	var n uintptr
	var errno unix.Errno
	err := c.raw.Control(func(fd uintptr) {
		for {
			n, _, errno = unix.RawSyscall6(unix.SYS_RECVMMSG, fd,
				uintptr(unsafe.Pointer(&b.hdr[0])), batchSize, unix.MSG_DONTWAIT, 0, 0)
			if errno != unix.EINTR {
				return
			}
		}
	})
	if err != nil {
		return fmt.Errorf("vrrp: read on %s: %w", c.ifname, err)
	}
	switch errno {
	case 0:
		b.N = int(n)
	case unix.EAGAIN:
	default:
		return fmt.Errorf("vrrp: read on %s: %w", c.ifname, errno)
	}
	return nil
}
