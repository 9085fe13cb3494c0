package vrrp

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"time"
)

// The heal: a partition ends, and of the two masters the lower one yields
// (receive.go) and removes its VIPs. The other one, master all along,
// sees no reason to announce them: FRR's vrrpd does not, and the clients
// keep the MAC of the router that yielded until their own neighbour
// timers give up, seconds later.
//
// With virtual_mac there is nothing to do: the clients' entries name the
// virtual MAC on both sides, and the winner's next advert, which leaves
// from the virtual MAC, moves the switches to its port.
//
// Without it, the yielding router tells the clients where the VIPs are
// now: it learns the winner's MAC, the Ethernet source of the winner's
// next advert (a master sends its adverts from the MAC it answers on: its
// interface's, or the virtual MAC with use_vmac or FRR), and sends
// gratuitous ARP (IPv4 VIPs) or unsolicited neighbour advertisements
// (IPv6 VIPs) naming that MAC, from its own (so that no switch learns the
// winner's MAC on its port). What keeps it safe:
//   - only when this instance was master and yields to an advert on its
//     own link (TTL 255: the winner is on the segment), with multicast
//     adverts (the frame's source is then the winner's, not a router's);
//   - only the VIPs on the advert link that the winner's advert lists,
//     and only those not on this node. So the VIPs of the other family
//     (advertise: false) are not announced at the winner's MAC: its
//     advert does not say it holds them, and the MAC is the one it
//     answers on in the advert's family (FRR has a virtual MAC per
//     family); a winner that holds them (vipd, keepalived's
//     virtual_ipaddress_excluded) announces them itself when it hears
//     the loser's advert (reassert.go; keepalived's
//     garp_lower_prio_repeat);
//   - only once per yield, with the winner's next advert within its
//     Master_Down_Interval, and only while this instance is still backup
//     to the same master: a result that comes late is dropped;
//   - only a unicast MAC that is not this link's.
// The raw IP socket does not say which MAC an advert came from, so a
// packet socket, filtered in the kernel to that master's adverts for that
// VRID, is opened for the one advert and closed again (hostheal.go); the
// steady state costs nothing. The clients wait at most one advert
// interval after the yield.

// senderLearner is the host's part: it reports on n.healCh the Ethernet
// source of the next advert from req.From for req.VRID on link
// req.Index, or an error, within req.Timeout or until ctx ends. The
// goroutine it starts belongs to n (n.wg).
type senderLearner interface {
	learnSender(n *Node, ctx context.Context, req senderReq)
}

// senderReq asks for the MAC of a master's next advert.
type senderReq struct {
	Instance string
	Term     uint64
	Index    int
	Link     string
	From     netip.Addr
	VRID     uint8
	Timeout  time.Duration
}

// senderMAC is the answer to a senderReq.
type senderMAC struct {
	Instance string
	Term     uint64
	From     netip.Addr
	MAC      net.HardwareAddr
	Err      error
}

// healState is an instance's pending announcement for the master it
// yielded to.
type healState struct {
	term   uint64 // counts yields; a result of an older one is dropped
	from   netip.Addr
	addrs  []netip.Addr // the VIPs to announce
	cancel context.CancelFunc
}

// yielded starts learning the MAC of master from, which in yielded to on
// its advert listing advertised, so that the VIPs can be announced at it.
func (n *Node) yielded(in *instance, from netip.Addr, advertised []netip.Addr) {
	in.heal.stop()
	in.heal.term++
	if in.vmac != nil || n.learner == nil || len(in.cfg.UnicastPeers) > 0 || in.ifc.link == nil {
		return
	}
	var addrs []netip.Addr
	for _, v := range in.vs {
		if a := v.prefix.Addr(); v.link == in.ifc && !v.present && slices.Contains(advertised, a) {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		return
	}
	ctx, cancel := context.WithCancel(n.ctx)
	in.heal.from, in.heal.addrs, in.heal.cancel = from, addrs, cancel
	n.learner.learnSender(n, ctx, senderReq{
		Instance: in.cfg.Name, Term: in.heal.term, Index: in.ifc.index, Link: in.ifc.name,
		From: from, VRID: in.cfg.VRID, Timeout: in.m.MasterDownInterval(),
	})
}

// stop ends a pending learn.
func (h *healState) stop() {
	if h.cancel != nil {
		h.cancel()
		h.cancel = nil
	}
	h.addrs = nil
}

// onSenderMAC announces the VIPs at the MAC learned for the master the
// instance yielded to, if it still is the master and nothing changed.
func (n *Node) onSenderMAC(r senderMAC) {
	var in *instance
	for _, x := range n.insts {
		if x.cfg.Name == r.Instance {
			in = x
		}
	}
	if in == nil || in.heal.term != r.Term || in.heal.addrs == nil {
		return // reloaded away, or a later yield or transition since
	}
	addrs := in.heal.addrs
	in.heal.stop()
	if r.Err != nil {
		n.log.Info("the new master's MAC was not learned; the clients find it when their neighbour entries expire",
			"instance", in.cfg.Name, "master", r.From, "err", r.Err)
		return
	}
	switch {
	case in.m.State() != StateBackup || in.m.MasterAddr() != r.From:
		return
	case len(r.MAC) != 6 || r.MAC[0]&1 != 0 || slices.Equal(r.MAC, make(net.HardwareAddr, 6)) || slices.Equal(r.MAC, in.ifc.mac):
		n.log.Warn("not announcing the VIPs at the new master's MAC: not a unicast MAC of another host",
			"instance", in.cfg.Name, "master", r.From, "mac", r.MAC.String())
		return
	}
	addrs = slices.DeleteFunc(addrs, func(a netip.Addr) bool {
		return slices.ContainsFunc(in.vs, func(v vipState) bool { return v.prefix.Addr() == a && v.present })
	})
	if len(addrs) == 0 {
		return
	}
	sent, err := in.ifc.link.AnnounceAt(r.MAC, addrs)
	in.count.GARPSent += uint64(sent)
	if err != nil {
		n.log.Error("announcing the VIPs at the new master's MAC failed", "instance", in.cfg.Name, "interface", in.ifc.name, "err", err)
		return
	}
	n.log.Info("announced the VIPs at the new master's MAC",
		"instance", in.cfg.Name, "interface", in.ifc.name, "master", r.From, "mac", r.MAC.String(), "vips", len(addrs))
}
