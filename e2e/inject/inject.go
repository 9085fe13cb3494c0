// Package inject puts hand-made IPv4 datagrams on a lab segment from inside
// one lab host's network namespace: forged or broken VRRP adverts, garbage,
// floods at a fixed rate. vipd's reliability tests use it to play a hostile
// or misconfigured neighbour.
//
// The sender writes the whole IPv4 header itself (IP_HDRINCL), so the TTL
// and source address are the caller's. It must never put anything on a
// network outside the lab: it sends only to the VRRP group 224.0.0.18 or
// to an address in the lab's 198.18.0.0/24, only from an address in that
// range, and only out of the host's eth0. Floods are bounded in count,
// rate and time.
package inject

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/vipd/vipd/e2e/lab"
)

// Limits of one flood.
const (
	MaxCount = 1_000_000 // datagrams
	MaxRate  = 100_000   // datagrams per second
)

// ipHeaderLen is the IPv4 header the injector writes: no options.
const ipHeaderLen = 20

// protocolVRRP is the IP protocol number of VRRP, the default payload.
const protocolVRRP = 112

// hostLink is a lab host's interface on the segment.
const hostLink = "eth0"

var (
	vrrpGroup = netip.MustParseAddr("224.0.0.18")
	labNet    = netip.MustParsePrefix("198.18.0.0/24")
)

// Allowed reports whether dst is somewhere the injector may send to: the
// VRRP group or a lab address.
func Allowed(dst netip.Addr) bool {
	dst = dst.Unmap()
	return dst == vrrpGroup || labNet.Contains(dst)
}

// Datagram is one IPv4 datagram to send.
type Datagram struct {
	// Src is the header's source address; the zero value means the
	// injector's own. It must be in the lab's range.
	Src netip.Addr
	// Dst must satisfy Allowed.
	Dst netip.Addr
	// TTL is sent as is; 0 means 255, the TTL VRRP requires.
	TTL uint8
	// Protocol defaults (0) to VRRP, 112.
	Protocol uint8
	Payload  []byte
}

// Injector is a raw IPv4 socket opened inside one host's namespace and
// bound to its eth0. Its methods are safe for concurrent use.
type Injector struct {
	ns  string
	src netip.Addr

	mu     sync.Mutex
	fd     int // -1 once closed
	buf    []byte
	closed bool
}

// Open opens an injector on lab host h: it sends out of h's eth0, with h's
// address as the default source.
func Open(h *lab.Host) (*Injector, error) {
	own := h.Addr.Unmap()
	if !labNet.Contains(own) {
		return nil, fmt.Errorf("inject: %s's address %s is outside the lab's %s", h.NS, own, labNet)
	}
	fd := -1
	err := InNamespace(h.NS, func() error {
		var err error
		fd, err = openRaw(hostLink)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("inject: open raw socket on %s in %s: %w", hostLink, h.NS, err)
	}
	return &Injector{ns: h.NS, src: own, fd: fd}, nil
}

// openRaw opens the sending socket in the calling thread's namespace.
func openRaw(ifname string) (int, error) {
	// IPPROTO_RAW is send-only and implies IP_HDRINCL; setting the option
	// too keeps that explicit.
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	steps := []struct {
		what string
		do   func() error
	}{
		{"IP_HDRINCL", func() error { return unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_HDRINCL, 1) }},
		// Bound to the device, multicast needs no route and nothing can
		// leave by another interface.
		{"SO_BINDTODEVICE", func() error { return unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, ifname) }},
		{"IP_MULTICAST_LOOP", func() error { return unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, 0) }},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("%s: %w", s.what, err)
		}
	}
	return fd, nil
}

// Close closes the socket. It is idempotent.
func (j *Injector) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return nil
	}
	j.closed = true
	err := unix.Close(j.fd)
	j.fd = -1
	if err != nil {
		return fmt.Errorf("inject: close: %w", err)
	}
	return nil
}

// ErrClosed is returned by Send and Flood after Close.
var ErrClosed = errors.New("inject: closed")

// Send sends one datagram.
func (j *Injector) Send(d Datagram) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return ErrClosed
	}
	b, dst, err := j.marshal(d)
	if err != nil {
		return err
	}
	if err := unix.Sendto(j.fd, b, 0, &unix.SockaddrInet4{Addr: dst.As4()}); err != nil {
		return fmt.Errorf("inject: send to %s: %w", dst, err)
	}
	return nil
}

// marshal checks d and writes it into j.buf. j.mu must be held.
func (j *Injector) marshal(d Datagram) ([]byte, netip.Addr, error) {
	if !d.Src.IsValid() {
		d.Src = j.src
	}
	src, dst := d.Src.Unmap(), d.Dst.Unmap()
	if !labNet.Contains(src) {
		return nil, dst, fmt.Errorf("inject: source %s is outside the lab's %s", src, labNet)
	}
	if !Allowed(dst) {
		return nil, dst, fmt.Errorf("inject: destination %s is neither %s nor in the lab's %s", dst, vrrpGroup, labNet)
	}
	j.buf = AppendIPv4(j.buf[:0], src, dst, d.TTL, d.Protocol, d.Payload)
	return j.buf, dst, nil
}

