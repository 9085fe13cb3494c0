package vrrp

import (
	"context"
	"net"
	"net/netip"
	"time"

	"github.com/vipd/vipd/vip"
)

// The dataplane is the host as the runtime sees it: links that adverts go
// out on and gratuitous ARP is sent from, and the addresses on them. The
// protocol code reaches the host only through it, so the same Node runs on
// the real one (hostDataplane: packet and raw sockets, netlink) and, in
// tests, on an in-memory segment shared by several Nodes, without root.

// Family is an address family.
type Family uint8

// The address families. Only IPv4 is wired up today; an instance and each
// of its addresses name their family so that IPv6 only adds code.
const (
	FamilyIPv4 Family = 4
	FamilyIPv6 Family = 6
	// FamilyBoth is a link that carries adverts of both families: IPv4
	// and IPv6 instances on one interface.
	FamilyBoth Family = FamilyIPv4 + FamilyIPv6
)

func (f Family) String() string {
	switch f {
	case FamilyIPv4:
		return "ipv4"
	case FamilyIPv6:
		return "ipv6"
	case FamilyBoth:
		return "ipv4+ipv6"
	}
	return "unknown"
}

// has reports whether a link of family f carries adverts of family g.
func (f Family) has(g Family) bool { return f == g || f == FamilyBoth }

// orIPv4 is f, or IPv4 for the zero Family.
func (f Family) orIPv4() Family {
	if f == 0 {
		return FamilyIPv4
	}
	return f
}

// with is f and g together.
func (f Family) with(g Family) Family {
	switch {
	case f == 0 || f == g:
		return g
	case g == 0:
		return f
	}
	return FamilyBoth
}

// familyOf is the family of address a.
func familyOf(a netip.Addr) Family {
	if a.Unmap().Is4() {
		return FamilyIPv4
	}
	return FamilyIPv6
}

// LinkInfo is what the dataplane reports of a link: its identity, whether
// it has carrier, and its hardware address.
type LinkInfo struct {
	Name  string
	Index int
	Up    bool // administratively up and with carrier
	MAC   net.HardwareAddr
}

// Dataplane is the host: it looks links up, opens them for adverts and
// announcements, and adds, removes and lists addresses. Only the
// reconciler (reconcile.go) calls AddAddr and RemoveAddr.
type Dataplane interface {
	// LookupLink reports the link called name.
	LookupLink(name string) (LinkInfo, error)
	// OpenLink opens link l for adverts of family fam (FamilyBoth: of
	// both) and gratuitous announcements.
	OpenLink(l LinkInfo, fam Family) (Link, error)
	// OpenAnnouncer opens link l for gratuitous announcements only: a link
	// that carries VIPs of instances advertising on another one. Its
	// Queue fails and Flush sends nothing.
	OpenAnnouncer(l LinkInfo, fam Family) (Link, error)
	// AddAddr puts p on the link with index, marked as vipd's, with the
	// address label label ("" for the kernel's default); it refuses
	// (vip.ErrNotOurs) to take over an address vipd did not add.
	AddAddr(index int, p netip.Prefix, label string) error
	// RemoveAddr takes p off the link if vipd added it.
	RemoveAddr(index int, p netip.Prefix) error
	// ListAddrs lists the link's addresses, each marked whether vipd owns it.
	ListAddrs(index int) ([]vip.Addr, error)
	// Watch sends address and link changes until ctx is done, and returns
	// once every goroutine it started has finished. A vip.Change with
	// Resync set means that changes may have been lost.
	Watch(ctx context.Context, addrs chan<- vip.Change, links chan<- LinkInfo)
	// routeDataplane installs routes and rules (routes.go).
	routeDataplane
	// vmacDataplane makes the virtual MAC's macvlans and sets sysctls
	// (vmac.go).
	vmacDataplane
	// Close releases the dataplane.
	Close()
}

// Link is one link opened for one address family: the adverts queued by
// the loop and sent in one go by Flush, and gratuitous announcements.
// Receiving is the receiver's part (receiver).
type Link interface {
	// Queue adds an advert from src to dst; the message is copied. A
	// multicast advert's Ethernet source is mac (an instance's virtual
	// MAC), or the link's address if mac is nil; a unicast advert leaves
	// from the link's address.
	Queue(msg []byte, src, dst netip.Addr, mac net.HardwareAddr) error
	// Pending reports whether adverts wait for Flush.
	Pending() bool
	// Flush sends the queued adverts.
	Flush() error
	// Announce sends a gratuitous announcement for each address, returning
	// how many frames went out.
	Announce(addrs []netip.Addr) (int, error)
	// AnnounceAt is Announce naming mac, another router's, as the
	// addresses' hardware address (gratuitous ARP for IPv4 addresses,
	// unsolicited neighbour advertisements for IPv6 ones); the frames
	// still leave from the link's own (heal.go).
	AnnounceAt(mac net.HardwareAddr, addrs []netip.Addr) (int, error)
	// SetHardwareAddr makes adverts and announcements name mac, the link's
	// hardware address now.
	SetHardwareAddr(mac net.HardwareAddr) error
	// Close closes the link's sockets.
	Close()
}

// receiver brings received datagrams to the loop. It is the seam between
// the protocol code and the receive path, so that another receive path
// (fewer thread wake-ups per advert) replaces hostReceiver without touching
// the protocol code.
type receiver interface {
	// attach starts receiving on ifc's link, opened (again).
	attach(n *Node, ifc *iface)
	// batches is where the loop waits for datagrams; nil for none.
	batches() <-chan rxBatch
	// drain hands the loop, at once, every datagram that has reached the
	// host by now: a backup calls it before it takes over, so that an
	// advert that came before its deadline counts.
	drain(n *Node)
	// holdBack keeps in the kernel, until takeHeld, the datagrams on
	// ifc's link that repeat one of ads byte for byte; the others reach
	// the loop as before. Empty: none.
	holdBack(ifc *iface, ads []heldAdvert) error
	// takeHeld hands the loop the datagrams held back so far, in arrival
	// order, at their arrival times.
	takeHeld(n *Node)
}

// clock is the loop's time: time.Now on the host, a value in tests.
type clock interface {
	Now() time.Time
	// SpinUntil returns at t or just after, waiting on the CPU (the
	// host's clock) or at once (a simulated one); it returns the time
	// then.
	SpinUntil(t time.Time) time.Time
}

// hostClock is the host's clock.
type hostClock struct{}

func (hostClock) Now() time.Time { return time.Now() }

func (hostClock) SpinUntil(t time.Time) time.Time {
	now := time.Now()
	for now.Before(t) {
		now = time.Now()
	}
	return now
}

// now is the loop's current time.
func (n *Node) now() time.Time {
	if n.clk == nil {
		return time.Now()
	}
	return n.clk.Now()
}
