package arp

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"golang.org/x/sys/unix"
)

// Unsolicited neighbour advertisements (RFC 4861 §7.2.6) are IPv6's
// gratuitous ARP: a new master sends one per IPv6 VIP, from the VIP to
// all-nodes (ff02::1), with the Override flag so that neighbours replace
// the link-layer address they have for it, and the VIP's link-layer
// address in a Target Link-Layer Address option. A neighbour applies it
// only to an entry it already has (and sets it STALE); it creates none.
// Solicited is never set (nobody asked); Router only when the node forwards
// IPv6 (a host that advertised Router would make neighbours treat it as a
// router, and one that forwards but clears it would make them drop it from
// their default router list).

// AllNodes is the IPv6 all-nodes multicast group, where unsolicited
// neighbour advertisements go.
var AllNodes = netip.MustParseAddr("ff02::1")

// allNodesMAC is AllNodes' Ethernet multicast address (RFC 2464 §7).
var allNodesMAC = net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}

// Layout of a neighbour advertisement frame: Ethernet (14), IPv6 (40),
// ICMPv6 NA (type, code, checksum, flags, reserved: 8; target: 16), TLLA
// option (type, length, MAC: 8).
const (
	naEthLen       = 14
	ipv6HeaderLen  = 40
	naSourceOffset = naEthLen + 8
	naICMPOffset   = naEthLen + ipv6HeaderLen
	naCsumOffset   = naICMPOffset + 2
	naTargetOffset = naICMPOffset + 8
	naICMPLen      = 8 + 16 + 8
	naFrameLen     = naICMPOffset + naICMPLen
	// NAHopLimit is the hop limit of every neighbour discovery message: a
	// receiver drops one with any other (RFC 4861 §7.1.2).
	NAHopLimit = 255
)

// NAFrame returns the Ethernet frame of an unsolicited neighbour
// advertisement of vip at mac: from mac to 33:33:00:00:00:01, an IPv6 header
// from vip to ff02::1 with hop limit 255, and an ICMPv6 neighbour
// advertisement with target vip, the Override flag (and Router if router),
// a Target Link-Layer Address option of mac, and its checksum. mdlayher/ndp
// builds the ICMPv6 message.
func NAFrame(mac net.HardwareAddr, vip netip.Addr, router bool) ([]byte, error) {
	if len(mac) != 6 || !vip.Is6() || vip.Is4In6() || vip.Zone() != "" {
		return nil, fmt.Errorf("need an Ethernet MAC and an IPv6 address without zone, have %q and %s", mac, vip)
	}
	na := &ndp.NeighborAdvertisement{
		Router:        router,
		Override:      true,
		TargetAddress: vip,
		Options:       []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: mac}},
	}
	icmp, err := ndp.MarshalMessageChecksum(na, vip, AllNodes)
	if err != nil {
		return nil, err
	}
	ip := make([]byte, ipv6HeaderLen, ipv6HeaderLen+len(icmp))
	ip[0] = 6 << 4
	binary.BigEndian.PutUint16(ip[4:], uint16(len(icmp)))
	ip[6] = unix.IPPROTO_ICMPV6
	ip[7] = NAHopLimit
	src, dst := vip.As16(), AllNodes.As16()
	copy(ip[8:], src[:])
	copy(ip[24:], dst[:])
	f := &ethernet.Frame{
		Destination: allNodesMAC,
		Source:      mac,
		EtherType:   ethernet.EtherTypeIPv6,
		Payload:     append(ip, icmp...),
	}
	return f.MarshalBinary()
}