// AppendIPv4 appends an IPv4 datagram (header without options, then
// payload) to b. A ttl of 0 means 255 and a protocol of 0 means VRRP. The
// kernel keeps what is written here except that it recomputes the total
// length and header checksum and fills in a zero identification.
func AppendIPv4(b []byte, src, dst netip.Addr, ttl, protocol uint8, payload []byte) []byte {
	if ttl == 0 {
		ttl = 255
	}
	if protocol == 0 {
		protocol = protocolVRRP
	}
	start := len(b)
	total := ipHeaderLen + len(payload)
	b = append(b,
		0x45, 0, // version 4, IHL 5; DSCP/ECN 0
		byte(total>>8), byte(total),
		0, 0, // identification: the kernel's
		0x40, 0, // don't fragment
		ttl, protocol,
		0, 0, // header checksum, computed below
	)
	s, d := src.Unmap().As4(), dst.Unmap().As4()
	b = append(b, s[:]...)
	b = append(b, d[:]...)
	binary.BigEndian.PutUint16(b[start+10:], headerChecksum(b[start:start+ipHeaderLen]))
	return append(b, payload...)
}

func headerChecksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(h[i])<<8 | uint32(h[i+1])
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// Flood describes a paced burst of datagrams.
type Flood struct {
	// Count is how many datagrams to send, 1..MaxCount.
	Count int
	// Rate is datagrams per second, at most MaxRate. Datagram i is never
	// sent before Start + i/Rate; one that falls behind that schedule
	// (the sender was descheduled) goes at once, so the average rate is
	// Rate whenever the machine keeps up, and never more.
	Rate float64
	// Limit bounds the whole flood's time; what is not sent by then is
	// not sent.
	Limit time.Duration
	// Next returns datagram i. It runs on the sending goroutine; the
	// payload it returns may be reused once Next is called again.
	Next func(i int) Datagram
}

// FloodResult is what a flood did.
type FloodResult struct {
	Sent, Failed int
	Start, End   time.Time
	// FirstErr is the first failed send's error, if any.
	FirstErr error
}

// Elapsed is the flood's duration.
func (r FloodResult) Elapsed() time.Duration { return r.End.Sub(r.Start) }

// Rate is the achieved rate in datagrams per second.
func (r FloodResult) Rate() float64 {
	if d := r.Elapsed(); d > 0 {
		return float64(r.Sent) / d.Seconds()
	}
	return 0
}

// Flood sends f.Count datagrams at f.Rate. It stops early when ctx is done
// or f.Limit has passed, returning what it did and why it stopped; failed
// sends are counted, not fatal.
func (j *Injector) Flood(ctx context.Context, f Flood) (FloodResult, error) {
	switch {
	case f.Count < 1 || f.Count > MaxCount:
		return FloodResult{}, fmt.Errorf("inject: flood count %d: want 1..%d", f.Count, MaxCount)
	case !(f.Rate > 0 && f.Rate <= MaxRate):
		return FloodResult{}, fmt.Errorf("inject: flood rate %v/s: want more than 0, at most %d", f.Rate, MaxRate)
	case f.Limit <= 0:
		return FloodResult{}, errors.New("inject: flood needs a time limit")
	case f.Next == nil:
		return FloodResult{}, errors.New("inject: flood needs a Next function")
	}
	res := FloodResult{Start: time.Now()}
	deadline := res.Start.Add(f.Limit)
	gap := float64(time.Second) / f.Rate
	var err error
	for i := 0; i < f.Count; i++ {
		due := res.Start.Add(time.Duration(float64(i) * gap))
		if now := time.Now(); now.Before(due) {
			time.Sleep(due.Sub(now))
		}
		if ctx.Err() != nil {
			err = ctx.Err()
			break
		}
		if time.Now().After(deadline) {
			err = fmt.Errorf("inject: flood stopped at its %s limit after %d of %d datagrams", f.Limit, i, f.Count)
			break
		}
		if serr := j.Send(f.Next(i)); serr != nil {
			if errors.Is(serr, ErrClosed) {
				err = serr
				break
			}
			res.Failed++
			if res.FirstErr == nil {
				res.FirstErr = serr
			}
			continue
		}
		res.Sent++
	}
	res.End = time.Now()
	return res, err
}

// InNamespace runs fn on an OS thread switched into network namespace ns
// (a name under /run/netns). Sockets fn opens stay in ns after the thread
// has switched back.
//
// fn runs on a fresh goroutine so that the caller's thread is never moved.
// That thread is unlocked only once it is back in its original namespace;
// if switching back fails it stays locked, and the runtime ends it with
// the goroutine rather than reusing it in the wrong namespace.
func InNamespace(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		back, err := switchRun(ns, fn)
		if back {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// switchRun runs fn in ns on the locked calling thread and reports whether
// the thread is back where it started.
func switchRun(ns string, fn func() error) (back bool, err error) {
	home, err := netns.Get()
	if err != nil {
		return true, fmt.Errorf("current network namespace: %w", err)
	}
	defer home.Close()
	target, err := netns.GetFromName(ns)
	if err != nil {
		return true, fmt.Errorf("network namespace %s: %w", ns, err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		// setns failed and should have left the thread at home; going
		// home anyway settles it.
		if herr := netns.Set(home); herr != nil {
			return false, errors.Join(fmt.Errorf("enter %s: %w", ns, err), fmt.Errorf("return home: %w", herr))
		}
		return true, fmt.Errorf("enter %s: %w", ns, err)
	}
	ferr := fn()
	if herr := netns.Set(home); herr != nil {
		return false, errors.Join(ferr, fmt.Errorf("return home from %s: %w", ns, herr))
	}
	return true, ferr
}
