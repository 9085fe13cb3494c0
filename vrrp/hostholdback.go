package vrrp

import (
	"errors"
	"fmt"
	"slices"
	"time"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// heldSocket is where a link's held-back adverts wait (holdback.go): a
// second raw protocol-112 socket on the interface, never registered with
// the Go runtime's poller (a datagram queued on it wakes no thread), read
// only by the loop with non-blocking raw system calls.
type heldSocket struct {
	fd    int          // -1: not open
	on    []heldAdvert // the adverts its filter keeps
	armed bool         // it may hold datagrams: a filter with adverts was set since it was last read empty
	// lastRead is a time before the socket was last read empty: a
	// datagram read later arrived after it.
	lastRead time.Time
	batch    *RecvBatch
}

// heldRcvBuf is the held socket's receive buffer: a Master_Down_Interval
// is at most about four adverts of each instance, so 255 instances queue
// about a thousand datagrams between the loop's reads, a few kB of kernel
// memory each at most.
const heldRcvBuf = 4 << 20

// openHeld opens the held socket with a filter that keeps nothing, and
// empties what reached it before the filter was set (the advert socket got
// those too).
func (c *Conn) openHeld() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 112)
	if err != nil {
		return fmt.Errorf("vrrp: open the held-advert socket on %s: %w", c.ifname, err)
	}
	steps := []struct {
		what string
		do   func() error
	}{
		{"attach its filter", func() error { return attachFilter(fd, []bpf.Instruction{bpf.RetConstant{Val: filterDrop}}) }},
		{"bind it", func() error { return unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, c.ifname) }},
		{"ask for receive timestamps", func() error { return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1) }},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			unix.Close(fd)
			return fmt.Errorf("vrrp: held-advert socket on %s: %s: %w", c.ifname, s.what, err)
		}
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, heldRcvBuf) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, heldRcvBuf) // the default then, capped by rmem_max
	}
	var buf [maxDatagram]byte
	for {
		if _, _, err := unix.Recvfrom(fd, buf[:], unix.MSG_DONTWAIT); err != nil {
			break
		}
	}
	c.held = heldSocket{fd: fd, batch: NewRecvBatch()}
	return nil
}

// HoldBack makes the kernel hold back, on the held socket, the datagrams
// that holdFilter matches for ads, and drops them from the advert socket;
// with none it undoes that. The filters change in three steps so that no
// datagram is lost between them: the held socket keeps the old and new
// adverts while the advert socket changes over, then only the new ones.
// When the two sets together would make too large a filter, the advert
// socket keeps everything while the held socket changes over instead. One
// datagram may reach both sockets meanwhile; the loop handles it once
// (iface.seenRecently). A filter the kernel refuses for its size is
// reported as errHeldTooBig.
func (c *Conn) HoldBack(ads []heldAdvert) error {
	if c.held.fd < 0 {
		if len(ads) == 0 {
			return nil
		}
		if err := c.openHeld(); err != nil {
			return err
		}
	}
	union := slices.Clone(c.held.on)
	for _, a := range ads {
		if !slices.ContainsFunc(union, a.sameKey) {
			union = append(union, a)
		}
	}
	keepAll := len(holdFilter(union, filterKeep, filterDrop)) > maxHeldInsns
	if keepAll {
		if err := c.setAdvertFilter([]bpf.Instruction{bpf.RetConstant{Val: filterKeep}}); err != nil {
			return err
		}
		union = ads
	}
	if len(union) > 0 {
		if !c.held.armed {
			c.held.armed, c.held.lastRead = true, time.Now()
		}
		if err := c.setHeldFilter(holdFilter(union, filterKeep, filterDrop)); err != nil {
			if keepAll {
				// Everything reaches the advert socket: hold nothing.
				_ = c.setHeldFilter([]bpf.Instruction{bpf.RetConstant{Val: filterDrop}})
				c.held.on = c.held.on[:0]
			}
			return err
		}
	}
	if err := c.setAdvertFilter(holdFilter(ads, filterDrop, filterKeep)); err != nil {
		// The advert socket keeps its old filter (or everything); hold
		// back nothing more than it drops.
		if keepAll {
			_ = c.setHeldFilter([]bpf.Instruction{bpf.RetConstant{Val: filterDrop}})
			c.held.on = c.held.on[:0]
		} else {
			_ = c.setHeldFilter(holdFilter(c.held.on, filterKeep, filterDrop))
		}
		return err
	}
	if err := c.setHeldFilter(holdFilter(ads, filterKeep, filterDrop)); err != nil {
		return err
	}
	c.held.on = append(c.held.on[:0], ads...)
	return nil
}

