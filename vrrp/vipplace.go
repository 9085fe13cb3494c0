package vrrp

import (
	"fmt"
	"slices"

	"github.com/vipd/vipd/config"
	"github.com/vipd/vipd/vip"
)

// Where addresses go: a VIP may live on another interface than the one its
// instance advertises on (vips[].interface, keepalived's "dev"), and
// adverts may name another address of the interface than its primary one
// (source_address, keepalived's unicast_src_ip / mcast_src_ip).
//
// A link that carries VIPs but no instance's adverts is "VIP only": it is
// opened for gratuitous ARP alone (Dataplane.OpenAnnouncer), its
// addresses are watched like any other link's, and its carrier is not
// tracked: as in keepalived, a VIP's interface matters to the election
// only when track.interfaces lists it. When it has carrier again, masters
// with VIPs on it put back any that went and announce them again.

// vipIfname is the interface VIP v of instance c lives on.
func vipIfname(c config.Instance, v config.VIP) string {
	if v.Interface != "" {
		return v.Interface
	}
	return vmacIfname(c)
}

// addVIPLinks looks up every interface that carries VIPs of cfg but is not
// in byName, adds it to byName as a VIP-only link and hands it to add.
// Each interface that does not exist is an error naming the VIP.
func (n *Node) addVIPLinks(cfg *config.Config, byName map[string]*iface, add func(*iface)) []error {
	var errs []error
	failed := map[string]bool{}
	for _, c := range cfg.Instances {
		for _, v := range c.VIPs {
			name := vipIfname(c, v)
			if byName[name] != nil || failed[name] {
				continue
			}
			li, err := n.dp.LookupLink(name)
			if err != nil {
				failed[name] = true
				errs = append(errs, fmt.Errorf("%s:%d: VIP %s of instance %s: interface %s: %w", cfg.File, v.Line, v.Address, c.Name, name, err))
				continue
			}
			ifc := newIface(li)
			ifc.vipOnly = true
			byName[name] = ifc
			add(ifc)
		}
	}
	return errs
}

// indexGuests records on each link the instances that have VIPs on it but
// advertise on another one.
func (n *Node) indexGuests() {
	for _, ifc := range n.ifaces {
		ifc.guests = ifc.guests[:0]
	}
	for _, in := range n.insts {
		for _, v := range in.vs {
			if v.link != in.ifc && !slices.Contains(v.link.guests, in) {
				v.link.guests = append(v.link.guests, in)
			}
		}
	}
}

// checkSources refuses a source_address of an instance advertising on
// ifname that is not one of the interface's addresses as.
func checkSources(file, ifname string, as []vip.Addr, cs []config.Instance) []error {
	var errs []error
	for _, c := range cs {
		src := c.SourceAddress
		if c.Interface != ifname || !src.IsValid() {
			continue
		}
		if !slices.ContainsFunc(as, func(a vip.Addr) bool { return a.Prefix.Addr() == src }) {
			errs = append(errs, fmt.Errorf("%s:%d: instance %s: source_address %s is not an address of %s; adverts can only come from an address the interface has (add it, or omit source_address to use the primary address)",
				file, c.Line, c.Name, src, ifname))
		}
	}
	return errs
}

// linksOf lists the distinct links instance in has VIPs on, its own first.
func linksOf(in *instance) []*iface {
	links := []*iface{in.ifc}
	for _, v := range in.vs {
		if !slices.Contains(links, v.link) {
			links = append(links, v.link)
		}
	}
	return links
}
