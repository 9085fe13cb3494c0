package vrrp

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"time"

	"golang.org/x/net/bpf"
)

// Held-back adverts: a backup's master sends the same advert, byte for
// byte, every interval, and all the backup does with each is to move its
// Master_Down timer. Waking for each one costs a thread wake-up and the Go
// runtime's scheduling path, most of a one-instance backup's CPU. So once a
// backup has accepted an advert from its master, the kernel holds the
// repeats of it back (a second socket, outside the runtime's poller, whose
// filter keeps only them; the advert socket's filter drops them), and the
// loop reads them when it wakes anyway: before its timer's work, before a
// batch of other datagrams, a status snapshot, a reload, a maintenance or
// tracker change. They are handled then at their kernel arrival times, as
// if they had been read at once: the Master_Down timer runs from the last
// one that arrived. A backup whose master is alive thus wakes once per
// Master_Down_Interval (about three adverts) instead of once per advert,
// and any other datagram (another router, a priority or content change, a
// resignation, a malformed or foreign packet) wakes it at once as before.

// heldAdvert is an advert whose repeats are held back: the IPv4 source and
// destination and the VRRP message, all compared byte for byte (with the
// TTL 255, protocol 112 and a 20-byte header).
type heldAdvert struct {
	src, dst netip.Addr
	msg      []byte
}

// Bounds of what is held back on one link: the filter's blocks are
// reached by 8-bit jumps, so one message is at most maxHeldMsg bytes; and
// a link holds back at most maxHeld adverts (a filter under 1000
// instructions) so that a backup of many instances, which already shares
// each wake-up among many adverts, keeps the ordinary path.
const (
	maxHeld    = 16
	maxHeldMsg = 480
)

// holdable reports whether an advert can be held back.
func holdable(src, dst netip.Addr, msg []byte) bool {
	return src.Is4() && dst.Is4() && len(msg) >= 8 && len(msg) <= maxHeldMsg && len(msg)%4 == 0
}

// holdFilter is the classic BPF program, run on a raw IPv4 socket's
// datagrams (from the IP header on), that returns match for a datagram
// that repeats one of ads and other for any other:
//
//	per advert:
//	  ld [0] (b);  jne 0x45, next      version 4, 20-byte header
//	  ld [8] (b);  jne 255, next       TTL
//	  ld [9] (b);  jne 112, next       protocol
//	  ld [2] (h);  jne 20+len, next    total length
//	  ld [12] (w); jne src, next
//	  ld [16] (w); jne dst, next
//	  ld [20+4i] (w); jne msg[4i:], next   (per word of the message)
//	  ret match
//	ret other
func holdFilter(ads []heldAdvert, match, other uint32) []bpf.Instruction {
	var ins []bpf.Instruction
	for _, a := range ads {
		words := len(a.msg) / 4
		blockLen := 12 + 2*words + 1
		at := len(ins)
		jne := func(v uint32) bpf.JumpIf {
			// From the instruction after this one to the next block.
			return bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: v, SkipTrue: uint8(at + blockLen - len(ins) - 1)}
		}
		s, d := a.src.As4(), a.dst.As4()
		ins = append(ins, bpf.LoadAbsolute{Off: 0, Size: 1})
		ins = append(ins, jne(0x45))
		ins = append(ins, bpf.LoadAbsolute{Off: 8, Size: 1})
		ins = append(ins, jne(TTL))
		ins = append(ins, bpf.LoadAbsolute{Off: 9, Size: 1})
		ins = append(ins, jne(112))
		ins = append(ins, bpf.LoadAbsolute{Off: 2, Size: 2})
		ins = append(ins, jne(uint32(20+len(a.msg))))
		ins = append(ins, bpf.LoadAbsolute{Off: 12, Size: 4})
		ins = append(ins, jne(binary.BigEndian.Uint32(s[:])))
		ins = append(ins, bpf.LoadAbsolute{Off: 16, Size: 4})
		ins = append(ins, jne(binary.BigEndian.Uint32(d[:])))
		for i := range words {
			ins = append(ins, bpf.LoadAbsolute{Off: uint32(20 + 4*i), Size: 4})
			ins = append(ins, jne(binary.BigEndian.Uint32(a.msg[4*i:])))
		}
		ins = append(ins, bpf.RetConstant{Val: match})
	}
	return append(ins, bpf.RetConstant{Val: other})
}

// The return values of the filters: a raw socket keeps that many bytes of
// the datagram.
const (
	filterKeep = 0xffff
	filterDrop = 0
)

// noteHeld decides, after an advert from src to dst with message msg was
// handled, whether in's repeats of it are held back: while in is a backup
// that follows src as its master (an advert it accepted, not a
// resignation).
func (n *Node) noteHeld(in *instance, src, dst netip.Addr, msg []byte, priority uint8) {
	if in.m.State() != StateBackup || in.m.MasterAddr() != src || priority == 0 || !holdable(src, dst, msg) {
		n.dropHeld(in)
		return
	}
	h := &in.held
	if h.msg != nil && h.src == src && h.dst == dst && bytes.Equal(h.msg, msg) {
		return
	}
	h.src, h.dst, h.msg = src, dst, append(h.msg[:0], msg...)
	in.ifc.heldDirty = true
}

// dropHeld stops holding back in's adverts.
func (n *Node) dropHeld(in *instance) {
	if in.held.msg == nil {
		return
	}
	in.held.msg = nil
	in.ifc.heldDirty = true
}

// syncHeld gives the receive path the adverts to hold back on each link
// whose set changed. It runs once per turn of the loop, before it sleeps.
func (n *Node) syncHeld() {
	if n.rcv == nil {
		return
	}
	for _, ifc := range n.ifaces {
		if !ifc.heldDirty {
			continue
		}
		ifc.heldDirty = false
		var ads []heldAdvert
		for _, in := range ifc.insts {
			if in.held.msg != nil && len(ads) < maxHeld {
				ads = append(ads, in.held)
			}
		}
		if err := n.rcv.holdBack(ifc, ads); err != nil {
			if ok, _ := ifc.readLog.allow(n.now(), 10*time.Second); ok {
				n.log.Warn("cannot hold back repeated adverts; reading each one", "interface", ifc.name, "err", err)
			}
		}
	}
}

// takeHeld handles the adverts held back so far, at their arrival times.
func (n *Node) takeHeld() {
	if n.rcv != nil {
		n.rcv.takeHeld(n)
	}
}

// seenRecently reports whether a datagram with this kernel receive stamp
// and source was handled already, and notes it: while the two sockets'
// filters change, one datagram can reach both.
func (ifc *iface) seenRecently(stamp int64, src netip.Addr) bool {
	if stamp == 0 {
		return false
	}
	for _, r := range ifc.recent {
		if r.stamp == stamp && r.src == src {
			return true
		}
	}
	ifc.recent[ifc.recentAt] = recentDatagram{stamp, src}
	ifc.recentAt = (ifc.recentAt + 1) % len(ifc.recent)
	return false
}

type recentDatagram struct {
	stamp int64
	src   netip.Addr
}
