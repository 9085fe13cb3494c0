package arp

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"golang.org/x/sys/unix"
)

// Announcer sends gratuitous ARP for addresses on one interface.
//
// A takeover waits on the first frame (clients move to this node as it
// arrives), so nothing is built per announcement: Reopen has mdlayher/arp
// and mdlayher/ethernet build the request and reply frames for this
// interface's MAC once, and Announce writes each address into a copy of
// them and the copy straight to the packet socket, without allocating.
type Announcer struct {
	fs        frameSocket // to the Ethernet broadcast address, ARP
	templates [2][]byte   // request and reply for 0.0.0.0 at the interface's MAC
}

// Where a gratuitous ARP frame carries the announced address: the sender
// and target protocol addresses, after the 14-byte Ethernet header and the
// ARP fields before them.
const (
	senderIPOffset = 14 + 8 + 6
	targetIPOffset = 14 + 8 + 6 + 4 + 6
)

// NewAnnouncer opens a packet socket on the named interface. The socket is
// bound to no protocol, so the kernel never queues received frames on it.
func NewAnnouncer(ifname string) (*Announcer, error) {
	a := &Announcer{fs: frameSocket{ifname: ifname}}
	if err := a.Reopen(); err != nil {
		return nil, err
	}
	return a, nil
}

// Reopen closes the socket and opens a new one. An interface that went down
// and came back up (or was deleted and recreated) may leave the old socket
// stale, so the runtime reopens after link up. The frames are built again
// for the interface's MAC as it is now.
func (a *Announcer) Reopen() error {
	ifi, err := net.InterfaceByName(a.fs.ifname)
	if err != nil {
		return fmt.Errorf("arp: interface %s: %w", a.fs.ifname, err)
	}
	var templates [2][]byte
	frames, err := Frames(ifi.HardwareAddr, netip.IPv4Unspecified())
	if err != nil {
		return fmt.Errorf("arp: interface %s: %w", a.fs.ifname, err)
	}
	for i, f := range frames {
		if templates[i], err = marshalFrame(f); err != nil {
			return fmt.Errorf("arp: frame for %s: %w", a.fs.ifname, err)
		}
	}
	if err := a.fs.open(ifi, unix.ETH_P_ARP, ethernet.Broadcast, len(templates[0])); err != nil {
		return err
	}
	a.templates = templates
	return nil
}

// Close releases the socket.
func (a *Announcer) Close() error { return a.fs.close() }

// Announce sends, for every address, a gratuitous ARP request (which Linux
// and most stacks apply to an existing entry at once) and a gratuitous reply
// (for stacks that only learn from replies), both to the broadcast address.
// It returns how many frames went out.
func (a *Announcer) Announce(addrs []netip.Addr) (int, error) {
	return a.announce(a.templates, nil, addrs)
}

// announce sends templates filled in with each of addrs; at names the MAC
// they announce in errors (nil: the interface's).
func (a *Announcer) announce(templates [2][]byte, at net.HardwareAddr, addrs []netip.Addr) (int, error) {
	if a.fs.closed() {
		return 0, fmt.Errorf("arp: announcer on %s is closed", a.fs.ifname)
	}
	where := ""
	if at != nil {
		where = " at " + at.String()
	}
	sent := 0
	for _, ip := range addrs {
		if !ip.Is4() {
			return sent, fmt.Errorf("arp: announce %s on %s: not an IPv4 address", ip, a.fs.ifname)
		}
		for _, t := range templates {
			fill(a.fs.frame, t, ip)
			if err := a.fs.send(); err != nil {
				return sent, fmt.Errorf("arp: announce %s%s on %s: %w", ip, where, a.fs.ifname, err)
			}
			sent++
		}
	}
	return sent, nil
}

// fill copies template t into dst with ip as sender and target address.
func fill(dst, t []byte, ip netip.Addr) {
	copy(dst, t)
	b := ip.As4()
	copy(dst[senderIPOffset:], b[:])
	copy(dst[targetIPOffset:], b[:])
}

// marshalFrame is the Ethernet frame that carries p to the broadcast
// address, as mdlayher/arp's Client.WriteTo builds it.
func marshalFrame(p *arp.Packet) ([]byte, error) { return marshalFrameFrom(p, p.SenderHardwareAddr) }

// marshalFrameFrom is marshalFrame with Ethernet source src.
func marshalFrameFrom(p *arp.Packet, src net.HardwareAddr) ([]byte, error) {
	pb, err := p.MarshalBinary()
	if err != nil {
		return nil, err
	}
	f := &ethernet.Frame{
		Destination: ethernet.Broadcast,
		Source:      src,
		EtherType:   ethernet.EtherTypeARP,
		Payload:     pb,
	}
	return f.MarshalBinary()
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

// AnnounceAt sends, for every address, the gratuitous request and reply
// that Announce sends, but naming mac as the address's hardware address:
// the frames leave from this interface's own MAC (so that no switch learns
// mac on this port) and tell the clients to send to mac. vipd uses it as
// it yields to a master that kept the addresses through a partition and
// does not announce them (see vrrp's heal.go). It builds the frames anew
// each time: it is rare.
func (a *Announcer) AnnounceAt(mac net.HardwareAddr, addrs []netip.Addr) (int, error) {
	if a.fs.closed() {
		return 0, fmt.Errorf("arp: announcer on %s is closed", a.fs.ifname)
	}
	frames, err := Frames(mac, netip.IPv4Unspecified())
	if err != nil {
		return 0, fmt.Errorf("arp: announce at %s on %s: %w", mac, a.fs.ifname, err)
	}
	var templates [2][]byte
	for i, p := range frames {
		if templates[i], err = marshalFrameFrom(p, a.fs.ifi.HardwareAddr); err != nil {
			return 0, fmt.Errorf("arp: announce at %s on %s: %w", mac, a.fs.ifname, err)
		}
	}
	return a.announce(templates, mac, addrs)
}
