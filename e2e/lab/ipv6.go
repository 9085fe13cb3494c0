package lab

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// EnableIPv6 turns IPv6 on in the host (lab hosts are born with it off),
// without duplicate address detection so that eth0's link-local is usable
// at once, adds addr (an IPv6 prefix in fd00:18::/64; none if invalid) to
// eth0, and waits until eth0 has a usable link-local, which it returns.
// Router solicitations stay off.
func (h *Host) EnableIPv6(addr netip.Prefix) (netip.Addr, error) {
	var keys []string
	for _, dev := range []string{"all", "default", hostLink} {
		keys = append(keys, "net.ipv6.conf."+dev+".accept_dad=0", "net.ipv6.conf."+dev+".router_solicitations=0")
	}
	for _, dev := range []string{"all", "default", hostLink} {
		keys = append(keys, "net.ipv6.conf."+dev+".disable_ipv6=0")
	}
	for _, k := range keys {
		if _, err := runCmd("ip", "netns", "exec", h.NS, "sysctl", "-qw", k); err != nil {
			return netip.Addr{}, fmt.Errorf("enable IPv6 on %s: %w", h.NS, err)
		}
	}
	if addr.IsValid() {
		if !strings.HasPrefix(addr.Masked().String(), "fd00:18::/") {
			return netip.Addr{}, fmt.Errorf("enable IPv6 on %s: %s is outside the lab's fd00:18::/64", h.NS, addr)
		}
		if err := ipIn(h.NS, "-6", "addr", "add", addr.String(), "dev", hostLink, "nodad"); err != nil {
			return netip.Addr{}, err
		}
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		ll, err := h.LinkLocal()
		if err == nil && ll.IsValid() {
			return ll, nil
		}
		if time.Now().After(deadline) {
			return netip.Addr{}, fmt.Errorf("enable IPv6 on %s: no usable link-local on %s after 3 s (err %v)", h.NS, hostLink, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// LinkLocal returns eth0's usable (not tentative) IPv6 link-local address,
// invalid if none.
func (h *Host) LinkLocal() (netip.Addr, error) {
	var ll netip.Addr
	err := h.withLink(func(nh *netlink.Handle, link netlink.Link) error {
		addrs, err := nh.AddrList(link, netlink.FAMILY_V6)
		if err != nil {
			return err
		}
		for _, a := range addrs {
			ip, ok := netip.AddrFromSlice(a.IP)
			if ok && ip.IsLinkLocalUnicast() && a.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) == 0 {
				ll = ip
				return nil
			}
		}
		return nil
	})
	return ll, err
}
