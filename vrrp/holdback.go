package vrrp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"slices"
	"time"

	"golang.org/x/net/bpf"
)

// Held-back adverts: a backup's master sends the same advert every
// interval, and all the backup does with each is to move its Master_Down
// timer. Waking for each one costs a thread wake-up and the Go runtime's
// scheduling path, most of a one-instance backup's CPU. So once a backup
// has accepted an advert from its master, the kernel holds the adverts
// back that come from that master for that VRID with that priority (a
// second socket, outside the runtime's poller, whose filter keeps only
// them; the advert socket's filter drops them), and the loop reads them
// when it wakes anyway: before its timer's work, before a batch of other
// datagrams, a status snapshot, a reload, a maintenance or tracker
// change. They are handled then at their kernel arrival times, as if they
// had been read at once: the Master_Down timer runs from the last one
// that arrived, and one whose content changed (another VIP list or
// interval, a bad checksum) is handled in full then. A backup whose
// master is alive thus wakes once per Master_Down_Interval less an
// interval (about two or three adverts of its most pressing instance),
// however many instances it has, instead of once per advert or burst of
// adverts; any other datagram (another router, a priority change, a
// resignation, an advert for a VRID it is not backup of) wakes it at once
// as before.

// heldAdvert is an advert whose repeats are held back: the IPv4 source
// and destination, and the VRRP message, whose VRID and priority the
// filter checks (with the TTL 255, protocol 112 and a 20-byte header).
type heldAdvert struct {
	src, dst netip.Addr
	msg      []byte
}

// Bounds of what is held back on one link: a link's filter stays under
// maxHeldInsns instructions, which takes every VRID of one or a few
// masters and priorities (one instruction per VRID, 14 per group); the
// adverts that do not fit keep the ordinary path. The kernel takes up to
// 4096 instructions, but charges a filter (about 90 bytes an instruction
// once translated, here) to the socket's option memory,
// net.core.optmem_max (128 kB by default), and while a filter is
// replaced both are charged.
const (
	maxHeldMsg   = 480
	maxHeldInsns = 500
)

// errHeldTooBig is what holdBack returns when the kernel refused a filter
// for its size: the caller tries with fewer adverts.
var errHeldTooBig = errors.New("the filter is larger than the socket's option memory allows (net.core.optmem_max)")

// equal reports whether a and b are the same advert.
func (a heldAdvert) equal(b heldAdvert) bool {
	return a.src == b.src && a.dst == b.dst && bytes.Equal(a.msg, b.msg)
}

// sameKey reports whether holdFilter matches the same datagrams for a as
// for b.
func (a heldAdvert) sameKey(b heldAdvert) bool { return a.group() == b.group() && a.vrid() == b.vrid() }

// holdable reports whether an advert can be held back.
func holdable(src, dst netip.Addr, msg []byte) bool {
	return src.Is4() && dst.Is4() && len(msg) >= 8 && len(msg) <= maxHeldMsg && len(msg)%4 == 0
}

// heldGroup is what the adverts of a group in holdFilter share: the
// addresses and the priority.
type heldGroup struct {
	src, dst netip.Addr
	prio     uint8
}

func (a heldAdvert) group() heldGroup { return heldGroup{a.src, a.dst, a.msg[2]} }
func (a heldAdvert) vrid() uint8      { return a.msg[1] }

// Instruction counts of holdFilter: its common header and last return, a
// group's header, and a run of VRIDs (heldRun of them at most: the jumps
// to its return are 8-bit) besides one instruction per VRID.
const (
	heldCommonLen = 13
	heldGroupLen  = 10
	heldRunLen    = 2
	heldRun       = 200
)

// heldFit returns the adverts of ads, in order, that fit in one filter
// (maxHeldInsns), and no two for one VRID of a group: those to hold back.
func heldFit(ads []heldAdvert) []heldAdvert {
	size := heldCommonLen
	counts := map[heldGroup]int{}
	seen := map[[2]any]bool{}
	var out []heldAdvert
	for _, a := range ads {
		k := a.group()
		if seen[[2]any{k, a.vrid()}] {
			continue
		}
		add := 1
		if counts[k] == 0 {
			add += heldGroupLen
		}
		if counts[k]%heldRun == 0 {
			add += heldRunLen
		}
		if size+add > maxHeldInsns {
			continue
		}
		size += add
		counts[k]++
		seen[[2]any{k, a.vrid()}] = true
		out = append(out, a)
	}
	return out
}

