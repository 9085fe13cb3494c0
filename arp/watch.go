package arp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"syscall"
	"time"
	"unsafe"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Seen is one ARP frame heard on the link: who claims which address.
type Seen struct {
	Op     arp.Operation // arp.OperationRequest or arp.OperationReply
	MAC    [6]byte       // the sender hardware address
	IP     netip.Addr    // the sender protocol address
	Target netip.Addr    // the target protocol address
}

// Claims reports whether the frame says that IP is at MAC: a reply, or a
// request (gratuitous or not) sent from that address. An ARP probe (sender
// 0.0.0.0, RFC 5227) claims nothing.
func (s Seen) Claims() bool { return s.IP.IsValid() && !s.IP.IsUnspecified() }

// HardwareAddr is MAC as a net.HardwareAddr (allocated).
func (s Seen) HardwareAddr() net.HardwareAddr { return net.HardwareAddr(s.MAC[:]) }

// ARP over Ethernet for IPv4: the fixed header that every frame the Watcher
// keeps starts with, after the Ethernet header.
const (
	ethHeaderLen = 14
	arpIPv4Len   = 28 // htype, ptype, hlen, plen, op, sha, spa, tha, tpa
	frameMin     = ethHeaderLen + arpIPv4Len
)

// ParseFrame reads an Ethernet frame carrying ARP for IPv4 over Ethernet.
// It allocates nothing; ok is false for anything else.
func ParseFrame(b []byte) (s Seen, ok bool) {
	if len(b) < frameMin || binary.BigEndian.Uint16(b[12:14]) != unix.ETH_P_ARP {
		return Seen{}, false
	}
	a := b[ethHeaderLen:]
	if binary.BigEndian.Uint16(a[0:2]) != 1 || binary.BigEndian.Uint16(a[2:4]) != unix.ETH_P_IP || a[4] != 6 || a[5] != 4 {
		return Seen{}, false
	}
	op := arp.Operation(binary.BigEndian.Uint16(a[6:8]))
	if op != arp.OperationRequest && op != arp.OperationReply {
		return Seen{}, false
	}
	s.Op = op
	copy(s.MAC[:], a[8:14])
	s.IP = netip.AddrFrom4([4]byte(a[14:18]))
	s.Target = netip.AddrFrom4([4]byte(a[24:28]))
	return s, true
}

// watchFilter keeps, in the kernel, only ARP for IPv4 over Ethernet whose
// sender address is set: the frames that claim an address. Probes and other
// hardware or protocol types never wake the reader. It is the broad filter:
// a socket starts with it, and falls back to it above MaxFilterAddrs.
var watchFilter = mustAssemble(filterFor(nil, nil))

// MaxFilterAddrs is the most sender addresses SetFilter matches one by
// one; with more it keeps every frame that claims an address.
const MaxFilterAddrs = 64

// Claim is a sender address and hardware address pair: an ARP frame from
// IP at MAC.
type Claim struct {
	IP  netip.Addr
	MAC [6]byte
}

// MaxKnownPerAddr bounds the known MACs FilterExcept drops per address;
// frames from further ones are kept.
const MaxKnownPerAddr = 8

