package vrrp

import (
	"bytes"
	"net"
	"time"

	"github.com/vipd/vipd/vip"
)

// onAddrChange follows an address event: a VIP added is known present; a
// VIP removed has the reconciler check the link and repair; any other
// address may change the primary address.
func (n *Node) onAddrChange(c vip.Change, now time.Time) {
	if c.Resync {
		for _, ifc := range n.ifaces {
			n.restoreVIPs(ifc, now)
			n.updatePrimary(ifc, now)
		}
		return
	}
	ifc := n.ifaceByIndex(c.Index)
	if ifc == nil {
		return
	}
	if !ifc.isVIP(c.Addr) {
		n.updatePrimary(ifc, now)
		return
	}
	if c.Added {
		for _, in := range n.allInstancesOn(ifc) {
			for i := range in.vs {
				if v := &in.vs[i]; v.link == ifc && v.prefix.Addr() == c.Addr {
					v.present = true
				}
			}
		}
		return
	}
	// A removal is checked against the interface: the event may be
	// vipd's own removal, overtaken by a later add.
	n.restoreVIPs(ifc, now)
}

func (n *Node) updatePrimary(ifc *iface, now time.Time) {
	if ifc.vipOnly {
		return // no adverts go out here
	}
	old, old6, oldg := ifc.primary, ifc.primary6, ifc.global6
	if err := n.refreshPrimary(ifc); err != nil {
		n.log.Warn("no primary address", "interface", ifc.name, "err", err)
		return
	}
	if ifc.primary == old && ifc.primary6 == old6 && ifc.global6 == oldg {
		return
	}
	if ifc.primary != old {
		n.log.Info("primary address changed", "interface", ifc.name, "from", old, "to", ifc.primary)
	}
	if ifc.primary6 != old6 {
		n.log.Info("link-local address changed", "interface", ifc.name, "from", old6, "to", ifc.primary6)
	}
	if ifc.global6 != oldg && ifc.needsGlobal6() {
		n.log.Info("global IPv6 address for unicast adverts changed", "interface", ifc.name, "from", oldg, "to", ifc.global6)
	}
	for _, in := range ifc.insts {
		n.reevaluate(in, now)
	}
}

func (n *Node) onLinkChange(lc LinkInfo, now time.Time) {
	n.onRouteLink(lc, now)
	for _, in := range n.insts {
		for _, ti := range in.cfg.Track.Interfaces {
			if ti.Name == lc.Name && in.track.ifDown[ti.Name] == lc.Up {
				in.track.ifDown[ti.Name] = !lc.Up
				n.log.Info("tracked interface changed", "instance", in.cfg.Name, "interface", lc.Name, "up", lc.Up)
				n.reevaluate(in, now)
			}
		}
	}
	var ifc *iface
	for _, x := range n.ifaces {
		if x.name == lc.Name {
			ifc = x
		}
	}
	if ifc == nil {
		return
	}
	if ifc.up == lc.Up {
		if lc.Up && len(lc.MAC) > 0 && !bytes.Equal(lc.MAC, ifc.mac) {
			n.onNewMAC(ifc, lc.MAC, now)
		}
		return
	}
	ifc.up = lc.Up
	if len(lc.MAC) > 0 && !bytes.Equal(lc.MAC, ifc.mac) {
		ifc.mac = lc.MAC // the link, opened afresh below, uses it
		n.kickConflict()
	}
	if !lc.Up {
		if ifc.vmac {
			return // down while its instance is not master, or with its parent
		}
		if ifc.vipOnly {
			n.log.Warn("interface carrying VIPs lost carrier; not a fault unless track.interfaces lists it", "interface", ifc.name)
			return
		}
		n.log.Warn("interface lost carrier", "interface", ifc.name)
		for _, in := range ifc.insts {
			n.reevaluate(in, now)
		}
		return
	}
	n.log.Info("interface has carrier again", "interface", ifc.name)
	// The interface may have been recreated, and sockets on an interface
	// that went down can be stale: open fresh ones first.
	ifc.index = lc.Index
	if err := n.openLink(ifc); err != nil {
		n.log.Error("reopening sockets failed; staying in fault", "interface", ifc.name, "err", err)
		ifc.up = false
		return
	}
	n.rcv.attach(n, ifc)
	n.updatePrimary(ifc, now)
	for _, in := range ifc.insts {
		n.reevaluate(in, now)
	}
	if len(ifc.guests) > 0 {
		// VIPs of instances advertising elsewhere: their state did not
		// change with this link's carrier (it is not tracked unless
		// track.interfaces lists it), but the link may have been
		// recreated without them, and its neighbours may have forgotten
		// them: masters put back what is missing and announce again.
		n.restoreVIPs(ifc, now)
		for _, in := range ifc.guests {
			if in.m.State() == StateMaster {
				n.step(in, Event{Kind: EventAnnounce}, now)
			}
		}
	}
}

// onNewMAC follows a hardware address that changed while the link stayed
// up (bonding with fail_over_mac=active does this): the gratuitous ARP and
// advert frames, built in advance, would go on naming the old one, and
// clients would go on sending to a MAC that this host no longer has. The
// frames are built again for the new address, and every master on the
// interface announces its VIPs from it at once.
func (n *Node) onNewMAC(ifc *iface, mac net.HardwareAddr, now time.Time) {
	n.log.Warn("interface changed its hardware address; announcing the VIPs from the new one",
		"interface", ifc.name, "from", ifc.mac.String(), "to", mac.String())
	ifc.mac = mac
	n.kickConflict() // the watcher tells this node's MAC from others'
	if ifc.link != nil {
		if err := ifc.link.SetHardwareAddr(mac); err != nil {
			n.log.Error("rebuilding gratuitous ARP for the new hardware address failed", "interface", ifc.name, "err", err)
		}
	}
	for _, in := range n.allInstancesOn(ifc) {
		if in.m.State() == StateMaster {
			n.step(in, Event{Kind: EventAnnounce}, now)
		}
	}
}
