package vrrp

import (
	"errors"
	"net/netip"
	"slices"
	"time"

	"github.com/vipd/vipd/vip"
)

// The reconciler is the only code that changes the host. Each instance
// declares what it wants present: its VIPs while it is master or hands
// them over on shutdown (instance.wantsVIPs), none otherwise. The
// reconciler compares that with what it knows of the host (vipState,
// learned from its own adds and removals, the address events and, when in
// doubt, a listing of the link's addresses) and acts. Taking over,
// resigning, reload, the stale clean-up at start-up and "someone removed
// my VIP" are the same code path, in the modes below. It removes only what
// vipd added: the dataplane marks each address it adds (IFA_PROTO) and
// refuses to remove or take over one without the mark.

// reconcileMode says why the reconciler runs, and so how far it trusts
// what it knows of the host.
type reconcileMode uint8

const (
	// reconcileTransition: the machine took over or gave up. Every VIP is
	// added (idempotent) or removed, whatever vipd believes is there.
	reconcileTransition reconcileMode = iota
	// reconcileRepair: the host changed behind vipd's back (an address
	// event, a resync). A wanted VIP that is missing is put back and
	// counted as restored; one whose add failed is left to the retry.
	reconcileRepair
	// reconcileRetry: the retry timer fired; wanted VIPs whose add failed
	// are tried again.
	reconcileRetry
	// reconcileReload: the configuration changed; VIPs no longer
	// configured go (orphans), new ones come, and are announced once.
	reconcileReload
	// reconcileStale: an instance starts; its VIPs that a run which did
	// not stop cleanly left on the link (marked as vipd's) go.
	reconcileStale
)

// The back-off of the add retry: the first retry this long after a failed
// add, doubling up to vipRetryMax.
const (
	vipRetryMin = 100 * time.Millisecond
	vipRetryMax = 5 * time.Second
)

// wantsVIPs is what the instance declares: its VIPs present while it is
// master, or while it hands them over to a successor on shutdown.
func (in *instance) wantsVIPs() bool {
	return in.m.State() == StateMaster || in.m.HandingOver()
}

// reconcile brings the host in line with what in wants. The VIPs it added
// are announced as the mode requires (a burst after a repair or a retry,
// once after a reload; a transition leaves that to the machine's
// ActAnnounce). The error is the first removal that failed in
// reconcileStale mode, where start-up stops on it; otherwise failures are
// logged, and a failed add is retried with back-off.
func (n *Node) reconcile(in *instance, mode reconcileMode, now time.Time) error {
	defer n.noteDeadline(in)
	want := in.wantsVIPs()
	// Rules, then routes, then addresses go; addresses, then routes,
	// then rules come.
	n.removeRoutes(&in.rs, in.cfg.Name, !want && mode == reconcileTransition)
	for _, o := range in.orphans {
		n.removeAddr(in, o.link, o.prefix)
	}
	in.orphans = nil
	switch mode {
	case reconcileTransition:
		in.retryAt, in.retryWait = time.Time{}, 0
	case reconcileRetry:
		in.retryAt = time.Time{}
		if !want {
			in.retryWait = 0
			return nil
		}
		in.retryWait = min(2*in.retryWait, vipRetryMax)
	}
	var (
		added []netip.Addr
		errs  []error
	)
	if want && mode != reconcileStale {
		// The macvlan comes up before its VIPs (vmac.go).
		n.setVMACUp(in, true)
	}
	for i := range in.vs {
		v := &in.vs[i]
		switch {
		case mode == reconcileStale:
			if !v.present {
				continue
			}
			n.log.Warn("removing stale VIP left on the interface", "instance", in.cfg.Name, "interface", v.link.name, "vip", v.prefix)
			if err := n.dp.RemoveAddr(v.link.index, v.prefix); err != nil {
				errs = append(errs, err)
				continue
			}
			v.present = false
		case !want:
			if mode == reconcileTransition {
				if n.removeAddr(in, v.link, v.prefix) {
					v.present = false
				}
			}
		case mode == reconcileTransition:
			if n.addVIP(in, i, now) {
				added = append(added, v.prefix.Addr())
			}
		case v.present:
		case v.addErr != "" && mode != reconcileRetry:
			// Left to the retry, which backs off.
		default:
			if mode == reconcileRepair {
				n.log.Warn("VIP was removed from the interface behind vipd's back; restoring it", "instance", in.cfg.Name, "interface", v.link.name, "vip", v.prefix)
			}
			if !n.addVIP(in, i, now) {
				continue
			}
			if mode == reconcileRepair {
				in.count.VIPsRestored++
			}
			added = append(added, v.prefix.Addr())
		}
	}
	if !want && mode != reconcileStale {
		// and goes down after them: a backup's macvlan neither answers
		// ARP for a VIP nor takes its traffic.
		n.setVMACUp(in, false)
	}
	if want && mode != reconcileStale {
		n.installRoutes(&in.rs, in.cfg.Name, mode, &in.retryAt, &in.retryWait, now)
		if len(added) > 0 {
			n.afterVIPsChanged(now)
		}
	}
	if mode == reconcileRetry && in.retryAt.IsZero() {
		in.retryWait = 0
	}
	if len(added) > 0 {
		switch mode {
		case reconcileRepair, reconcileRetry:
			n.step(in, Event{Kind: EventAnnounce}, now)
		case reconcileReload:
			n.announceAddrs(in, added)
		}
	}
	return errors.Join(errs...)
}

