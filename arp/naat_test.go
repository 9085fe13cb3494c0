package arp

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/vipd/vipd/e2e/netnstest"
)

// NAAnnouncer.AnnounceAt names another MAC in the Target Link-Layer
// Address option but sends the frame from the interface's own MAC, with a
// good checksum and Override; a neighbour in another namespace that knew
// the VIP at this interface's MAC moves its entry to the named MAC.
func TestNAAnnounceAt(t *testing.T) {
	netnstest.Run(t, func(netns.NsHandle) {
		netnstest.Veth(t, "nat0", "nat1")
		here, err := netns.Get()
		if err != nil {
			t.Fatal(err)
		}
		defer here.Close()
		peerNS, err := netns.New() // switches this (locked) thread
		if err != nil {
			t.Fatal(err)
		}
		defer peerNS.Close()
		if err := netns.Set(here); err != nil {
			t.Fatal(err)
		}
		peer, err := netlink.NewHandleAt(peerNS)
		if err != nil {
			t.Fatal(err)
		}
		defer peer.Close()
		nat1, err := netlink.LinkByName("nat1")
		if err != nil {
			t.Fatal(err)
		}
		if err := netlink.LinkSetNsFd(nat1, int(peerNS)); err != nil {
			t.Fatal(err)
		}
		if nat1, err = peer.LinkByName("nat1"); err != nil {
			t.Fatal(err)
		}
		if err := peer.LinkSetUp(nat1); err != nil {
			t.Fatal(err)
		}
		addr, _ := netlink.ParseAddr("fd00:18::2/64")
		addr.Flags = unix.IFA_F_NODAD
		if err := peer.AddrAdd(nat1, addr); err != nil {
			t.Fatal(err)
		}
		// A capture on the peer's end, opened in its namespace.
		if err := netns.Set(peerNS); err != nil {
			t.Fatal(err)
		}
		ifi, err := net.InterfaceByName("nat1")
		if err != nil {
			netns.Set(here)
			t.Fatal(err)
		}
		rx, err := packet.Listen(ifi, packet.Raw, unix.ETH_P_IPV6, nil)
		if err := netns.Set(here); err != nil {
			t.Fatal(err)
		}
		if err != nil {
			t.Fatal(err)
		}
		defer rx.Close()

		nat0, err := net.InterfaceByName("nat0")
		if err != nil {
			t.Fatal(err)
		}
		// The client knows the VIP at this (the yielding) node's MAC.
		if err := peer.NeighAdd(&netlink.Neigh{LinkIndex: nat1.Attrs().Index, Family: unix.AF_INET6,
			State: netlink.NUD_REACHABLE, IP: naVIP.AsSlice(), HardwareAddr: nat0.HardwareAddr}); err != nil {
			t.Fatal(err)
		}
		a, err := NewNAAnnouncer("nat0")
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		at := net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x02, 51}

		// Sent again while waiting: the first may go out before the moved
		// peer end has its carrier.
		var last netlink.Neigh
		for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if n, err := a.AnnounceAt(at, []netip.Addr{naVIP}); n != 1 || err != nil {
				t.Fatalf("AnnounceAt = %d, %v; want 1 frame", n, err)
			}
			ns, err := peer.NeighList(nat1.Attrs().Index, unix.AF_INET6)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range ns {
				if n.IP.Equal(naVIP.AsSlice()) {
					last = n
				}
			}
			if last.HardwareAddr.String() == at.String() {
				break
			}
		}
		if last.HardwareAddr.String() != at.String() || last.State != netlink.NUD_STALE {
			t.Fatalf("peer's entry for %s: %v state %#x; want %v, STALE", naVIP, last.HardwareAddr, last.State, at)
		}

		buf := make([]byte, 1500)
		found := false
		for !found {
			if err := rx.SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
				t.Fatal(err)
			}
			m, _, err := rx.ReadFrom(buf)
			if err != nil {
				t.Fatalf("waiting for the advertisement: %v", err)
			}
			var f ethernet.Frame
			if err := f.UnmarshalBinary(buf[:m]); err != nil {
				t.Fatal(err)
			}
			ip := f.Payload
			if len(ip) < 40 || ip[6] != unix.IPPROTO_ICMPV6 || ip[40] != 136 {
				continue // the peer's own solicitations and reports
			}
			found = true
			src, dst := netip.AddrFrom16([16]byte(ip[8:24])), netip.AddrFrom16([16]byte(ip[24:40]))
			if f.Source.String() != nat0.HardwareAddr.String() || f.Destination.String() != "33:33:00:00:00:01" {
				t.Errorf("frame %v -> %v, want from the interface's own %v to 33:33:00:00:00:01", f.Source, f.Destination, nat0.HardwareAddr)
			}
			if src != naVIP || dst != AllNodes || ip[7] != NAHopLimit {
				t.Errorf("IPv6 %s -> %s hop limit %d, want %s -> %s, 255", src, dst, ip[7], naVIP, AllNodes)
			}
			if s := icmp6Sum(src, dst, ip[40:]); s != 0xffff {
				t.Errorf("ICMPv6 checksum does not verify (sum %04x)", s)
			}
			msg, err := ndp.ParseMessage(ip[40:])
			if err != nil {
				t.Fatal(err)
			}
			na, ok := msg.(*ndp.NeighborAdvertisement)
			if !ok || !na.Override || na.Solicited || na.Router || na.TargetAddress != naVIP || len(na.Options) != 1 {
				t.Fatalf("got %+v, want an unsolicited advertisement of %s with Override", msg, naVIP)
			}
			if lla, ok := na.Options[0].(*ndp.LinkLayerAddress); !ok || lla.Direction != ndp.Target || lla.Addr.String() != at.String() {
				t.Errorf("option %+v, want the target link-layer address %v", na.Options[0], at)
			}
		}

		// Announce still names the interface's own MAC.
		if _, err := a.Announce([]netip.Addr{naVIP}); err != nil {
			t.Fatal(err)
		}
		b, err := NAFrame(nat0.HardwareAddr, naVIP, false)
		if err != nil {
			t.Fatal(err)
		}
		if string(a.fs.frame) != string(b) {
			t.Errorf("Announce after AnnounceAt sent % x, want % x", a.fs.frame, b)
		}
		for _, bad := range []struct {
			mac net.HardwareAddr
			ip  netip.Addr
		}{{at, netip.MustParseAddr("198.18.0.1")}, {net.HardwareAddr{1, 2, 3}, naVIP}} {
			if _, err := a.AnnounceAt(bad.mac, []netip.Addr{bad.ip}); err == nil {
				t.Errorf("AnnounceAt(%v, %s) sent", bad.mac, bad.ip)
			}
		}
	})
}