// filterFor is the program that keeps ARP for IPv4 over Ethernet whose
// sender address is one of addrs (at most MaxFilterAddrs, each IPv4),
// except the frames whose sender is a known claim; with addrs nil, any
// sender address but 0.0.0.0.
//
//	0      ld  [12] (h)          ethertype
//	1      jne ETH_P_ARP, drop
//	2      ld  [14] (w)          htype, ptype
//	3      jne 1/ETH_P_IP, drop
//	4      ld  [18] (h)          hlen, plen
//	5      jne 6/4, drop
//	6      ld  [28] (w)          sender protocol address
//	broad: jne 0, keep; ja drop
//	per address i, without known MACs:
//	       jeq addr_i, keep
//	with known MACs:
//	       jne addr_i, next      (over this block)
//	       ld  [22] (w); jne mac[0:4], +3; ld [26] (h); jne mac[4:6], +1; ja drop   (per MAC)
//	       ja  keep
//	drop   ret 0
//	keep   ret 0xffff
//
// Conditional jumps reach only 255 instructions ahead, so the jumps to
// drop and keep from inside a block are unconditional ones.
func filterFor(addrs []netip.Addr, known []Claim) []bpf.Instruction {
	ins := []bpf.Instruction{
		bpf.LoadAbsolute{Off: 12, Size: 2},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: unix.ETH_P_ARP},
		bpf.LoadAbsolute{Off: ethHeaderLen, Size: 4}, // htype, ptype
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 1<<16 | unix.ETH_P_IP},
		bpf.LoadAbsolute{Off: ethHeaderLen + 4, Size: 2}, // hlen, plen
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 6<<8 | 4},
		bpf.LoadAbsolute{Off: ethHeaderLen + 14, Size: 4}, // sender address
	}
	// Jumps to drop or keep, fixed up once their places are known.
	type fix struct {
		at   int
		keep bool
	}
	fixes := []fix{{1, false}, {3, false}, {5, false}}
	if addrs == nil {
		ins = append(ins, bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 0}, bpf.Jump{})
		fixes = append(fixes, fix{len(ins) - 2, true}, fix{len(ins) - 1, false})
	}
	macs := map[netip.Addr][][6]byte{}
	for _, c := range known {
		if ms := macs[c.IP]; len(ms) < MaxKnownPerAddr && !slices.Contains(ms, c.MAC) {
			macs[c.IP] = append(ms, c.MAC)
		}
	}
	for _, a := range addrs {
		b := a.As4()
		addr := binary.BigEndian.Uint32(b[:])
		ms := macs[a]
		if len(ms) == 0 {
			ins = append(ins, bpf.JumpIf{Cond: bpf.JumpEqual, Val: addr})
			fixes = append(fixes, fix{len(ins) - 1, true})
			continue
		}
		ins = append(ins, bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: addr, SkipTrue: uint8(5*len(ms) + 1)})
		for _, m := range ms {
			ins = append(ins,
				bpf.LoadAbsolute{Off: ethHeaderLen + 8, Size: 4}, // sender hardware address
				bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: binary.BigEndian.Uint32(m[0:4]), SkipTrue: 3},
				bpf.LoadAbsolute{Off: ethHeaderLen + 12, Size: 2},
				bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: uint32(binary.BigEndian.Uint16(m[4:6])), SkipTrue: 1},
				bpf.Jump{})
			fixes = append(fixes, fix{len(ins) - 1, false})
		}
		ins = append(ins, bpf.Jump{})
		fixes = append(fixes, fix{len(ins) - 1, true})
	}
	drop := len(ins)
	ins = append(ins, bpf.RetConstant{Val: 0}, bpf.RetConstant{Val: 0xffff})
	keep := drop + 1
	for _, f := range fixes {
		to := drop
		if f.keep {
			to = keep
		}
		switch j := ins[f.at].(type) {
		case bpf.JumpIf:
			j.SkipTrue = uint8(to - f.at - 1)
			ins[f.at] = j
		case bpf.Jump:
			j.Skip = uint32(to - f.at - 1)
			ins[f.at] = j
		}
	}
	return ins
}

// FilterFor assembles the kernel filter that keeps the frames claiming one
// of addrs (IPv4; duplicates are fine), or, with more than MaxFilterAddrs,
// every frame that claims an address. An empty addrs keeps nothing.
func FilterFor(addrs []netip.Addr) ([]bpf.RawInstruction, error) {
	return FilterExcept(addrs, nil)
}

// FilterExcept is FilterFor without the frames of the known claims: a
// sender address whose MAC is already known (this node's own, or the
// master's) wakes nobody while that MAC claims it, and any other MAC
// claiming it still does. Known claims of addresses not in addrs are
// ignored; above MaxKnownPerAddr MACs per address the rest are kept.
func FilterExcept(addrs []netip.Addr, known []Claim) ([]bpf.RawInstruction, error) {
	if len(addrs) > MaxFilterAddrs {
		return watchFilter, nil
	}
	if addrs == nil {
		addrs = []netip.Addr{}
	}
	seen := map[netip.Addr]bool{}
	uniq := addrs[:0:0]
	for _, a := range addrs {
		if !a.Is4() {
			return nil, fmt.Errorf("arp: filter for %s: not an IPv4 address", a)
		}
		if !seen[a] {
			seen[a] = true
			uniq = append(uniq, a)
		}
	}
	return bpf.Assemble(filterFor(uniq, known))
}

func mustAssemble(ins []bpf.Instruction) []bpf.RawInstruction {
	raw, err := bpf.Assemble(ins)
	if err != nil {
		panic(err) // a fixed program: a failure is a bug found by every test
	}
	return raw
}

// Watcher hears the ARP frames that claim addresses on one interface and
// sends ARP probes. It is the read side of conflict detection: it decides
// nothing and never answers.
//
// Read allocates nothing: the frame goes into a buffer made once, through
// a read function bound once.
type Watcher struct {
	ifname string
	mac    net.HardwareAddr
	p      *packet.Conn
	rc     syscall.RawConn

	buf    [256]byte
	n      int
	rerr   error
	readFn func(fd uintptr) bool

	probe   []byte // an ARP probe from mac, its target written per send
	to      unix.RawSockaddrLinklayer
	werr    error
	writeFn func(fd uintptr) bool
}

