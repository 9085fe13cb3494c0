package lab

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// LinkAddr reports, for the host's link name, whether a is assigned to it
// and whether the link is operationally up (IFF_UP, carrier, and not
// protodown: FRR's vrrpd keeps its VIPs on a macvlan and sets it
// protodown as backup, so an address there serves only while the link
// is up).
func (h *Host) LinkAddr(name string, a netip.Addr) (present, up bool, err error) {
	if h.isBridge() {
		return false, false, fmt.Errorf("link %s: %s is the bridge namespace, not a host", name, h.NS)
	}
	nh, err := h.netlinkHandle()
	if err != nil {
		return false, false, err
	}
	defer nh.Close()
	link, err := nh.LinkByName(name)
	if err != nil {
		return false, false, fmt.Errorf("find %s in %s: %w", name, h.NS, err)
	}
	addrs, err := nh.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return false, false, fmt.Errorf("list addresses of %s in %s: %w", name, h.NS, err)
	}
	for _, ad := range addrs {
		if got, ok := netip.AddrFromSlice(ad.IP); ok && got.Unmap() == a.Unmap() {
			present = true
			break
		}
	}
	return present, link.Attrs().OperState == netlink.OperUp, nil
}

// LinkExists reports whether the host has a link called name.
func (h *Host) LinkExists(name string) bool {
	if h.isBridge() {
		return false
	}
	nh, err := h.netlinkHandle()
	if err != nil {
		return false
	}
	defer nh.Close()
	_, err = nh.LinkByName(name)
	return err == nil
}
