package vrrp

import (
	"net/netip"
	"slices"
	"time"
)

// step feeds an event to an instance's machine and carries out the result;
// a sync group follows the instance's transitions.
func (n *Node) step(in *instance, ev Event, now time.Time) {
	out := in.m.Step(ev, now)
	if n.trace != nil {
		n.trace(in.cfg.Name, ev, now, out)
	}
	n.handle(in, out, ev, now, true)
}

// stepForced is step for a transition that the group must not follow
// (one forced by the group itself, a hold, or a shutdown).
func (n *Node) stepForced(in *instance, ev Event, now time.Time) {
	out := in.m.Step(ev, now)
	if n.trace != nil {
		n.trace(in.cfg.Name, ev, now, out)
	}
	n.handle(in, out, ev, now, false)
}

func (n *Node) handle(in *instance, out Output, ev Event, now time.Time, propagate bool) {
	// The addresses and packets first, the clients are waiting for them;
	// the log, the event stream and the hooks after.
	n.apply(in, out.Actions, now)
	if in.m.State() != StateBackup {
		n.dropHeld(in)
	}
	n.followUpstreams(in, out, ev, now)
	n.noteConflictState(in)
	n.noteDeadline(in)
	if !out.Transition && out.Actions.Has(ActRemoveVIPs) && in.m.State() == StateInit {
		// The end of a hand-over on shutdown.
		if ev.Kind == EventAdvert {
			n.log.Info("VIPs handed over", "instance", in.cfg.Name, "to", ev.From, "priority", ev.Priority)
		} else {
			n.log.Warn("no router took over within the advert interval: VIPs removed",
				"instance", in.cfg.Name, "waited", now.Sub(in.m.LastChange()).Round(time.Microsecond).String())
		}
	}
	if out.Transition {
		in.count.Transitions[[2]State{out.From, out.To}]++
		attrs := []any{"instance", in.cfg.Name, "interface", in.ifc.name, "vrid", in.cfg.VRID,
			"from", out.From.String(), "to", out.To.String(), "reason", out.Reason.String(), "priority", in.m.Config().Priority}
		te := TransitionEvent{Time: now, Instance: in.cfg.Name, Interface: in.ifc.name, VRID: in.cfg.VRID,
			From: out.From, To: out.To, Reason: out.Reason, Priority: in.m.Config().Priority}
		if ev.Kind == EventAdvert {
			attrs = append(attrs, "peer", ev.From, "peer_priority", ev.Priority)
			te.Peer, te.PeerPriority = ev.From, ev.Priority
		}
		if in.group != nil {
			attrs = append(attrs, "sync_group", in.group.name)
		}
		n.log.Info("transition", attrs...)
		n.subs.publish(te)
		n.notifyHook(in, out)
		n.groupChanged(in.group)
		if propagate {
			n.propagate(in, out, now)
		}
	}
}

// apply carries out a Step's actions, in the order that keeps the clients'
// gap smallest.
func (n *Node) apply(in *instance, acts Action, now time.Time) {
	defer n.noteDeadline(in)
	ifc := in.ifc
	if acts.Has(ActResign) {
		// Resigning: the priority-0 advert leaves first and the VIPs go
		// after it, so the backup's Skew_Time starts before the clients
		// lose this node, and the gap they see is no longer than it.
		n.send(in, 0)
		n.flushIface(ifc)
	}
	// The VIPs go on before the gratuitous ARP leaves, so that no client
	// is sent here before this node answers for them. On a local segment
	// the frame reaches the clients, and their next request this node,
	// within the write that sends it, sooner than the kernel adds an
	// address; and the burst's second frame would delay the add further.
	// A VIP that cannot be added is retried (retryVIPs) and not
	// announced until it is there.
	if acts.Has(ActRemoveVIPs) || acts.Has(ActAddVIPs) {
		_ = n.reconcile(in, reconcileTransition, now)
	}
	if acts.Has(ActAnnounce) {
		n.announce(in)
	}
	if acts.Has(ActSendAdvert) {
		n.send(in, in.m.Config().Priority)
	}
}

// announce sends gratuitous ARP for the VIPs that are on their links:
// never for one whose add failed, which would draw the clients to an
// address this node does not answer for.
func (n *Node) announce(in *instance) {
	n.announceAddrs(in, nil)
}

// announceAddrs sends gratuitous ARP for the present VIPs among addrs (nil:
// all of them), each on its own link.
func (n *Node) announceAddrs(in *instance, addrs []netip.Addr) {
	for i := range in.vs {
		link := in.vs[i].link
		if slices.ContainsFunc(in.vs[:i], func(o vipState) bool { return o.link == link }) {
			continue // that link's addresses went out with an earlier one
		}
		in.annBuf = in.annBuf[:0]
		for _, v := range in.vs[i:] {
			if v.link == link && v.present && (addrs == nil || slices.Contains(addrs, v.prefix.Addr())) {
				in.annBuf = append(in.annBuf, v.prefix.Addr())
			}
		}
		if link.link == nil || len(in.annBuf) == 0 {
			continue
		}
		sent, err := link.link.Announce(in.annBuf)
		in.count.GARPSent += uint64(sent)
		if err != nil {
			n.log.Error("gratuitous ARP failed", "instance", in.cfg.Name, "interface", link.name, "err", err)
		}
	}
}

// send queues an advert with priority prio; flush sends the queue.
func (n *Node) send(in *instance, prio uint8) {
	l := in.ifc.link
	if l == nil {
		return
	}
	var err error
	if len(in.cfg.UnicastPeers) == 0 {
		var b []byte
		if b, err = in.advert(prio, in.mcastGroup()); err == nil {
			err = l.Queue(b, in.source(), in.mcastGroup(), in.advertMAC())
		}
	} else {
		for _, peer := range in.cfg.UnicastPeers {
			var b []byte
			if b, err = in.advert(prio, peer); err == nil {
				err = l.Queue(b, in.source(), peer, nil)
			}
			if err != nil {
				break
			}
		}
	}
	if err != nil {
		n.sendFailed(in.ifc, err)
		return
	}
	in.count.AdvertsSent++
	if prio == 0 {
		in.count.PriorityZeroSent++
	}
}

func (n *Node) sendFailed(ifc *iface, err error) {
	if ok, _ := ifc.sendLog.allow(n.now(), 10*time.Second); ok {
		n.log.Error("sending adverts failed", "interface", ifc.name, "err", err)
	}
}

// flush sends every interface's queued adverts.
func (n *Node) flush() {
	for _, ifc := range n.ifaces {
		n.flushIface(ifc)
	}
}

// flushIface sends the adverts queued on one interface.
func (n *Node) flushIface(ifc *iface) {
	if ifc.link != nil && ifc.link.Pending() {
		if err := ifc.link.Flush(); err != nil {
			n.sendFailed(ifc, err)
		}
	}
}