// setHeldFilter and setAdvertFilter attach ins to the held and the
// advert socket.
func (c *Conn) setHeldFilter(ins []bpf.Instruction) error {
	return filterErr("held-advert", c.ifname, attachFilter(c.held.fd, ins))
}

func (c *Conn) setAdvertFilter(ins []bpf.Instruction) error {
	var ferr error
	if err := c.raw.Control(func(fd uintptr) { ferr = attachFilter(int(fd), ins) }); err != nil {
		ferr = err
	}
	return filterErr("advert", c.ifname, ferr)
}

// filterErr says which filter failed on which link, and marks a refusal
// for size as errHeldTooBig.
func filterErr(which, ifname string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.ENOMEM):
		return fmt.Errorf("vrrp: %s filter on %s: %w (%w)", which, ifname, errHeldTooBig, err)
	}
	return fmt.Errorf("vrrp: %s filter on %s: %w", which, ifname, err)
}

// ReadHeld reads into b, without waiting, the datagrams held back: b.N is
// 0 when there are none (or the socket is not in use).
func (c *Conn) ReadHeld(b *RecvBatch) error {
	b.N = 0
	if c.held.fd < 0 {
		return nil
	}
	b.resetControl()
	for {
		n, _, errno := unix.RawSyscall6(unix.SYS_RECVMMSG, uintptr(c.held.fd),
			uintptr(unsafe.Pointer(&b.hdr[0])), batchSize, unix.MSG_DONTWAIT, 0, 0)
		switch errno {
		case unix.EINTR:
			continue
		case 0:
			b.N = int(n)
			return nil
		case unix.EAGAIN:
			return nil
		}
		return fmt.Errorf("vrrp: read held adverts on %s: %w", c.ifname, errno)
	}
}

func (c *Conn) closeHeld() {
	if c.held.fd >= 0 {
		unix.Close(c.held.fd)
		c.held.fd = -1
	}
}

// attachFilter sets the classic BPF program ins on socket fd.
func attachFilter(fd int, ins []bpf.Instruction) error {
	raw, err := bpf.Assemble(ins)
	if err != nil {
		return err
	}
	f := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		f[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: uint16(len(f)), Filter: &f[0]})
}

// holdBack gives the link's socket the adverts to hold back.
func (r *hostReceiver) holdBack(ifc *iface, ads []heldAdvert) error {
	hl, ok := ifc.link.(*hostLink)
	if !ok || hl.conn == nil {
		return nil // IPv6 adverts are not held back
	}
	return hl.conn.HoldBack(ads)
}

// takeHeld reads each link's held socket empty and hands the loop its
// datagrams at their arrival times. A link whose socket holds nothing back
// any more is read once more, then left alone.
func (r *hostReceiver) takeHeld(n *Node) {
	for _, ifc := range n.ifaces {
		hl, ok := ifc.link.(*hostLink)
		if !ok || hl.conn == nil || !hl.conn.held.armed {
			continue
		}
		h := &hl.conn.held
		now := n.now()
		floor := h.lastRead
		// A wall clock stepped since the last read makes the stamps
		// useless: the monotonic and wall times elapsed differ.
		d := now.Sub(floor) - now.Round(0).Sub(floor.Round(0))
		step := d > time.Millisecond || d < -time.Millisecond
		h.lastRead = now
		for range readNowBatches {
			if err := hl.conn.ReadHeld(h.batch); err != nil {
				if ok, _ := ifc.readLog.allow(now, 10*time.Second); ok {
					n.log.Error("read failed", "interface", ifc.name, "err", err)
				}
				break
			}
			b := h.batch
			for i := 0; i < b.N; i++ {
				dg := b.Datagram(i)
				if ifc.seenRecently(b.Stamp(i), datagramSource(dg)) {
					continue
				}
				n.onDatagram(ifc, dg, b.ReceivedSince(i, now, floor, step))
			}
			if b.N < batchSize {
				break
			}
		}
		if len(h.on) == 0 {
			h.armed = false
		}
	}
}