// NewWatcher opens an ARP packet socket on the named interface with the
// kernel filter above.
func NewWatcher(ifname string) (*Watcher, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("arp: interface %s: %w", ifname, err)
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("arp: interface %s has no Ethernet address", ifname)
	}
	req, err := arp.NewPacket(arp.OperationRequest, ifi.HardwareAddr, netip.IPv4Unspecified(), ethernet.Broadcast, netip.IPv4Unspecified())
	if err != nil {
		return nil, fmt.Errorf("arp: probe for %s: %w", ifname, err)
	}
	probe, err := marshalFrame(req)
	if err != nil {
		return nil, fmt.Errorf("arp: probe for %s: %w", ifname, err)
	}
	p, err := packet.Listen(ifi, packet.Raw, unix.ETH_P_ARP, &packet.Config{Filter: watchFilter})
	if err != nil {
		return nil, fmt.Errorf("arp: open ARP socket on %s: %w", ifname, err)
	}
	rc, err := p.SyscallConn()
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("arp: ARP socket on %s: %w", ifname, err)
	}
	w := &Watcher{ifname: ifname, mac: ifi.HardwareAddr, p: p, rc: rc, probe: probe}
	w.to = unix.RawSockaddrLinklayer{Family: unix.AF_PACKET, Protocol: htons(unix.ETH_P_ARP), Ifindex: int32(ifi.Index), Halen: 6}
	copy(w.to.Addr[:], ethernet.Broadcast)
	w.readFn, w.writeFn = w.read, w.write
	return w, nil
}

// MAC is the interface's hardware address when the Watcher was opened.
func (w *Watcher) MAC() net.HardwareAddr { return w.mac }

// Read blocks until a frame that claims an address arrives (or the
// deadline passes, or the Watcher is closed) and returns it.
func (w *Watcher) Read() (Seen, error) {
	for {
		if err := w.rc.Read(w.readFn); err != nil {
			return Seen{}, fmt.Errorf("arp: read on %s: %w", w.ifname, err)
		}
		if w.rerr != nil {
			return Seen{}, fmt.Errorf("arp: read on %s: %w", w.ifname, w.rerr)
		}
		if s, ok := ParseFrame(w.buf[:w.n]); ok && s.Claims() {
			return s, nil
		}
	}
}

// read and write make their system calls raw, as the advert path does
// (vrrp/batch.go): the runtime's bookkeeping of an ordinary call wakes its
// sysmon thread from its idle sleep, which then polls for milliseconds,
// several context switches for each probe round. The socket is
// non-blocking, so neither call waits.
func (w *Watcher) read(fd uintptr) bool {
	n, _, errno := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&w.buf[0])), uintptr(len(w.buf)))
	w.n, w.rerr = int(n), nil
	if errno != 0 {
		w.n, w.rerr = 0, errno
	}
	return !errors.Is(w.rerr, unix.EAGAIN)
}

// SetReadDeadline bounds Read.
func (w *Watcher) SetReadDeadline(t time.Time) error { return w.p.SetReadDeadline(t) }

// Probe broadcasts an ARP probe for ip (RFC 5227: sender address 0.0.0.0),
// which whoever holds ip answers, and which changes no neighbour's cache.
// It is not safe to call concurrently with itself.
func (w *Watcher) Probe(ip netip.Addr) error {
	if !ip.Is4() {
		return fmt.Errorf("arp: probe %s on %s: not an IPv4 address", ip, w.ifname)
	}
	b := ip.As4()
	copy(w.probe[targetIPOffset:], b[:])
	if err := w.rc.Write(w.writeFn); err != nil {
		return fmt.Errorf("arp: probe %s on %s: %w", ip, w.ifname, err)
	}
	if w.werr != nil {
		return fmt.Errorf("arp: probe %s on %s: %w", ip, w.ifname, w.werr)
	}
	return nil
}

func (w *Watcher) write(fd uintptr) bool {
	_, _, errno := unix.RawSyscall6(unix.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&w.probe[0])), uintptr(len(w.probe)),
		0, uintptr(unsafe.Pointer(&w.to)), unix.SizeofSockaddrLinklayer)
	w.werr = nil
	if errno != 0 {
		w.werr = errno
	}
	return w.werr != unix.EAGAIN
}

// SetFilter replaces the socket's kernel filter with FilterExcept(addrs,
// known): from then on Read wakes only for frames that claim one of addrs
// (or any address, above MaxFilterAddrs) from a MAC not known for it.
// Frames already queued stay.
func (w *Watcher) SetFilter(addrs []netip.Addr, known []Claim) error {
	f, err := FilterExcept(addrs, known)
	if err == nil {
		err = w.p.SetBPF(f)
	}
	if err != nil {
		return fmt.Errorf("arp: filter on %s: %w", w.ifname, err)
	}
	return nil
}

// Close closes the socket; a blocked Read returns an error.
func (w *Watcher) Close() error { return w.p.Close() }