// fillNA copies template t (NAFrame's frame for the unspecified address) into
// dst with vip as source and target, and sets the ICMPv6 checksum again.
// vip appears twice in the checksummed data (the pseudo-header's source and
// the target), so the sum is the template's plus twice vip's words.
func fillNA(dst, t []byte, vip netip.Addr) {
	copy(dst, t)
	b := vip.As16()
	copy(dst[naSourceOffset:], b[:])
	copy(dst[naTargetOffset:], b[:])
	dst[naCsumOffset], dst[naCsumOffset+1] = 0, 0
	var sum uint32
	for i := naSourceOffset; i < naICMPOffset; i += 2 { // pseudo-header: source, destination
		sum += uint32(binary.BigEndian.Uint16(dst[i:]))
	}
	sum += naICMPLen + unix.IPPROTO_ICMPV6
	for i := naICMPOffset; i < naFrameLen; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(dst[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(dst[naCsumOffset:], ^uint16(sum))
}

// Forwarding reports whether the kernel forwards IPv6 on the interface
// (net.ipv6.conf.IFNAME.forwarding), which decides the Router flag.
func Forwarding(ifname string) (bool, error) {
	b, err := os.ReadFile("/proc/sys/net/ipv6/conf/" + ifname + "/forwarding")
	if err != nil {
		return false, fmt.Errorf("arp: IPv6 forwarding of %s: %w", ifname, err)
	}
	return strings.TrimSpace(string(b)) != "0", nil
}

// NAAnnouncer sends unsolicited neighbour advertisements for addresses on
// one interface, as Announcer sends gratuitous ARP: Reopen builds the frame
// for the interface's MAC once, and Announce writes each address into a
// copy and the copy straight to a packet socket, without allocating. The
// frame is written whole, so the VIP need not be on the interface yet nor
// have finished (or even started) duplicate address detection.
type NAAnnouncer struct {
	fs       frameSocket // to 33:33:00:00:00:01, IPv6
	router   bool
	mac      net.HardwareAddr // the interface's, at the last Reopen
	template []byte           // the frame for the unspecified address
}

// NewNAAnnouncer opens a packet socket on the named interface. Like
// Announcer's it is bound to no protocol and receives nothing.
func NewNAAnnouncer(ifname string) (*NAAnnouncer, error) {
	a := &NAAnnouncer{fs: frameSocket{ifname: ifname}}
	if err := a.Reopen(); err != nil {
		return nil, err
	}
	return a, nil
}

// Reopen closes the socket and opens a new one, building the frame again
// for the interface's MAC and its IPv6 forwarding setting (the Router flag)
// as they are now; the runtime calls it after link up, as for Announcer.
func (a *NAAnnouncer) Reopen() error {
	ifi, err := net.InterfaceByName(a.fs.ifname)
	if err != nil {
		return fmt.Errorf("arp: interface %s: %w", a.fs.ifname, err)
	}
	router, err := Forwarding(a.fs.ifname)
	if err != nil {
		return err
	}
	t, err := NAFrame(ifi.HardwareAddr, netip.IPv6Unspecified(), router)
	if err != nil {
		return fmt.Errorf("arp: neighbour advertisement for %s: %w", a.fs.ifname, err)
	}
	if err := a.fs.open(ifi, unix.ETH_P_IPV6, allNodesMAC, len(t)); err != nil {
		return err
	}
	a.template, a.router = t, router
	a.mac = slices.Clone(ifi.HardwareAddr)
	return nil
}

// Router reports whether the advertisements carry the Router flag, as read
// at the last Reopen.
func (a *NAAnnouncer) Router() bool { return a.router }

// Close releases the socket.
func (a *NAAnnouncer) Close() error { return a.fs.close() }

// Announce sends one unsolicited neighbour advertisement for every address,
// which must be IPv6, and returns how many went out.
func (a *NAAnnouncer) Announce(addrs []netip.Addr) (int, error) {
	if a.fs.closed() {
		return 0, fmt.Errorf("arp: neighbour advertiser on %s is closed", a.fs.ifname)
	}
	return a.announce(a.template, nil, addrs)
}

// AnnounceAt sends, for every address, the unsolicited neighbour
// advertisement that Announce sends, but naming mac in the Target
// Link-Layer Address option: the frame leaves from this interface's own
// MAC (so that no switch learns mac on this port) and tells the neighbours
// to send to mac. Override and Router are as Announce sets them (Router is
// this node's forwarding setting: the other router's is not known, and a
// pair forwards alike). vipd uses it as it yields to a master that kept
// the addresses through a partition and does not announce them (see
// vrrp's heal.go). It builds the frame anew each time: it is rare.
func (a *NAAnnouncer) AnnounceAt(mac net.HardwareAddr, addrs []netip.Addr) (int, error) {
	if a.fs.closed() {
		return 0, fmt.Errorf("arp: neighbour advertiser on %s is closed", a.fs.ifname)
	}
	t, err := NAFrame(mac, netip.IPv6Unspecified(), a.router)
	if err != nil {
		return 0, fmt.Errorf("arp: advertise at %s on %s: %w", mac, a.fs.ifname, err)
	}
	copy(t[6:12], a.mac) // the Ethernet source; not in the checksum
	return a.announce(t, mac, addrs)
}

// announce sends template filled in with each of addrs; at names the MAC
// it announces in errors (nil: the interface's).
func (a *NAAnnouncer) announce(template []byte, at net.HardwareAddr, addrs []netip.Addr) (int, error) {
	where := ""
	if at != nil {
		where = " at " + at.String()
	}
	sent := 0
	for _, ip := range addrs {
		if !ip.Is6() || ip.Is4In6() {
			return sent, fmt.Errorf("arp: advertise %s on %s: not an IPv6 address", ip, a.fs.ifname)
		}
		fillNA(a.fs.frame, template, ip)
		if err := a.fs.send(); err != nil {
			return sent, fmt.Errorf("arp: advertise %s%s on %s: %w", ip, where, a.fs.ifname, err)
		}
		sent++
	}
	return sent, nil
}
