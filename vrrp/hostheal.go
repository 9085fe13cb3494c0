package vrrp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// The host's senderLearner (heal.go): a packet socket on the link whose
// kernel filter passes only VRRP packets from the master for the VRID, in
// the master's family (IPv4, or IPv6 from its link-local), read once,
// then closed.

func (d *hostDataplane) learnSender(n *Node, ctx context.Context, req senderReq) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		r := senderMAC{Instance: req.Instance, Term: req.Term, From: req.From}
		r.MAC, r.Err = readSenderMAC(ctx, req)
		select {
		case n.healCh <- r:
		case <-n.ctx.Done():
		}
	}()
}

// senderFilter passes what readSenderMAC wants: an IPv4 packet (the
// socket takes only those) of protocol 112 from src whose VRRP header
// names vrid and a priority above 0 (a master that resigns is no master
// to announce); the rest is dropped in the kernel.
func senderFilter(src [4]byte, vrid uint8) ([]bpf.RawInstruction, error) {
	return bpf.Assemble([]bpf.Instruction{
		bpf.LoadAbsolute{Off: 9, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: IPProtocol, SkipTrue: 8},
		bpf.LoadAbsolute{Off: 12, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: uint32(src[0])<<24 | uint32(src[1])<<16 | uint32(src[2])<<8 | uint32(src[3]), SkipTrue: 6},
		bpf.LoadMemShift{Off: 0},
		bpf.LoadIndirect{Off: 1, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: uint32(vrid), SkipTrue: 3},
		bpf.LoadIndirect{Off: 2, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0, SkipTrue: 1},
		bpf.RetConstant{Val: 256},
		bpf.RetConstant{Val: 0},
	})
}

// senderFilter6 is senderFilter for IPv6 (the socket takes only IPv6
// packets): next header 112 in the fixed header (VRRP over IPv6 carries
// no extension headers; a packet with one is not learned from, and the
// learn times out), source src, then the VRRP header at offset 40 naming
// vrid and a priority above 0.
func senderFilter6(src [16]byte, vrid uint8) ([]bpf.RawInstruction, error) {
	word := func(i int) uint32 {
		return uint32(src[i])<<24 | uint32(src[i+1])<<16 | uint32(src[i+2])<<8 | uint32(src[i+3])
	}
	return bpf.Assemble([]bpf.Instruction{
		bpf.LoadAbsolute{Off: 6, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: IPProtocol, SkipTrue: 13},
		bpf.LoadAbsolute{Off: 8, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: word(0), SkipTrue: 11},
		bpf.LoadAbsolute{Off: 12, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: word(4), SkipTrue: 9},
		bpf.LoadAbsolute{Off: 16, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: word(8), SkipTrue: 7},
		bpf.LoadAbsolute{Off: 20, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: word(12), SkipTrue: 5},
		bpf.LoadAbsolute{Off: 41, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: uint32(vrid), SkipTrue: 3},
		bpf.LoadAbsolute{Off: 42, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0, SkipTrue: 1},
		bpf.RetConstant{Val: 256},
		bpf.RetConstant{Val: 0},
	})
}

// readSenderMAC returns the Ethernet source of the next advert from
// req.From for req.VRID that reaches link req.Index.
func readSenderMAC(ctx context.Context, req senderReq) (net.HardwareAddr, error) {
	var (
		prog  []bpf.RawInstruction
		err   error
		proto uint16
	)
	switch {
	case req.From.Is4():
		prog, err = senderFilter(req.From.As4(), req.VRID)
		proto = unix.ETH_P_IP
	case req.From.Is6() && !req.From.Is4In6():
		prog, err = senderFilter6(req.From.As16(), req.VRID)
		proto = unix.ETH_P_IPV6
	default:
		return nil, fmt.Errorf("master %s is neither IPv4 nor IPv6", req.From)
	}
	if err != nil {
		return nil, err
	}
	// Made for no protocol, so that nothing is queued before the filter
	// is on; then bound to the master's family on the link.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("packet socket on %s: %w", req.Link, err)
	}
	filter := make([]unix.SockFilter, len(prog))
	for i, ins := range prog {
		filter[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("filter on the packet socket on %s: %w", req.Link, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons16(proto), Ifindex: req.Index}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind packet socket to %s: %w", req.Link, err)
	}
	f := os.NewFile(uintptr(fd), "vrrp-heal-"+req.Link)
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	if err := f.SetReadDeadline(time.Now().Add(req.Timeout)); err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = f.SetReadDeadline(time.Now()) })
	defer stop()
	var (
		buf  [64]byte
		mac  net.HardwareAddr
		rerr error
	)
	err = rc.Read(func(fd uintptr) bool {
		for {
			_, from, err := unix.Recvfrom(int(fd), buf[:], 0)
			switch {
			case errors.Is(err, unix.EAGAIN):
				return false
			case errors.Is(err, unix.EINTR):
				continue
			case err != nil:
				rerr = err
				return true
			}
			ll, ok := from.(*unix.SockaddrLinklayer)
			if !ok || ll.Pkttype == unix.PACKET_OUTGOING || ll.Halen != 6 {
				continue
			}
			mac = net.HardwareAddr(append([]byte(nil), ll.Addr[:6]...))
			return true
		}
	})
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("no advert from %s for VRID %d on %s within %v", req.From, req.VRID, req.Link, req.Timeout)
	case err != nil:
		return nil, err
	case rerr != nil:
		return nil, fmt.Errorf("reading the packet socket on %s: %w", req.Link, rerr)
	}
	return mac, nil
}

func htons16(v uint16) uint16 { return v<<8 | v>>8 }
