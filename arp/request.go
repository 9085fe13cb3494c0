package arp

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/packet"
)

// RequestFrame is the Ethernet frame of a targeted ARP request: "who has
// target? tell sender at mac", broadcast. The neighbour that owns target
// learns sender's address from it (RFC 826: the target of a request
// records its sender), even one that ignores gratuitous ARP, whose sender
// and target are the same address.
func RequestFrame(mac net.HardwareAddr, sender, target netip.Addr) ([]byte, error) {
	if len(mac) != 6 || !sender.Is4() || !target.Is4() {
		return nil, fmt.Errorf("need an Ethernet MAC and IPv4 addresses, have %q, %s and %s", mac, sender, target)
	}
	p, err := arp.NewPacket(arp.OperationRequest, mac, sender, net.HardwareAddr{0, 0, 0, 0, 0, 0}, target)
	if err != nil {
		return nil, err
	}
	return marshalFrame(p)
}

// Request sends, on interface ifname, a targeted ARP request to target
// for each address in senders, from mac: the way a new master makes an
// upstream that ignores gratuitous ARP learn that the VIPs moved. It opens
// a packet socket bound to no protocol (it receives nothing), sends and
// closes it; it returns how many frames went out.
func Request(ifname string, mac net.HardwareAddr, senders []netip.Addr, target netip.Addr) (int, error) {
	frames := make([][]byte, 0, len(senders))
	for _, s := range senders {
		f, err := RequestFrame(mac, s, target)
		if err != nil {
			return 0, fmt.Errorf("arp: request %s from %s on %s: %w", target, s, ifname, err)
		}
		frames = append(frames, f)
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return 0, fmt.Errorf("arp: interface %s: %w", ifname, err)
	}
	p, err := packet.Listen(ifi, packet.Raw, 0, nil)
	if err != nil {
		return 0, fmt.Errorf("arp: open packet socket on %s: %w", ifname, err)
	}
	defer p.Close()
	to := &packet.Addr{HardwareAddr: ethernet.Broadcast}
	sent := 0
	for i, f := range frames {
		if _, err := p.WriteTo(f, to); err != nil {
			return sent, fmt.Errorf("arp: request %s from %s on %s: %w", target, senders[i], ifname, err)
		}
		sent++
	}
	return sent, nil
}
