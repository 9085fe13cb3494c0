package arp

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/packet"
)

// Announcer sends gratuitous ARP for addresses on one interface.
type Announcer struct {
	ifname string
	ifi    *net.Interface
	c      *arp.Client
}

// NewAnnouncer opens a packet socket on the named interface. The socket is
// bound to no protocol, so the kernel never queues received frames on it.
func NewAnnouncer(ifname string) (*Announcer, error) {
	a := &Announcer{ifname: ifname}
	if err := a.Reopen(); err != nil {
		return nil, err
	}
	return a, nil
}

// Reopen closes the socket and opens a new one. An interface that went down
// and came back up (or was deleted and recreated) may leave the old socket
// stale, so the runtime reopens after link up.
func (a *Announcer) Reopen() error {
	ifi, err := net.InterfaceByName(a.ifname)
	if err != nil {
		return fmt.Errorf("arp: interface %s: %w", a.ifname, err)
	}
	p, err := packet.Listen(ifi, packet.Raw, 0, nil)
	if err != nil {
		return fmt.Errorf("arp: open packet socket on %s: %w", a.ifname, err)
	}
	c, err := arp.New(ifi, p)
	if err != nil {
		p.Close()
		return fmt.Errorf("arp: client on %s: %w", a.ifname, err)
	}
	if a.c != nil {
		a.c.Close()
	}
	a.ifi, a.c = ifi, c
	return nil
}

// Close releases the socket.
func (a *Announcer) Close() error {
	if a.c == nil {
		return nil
	}
	err := a.c.Close()
	a.c = nil
	return err
}

// Announce sends, for every address, a gratuitous ARP request (which Linux
// and most stacks apply to an existing entry at once) and a gratuitous reply
// (for stacks that only learn from replies), both to the broadcast address.
// It returns how many frames went out.
func (a *Announcer) Announce(addrs []netip.Addr) (int, error) {
	if a.c == nil {
		return 0, fmt.Errorf("arp: announcer on %s is closed", a.ifname)
	}
	sent := 0
	for _, ip := range addrs {
		frames, err := Frames(a.ifi.HardwareAddr, ip)
		if err != nil {
			return sent, fmt.Errorf("arp: announce %s on %s: %w", ip, a.ifname, err)
		}
		for _, f := range frames {
			if err := a.c.WriteTo(f, ethernet.Broadcast); err != nil {
				return sent, fmt.Errorf("arp: announce %s on %s: %w", ip, a.ifname, err)
			}
			sent++
		}
	}
	return sent, nil
}

// Frames returns the two gratuitous ARP packets that announce ip at mac: a
// request and a reply, each with sender and target address ip.
func Frames(mac net.HardwareAddr, ip netip.Addr) ([2]*arp.Packet, error) {
	if len(mac) != 6 || !ip.Is4() {
		return [2]*arp.Packet{}, fmt.Errorf("need an Ethernet MAC and an IPv4 address, have %q and %s", mac, ip)
	}
	req, err := arp.NewPacket(arp.OperationRequest, mac, ip, ethernet.Broadcast, ip)
	if err != nil {
		return [2]*arp.Packet{}, err
	}
	rep, err := arp.NewPacket(arp.OperationReply, mac, ip, ethernet.Broadcast, ip)
	if err != nil {
		return [2]*arp.Packet{}, err
	}
	return [2]*arp.Packet{req, rep}, nil
}