// holdFilter is the classic BPF program, run on a raw IPv4 socket's
// datagrams (from the IP header on), that returns match for a datagram
// from the source of one of ads, to its destination, with its VRID and
// priority, and other for any other. The header fields all of them share
// are checked once, the addresses and priority once per group of adverts
// that share them (heldGroup), then the VRID against the group's:
//
//	ld [0] (b);  jeq 0x45, +1;  ja other    version 4, 20-byte header
//	ld [8] (b);  jeq 255, +1;   ja other    TTL
//	ld [9] (b);  jeq 112, +1;   ja other    protocol
//	ld [2] (h);  jge 28, +1;    ja other    a whole VRRP header
//	per source, destination and priority:
//	  ld [12] (w); jeq src, +1;  ja next group
//	  ld [16] (w); jeq dst, +1;  ja next group
//	  ld [22] (b); jeq prio, +1; ja next group
//	  ld [21] (b)                              the VRID
//	  per run of up to heldRun VRIDs:
//	    jeq vrid, match   (per VRID)
//	    ja +1
//	    match: ret match
//	ret other
//
// The adverts must fit (heldFit).
func holdFilter(ads []heldAdvert, match, other uint32) []bpf.Instruction {
	var order []heldGroup
	groups := map[heldGroup][]uint8{}
	for _, a := range ads {
		k := a.group()
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], a.vrid())
	}
	var ins []bpf.Instruction
	// Jumps to "ret other" and to the next group are unconditional
	// (32-bit) jumps, patched once their target is known.
	var toOther []int
	check := func(load bpf.Instruction, cond bpf.JumpTest, v uint32) int {
		ins = append(ins, load, bpf.JumpIf{Cond: cond, Val: v, SkipTrue: 1}, bpf.Jump{})
		return len(ins) - 1
	}
	if len(ads) > 0 {
		toOther = append(toOther,
			check(bpf.LoadAbsolute{Off: 0, Size: 1}, bpf.JumpEqual, 0x45),
			check(bpf.LoadAbsolute{Off: 8, Size: 1}, bpf.JumpEqual, TTL),
			check(bpf.LoadAbsolute{Off: 9, Size: 1}, bpf.JumpEqual, 112),
			check(bpf.LoadAbsolute{Off: 2, Size: 2}, bpf.JumpGreaterOrEqual, 20+8))
	}
	for _, k := range order {
		s, d := k.src.As4(), k.dst.As4()
		toNext := []int{
			check(bpf.LoadAbsolute{Off: 12, Size: 4}, bpf.JumpEqual, binary.BigEndian.Uint32(s[:])),
			check(bpf.LoadAbsolute{Off: 16, Size: 4}, bpf.JumpEqual, binary.BigEndian.Uint32(d[:])),
			check(bpf.LoadAbsolute{Off: 22, Size: 1}, bpf.JumpEqual, uint32(k.prio)),
		}
		ins = append(ins, bpf.LoadAbsolute{Off: 21, Size: 1})
		for run := range slices.Chunk(groups[k], heldRun) {
			for i, v := range run {
				ins = append(ins, bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(v), SkipTrue: uint8(len(run) - i)})
			}
			ins = append(ins, bpf.Jump{Skip: 1}, bpf.RetConstant{Val: match})
		}
		for _, j := range toNext {
			ins[j] = bpf.Jump{Skip: uint32(len(ins) - j - 1)}
		}
	}
	for _, j := range toOther {
		ins[j] = bpf.Jump{Skip: uint32(len(ins) - j - 1)}
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
	if h.msg != nil && h.sameKey(heldAdvert{src, dst, msg}) {
		// The filter stays as it is; the message is kept as it is now
		// (a master's repeats are the same, so this copies rarely).
		if !bytes.Equal(h.msg, msg) {
			h.msg = append(h.msg[:0], msg...)
		}
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
			if in.held.msg != nil {
				ads = append(ads, in.held)
			}
		}
		ads = heldFit(ads)
		err := n.rcv.holdBack(ifc, ads)
		for errors.Is(err, errHeldTooBig) && len(ads) > 1 {
			ads = ads[:len(ads)/2]
			err = n.rcv.holdBack(ifc, ads)
		}
		if err != nil {
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