// removeAddr takes in's address p off link, reporting whether it is gone.
func (n *Node) removeAddr(in *instance, link *iface, p netip.Prefix) bool {
	if err := n.dp.RemoveAddr(link.index, p); err != nil {
		n.log.Error("removing VIP failed", "instance", in.cfg.Name, "err", err)
		return false
	}
	return true
}

// addVIP puts in's VIP i on its link and records the outcome. A failure is
// logged when it is new (not a retry failing the same way) and schedules
// a retry; it reports whether the VIP is on now.
func (n *Node) addVIP(in *instance, i int, now time.Time) bool {
	v := &in.vs[i]
	err := n.dp.AddAddr(v.link.index, v.prefix, v.label)
	if err == nil {
		if v.addErr != "" {
			n.log.Info("VIP added after failed attempts", "instance", in.cfg.Name, "interface", v.link.name,
				"vip", v.prefix, "add_failures", v.failures)
		}
		v.present, v.addErr = true, ""
		return true
	}
	v.present = false
	v.failures++
	if msg := err.Error(); msg != v.addErr {
		v.addErr = msg
		n.log.Error("adding VIP failed; not announcing it, retrying", "instance", in.cfg.Name, "interface", v.link.name,
			"vip", v.prefix, "err", err)
	}
	if in.retryAt.IsZero() {
		if in.retryWait == 0 {
			in.retryWait = vipRetryMin
		}
		in.retryAt = now.Add(in.retryWait)
	}
	return false
}

// retryVIPs tries again to add the VIPs a master lacks because their add
// failed, and announces them once they are on; while some still fail the
// next try waits twice as long, up to vipRetryMax.
func (n *Node) retryVIPs(in *instance, now time.Time) {
	_ = n.reconcile(in, reconcileRetry, now)
}

// observe learns from a listing of ifc's addresses which VIPs placed on it
// are there.
func (n *Node) observe(ifc *iface) error {
	return n.observeFor(ifc, n.allInstancesOn(ifc)...)
}

// observeFor is observe for the VIPs of the instances ins only.
func (n *Node) observeFor(ifc *iface, ins ...*instance) error {
	as, err := n.dp.ListAddrs(ifc.index)
	if err != nil {
		return err
	}
	for _, in := range ins {
		for i := range in.vs {
			v := &in.vs[i]
			if v.link == ifc {
				v.present = slices.ContainsFunc(as, func(a vip.Addr) bool { return a.Prefix.Addr() == v.prefix.Addr() })
			}
		}
	}
	return nil
}

// allInstancesOn lists the instances with addresses on ifc: those that
// advertise on it, then those with VIPs on it that advertise elsewhere.
func (n *Node) allInstancesOn(ifc *iface) []*instance {
	if len(ifc.guests) == 0 {
		return ifc.insts
	}
	return append(slices.Clip(ifc.insts), ifc.guests...)
}

// restoreVIPs learns which VIPs are on the interface, and puts back those
// that someone removed from a master's interface. A VIP whose add failed is
// left to the retry.
func (n *Node) restoreVIPs(ifc *iface, now time.Time) {
	if err := n.observe(ifc); err != nil {
		n.log.Error("checking VIPs failed", "interface", ifc.name, "err", err)
		return
	}
	for _, in := range n.allInstancesOn(ifc) {
		_ = n.reconcile(in, reconcileRepair, now)
	}
	// The kernel removes, without an event, the routes whose source was
	// an address that went.
	n.checkRoutes(now)
}
