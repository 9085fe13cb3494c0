package vrrp

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/net/bpf"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"

	"github.com/vipd/vipd/arp"
)

// The host's side of the upstream check (upstream.go): one goroutine per
// attempt, owned by the Node (its WaitGroup), cut short by the takeover's
// context, its result handed to the loop on upCh.

func (d *hostDataplane) startProbe(n *Node, ctx context.Context, req probeReq) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		r := probeUpstream(ctx, req)
		select {
		case n.upCh <- r:
		case <-n.ctx.Done():
		}
	}()
}

// probeUpstream is one attempt: find the upstream (the default gateway if
// none is named), send it a targeted ARP request from each VIP, then an
// ICMP echo from each VIP, and wait for the replies.
func probeUpstream(ctx context.Context, req probeReq) probeResult {
	r := probeResult{Instance: req.Instance, Term: req.Term, Slot: req.Slot, Upstream: req.Upstream}
	if !r.Upstream.IsValid() {
		gw, err := defaultGateway(req.Index)
		switch {
		case err != nil:
			r.Err = fmt.Sprintf("looking up the default gateway of %s: %v", req.Link, err)
			return r
		case !gw.IsValid():
			r.NoUpstream = true
			return r
		}
		r.Upstream = gw
	}
	if _, err := arp.Request(req.Link, req.MAC, req.VIPs, r.Upstream); err != nil {
		r.Err = err.Error()
		return r
	}
	answered, err := echoFrom(ctx, req.Index, req.VIPs, r.Upstream, req.Timeout)
	switch {
	case err != nil:
		r.Err = err.Error()
	case answered == len(req.VIPs):
		r.Moved = true
	default:
		r.Err = errNoReply
	}
	return r
}

// defaultGateway is the gateway of the default route (main table) out of
// the link with index; the zero Addr if it has none.
func defaultGateway(index int) (netip.Addr, error) {
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4,
		&netlink.Route{LinkIndex: index, Table: unix.RT_TABLE_MAIN},
		netlink.RT_FILTER_OIF|netlink.RT_FILTER_TABLE)
	if err != nil {
		return netip.Addr{}, err
	}
	best, bestPrio := netip.Addr{}, -1
	for _, rt := range routes {
		if rt.Dst != nil {
			if ones, _ := rt.Dst.Mask.Size(); ones != 0 {
				continue
			}
		}
		gw, ok := netip.AddrFromSlice(rt.Gw)
		if !ok || !gw.Unmap().Is4() {
			continue
		}
		if bestPrio < 0 || rt.Priority < bestPrio {
			best, bestPrio = gw.Unmap(), rt.Priority
		}
	}
	return best, nil
}

// echoFrom sends one ICMP echo request from each of vips to upstream, out
// of the link with index, and counts the replies that come back within
// timeout. The socket sees only echo replies with this attempt's random
// identifier (a BPF filter), and each reply must carry the attempt's
// random token, its VIP's sequence number and come from upstream to that
// VIP: another attempt, another instance or a ping running on the host is
// never taken for an answer.
func echoFrom(ctx context.Context, index int, vips []netip.Addr, upstream netip.Addr, timeout time.Duration) (int, error) {
	var rnd [10]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return 0, err
	}
	id := int(binary.BigEndian.Uint16(rnd[:2]))
	token := rnd[2:]

	c, err := icmp.ListenPacket("ip4:icmp", "0.0.0.0")
	if err != nil {
		return 0, fmt.Errorf("icmp socket: %w", err)
	}
	defer c.Close()
	pc := c.IPv4PacketConn()
	filter, err := bpf.Assemble(echoReplyFilter(uint16(id)))
	if err != nil {
		return 0, err
	}
	if err := pc.SetBPF(filter); err != nil {
		return 0, fmt.Errorf("icmp socket filter: %w", err)
	}
	if err := pc.SetControlMessage(ipv4.FlagDst, true); err != nil {
		return 0, fmt.Errorf("icmp socket: %w", err)
	}
	// Drop what the socket queued before the filter was in place.
	_ = pc.SetReadDeadline(time.Now())
	for buf := make([]byte, 64); ; {
		if _, _, _, err := pc.ReadFrom(buf); err != nil {
			break
		}
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := pc.SetReadDeadline(deadline); err != nil {
		return 0, err
	}
	stop := context.AfterFunc(ctx, func() { _ = pc.SetReadDeadline(time.Now()) })
	defer stop()

	dst := &net.IPAddr{IP: upstream.AsSlice()}
	for seq, v := range vips {
		msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: seq, Data: token}}
		b, err := msg.Marshal(nil)
		if err != nil {
			return 0, err
		}
		cm := &ipv4.ControlMessage{Src: v.AsSlice(), IfIndex: index}
		if _, err := pc.WriteTo(b, cm, dst); err != nil {
			return 0, fmt.Errorf("icmp echo from %s to %s: %w", v, upstream, err)
		}
	}
	answered := make([]bool, len(vips))
	n := 0
	buf := make([]byte, 1500)
	for n < len(vips) {
		m, cm, src, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return n, ctx.Err()
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return n, nil
			}
			return n, fmt.Errorf("icmp read: %w", err)
		}
		var to netip.Addr
		if cm != nil {
			to, _ = netip.AddrFromSlice(cm.Dst)
		}
		var from netip.Addr
		if ia, ok := src.(*net.IPAddr); ok {
			from, _ = netip.AddrFromSlice(ia.IP)
		}
		if seq, ok := matchEchoReply(buf[:m], id, token, vips, from.Unmap(), to.Unmap(), upstream); ok && !answered[seq] {
			answered[seq] = true
			n++
		}
	}
	return n, nil
}

// matchEchoReply reports whether b (an ICMP message) is the reply to this
// attempt's echo from vips[seq]: an echo reply with identifier id, the
// token as data, from upstream to that VIP (to: unknown is accepted).
func matchEchoReply(b []byte, id int, token []byte, vips []netip.Addr, from, to, upstream netip.Addr) (int, bool) {
	msg, err := icmp.ParseMessage(1, b)
	if err != nil || msg.Type != ipv4.ICMPTypeEchoReply {
		return 0, false
	}
	e, ok := msg.Body.(*icmp.Echo)
	if !ok || e.ID != id || e.Seq < 0 || e.Seq >= len(vips) || string(e.Data) != string(token) || from != upstream {
		return 0, false
	}
	if to.IsValid() && to != vips[e.Seq] {
		return 0, false
	}
	return e.Seq, true
}

// echoReplyFilter passes an IPv4 datagram (a raw socket's view: from the
// IP header) only if it carries an ICMP echo reply with identifier id.
func echoReplyFilter(id uint16) []bpf.Instruction {
	return []bpf.Instruction{
		bpf.LoadMemShift{Off: 0},                                // X = IP header length
		bpf.LoadIndirect{Off: 0, Size: 1},                       // A = ICMP type
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 0, SkipTrue: 3}, // not an echo reply
		bpf.LoadIndirect{Off: 4, Size: 2},                       // A = identifier
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: uint32(id), SkipTrue: 1},
		bpf.RetConstant{Val: 0xffff},
		bpf.RetConstant{Val: 0},
	}
}
