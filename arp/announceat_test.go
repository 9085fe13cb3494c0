package arp

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/packet"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/vipd/vipd/e2e/netnstest"
)

// AnnounceAt names another MAC in the ARP packets but sends the frames
// from the interface's own.
func TestAnnounceAt(t *testing.T) {
	netnstest.Run(t, func(netns.NsHandle) {
		netnstest.Veth(t, "arp0", "arp1")
		a, err := NewAnnouncer("arp0")
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		peer, err := net.InterfaceByName("arp1")
		if err != nil {
			t.Fatal(err)
		}
		rx, err := packet.Listen(peer, packet.Raw, unix.ETH_P_ARP, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer rx.Close()
		at := net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x01, 51}
		ip := netip.MustParseAddr("198.18.0.100")
		if n, err := a.AnnounceAt(at, []netip.Addr{ip}); err != nil || n != 2 {
			t.Fatalf("AnnounceAt = %d, %v; want 2 frames", n, err)
		}
		buf := make([]byte, 1500)
		for _, op := range []arp.Operation{arp.OperationRequest, arp.OperationReply} {
			if err := rx.SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
				t.Fatal(err)
			}
			m, _, err := rx.ReadFrom(buf)
			if err != nil {
				t.Fatalf("waiting for the %v: %v", op, err)
			}
			var f ethernet.Frame
			if err := f.UnmarshalBinary(buf[:m]); err != nil {
				t.Fatal(err)
			}
			var p arp.Packet
			if err := p.UnmarshalBinary(f.Payload); err != nil {
				t.Fatal(err)
			}
			if f.Source.String() != a.fs.ifi.HardwareAddr.String() || p.Operation != op || p.SenderIP != ip || p.TargetIP != ip ||
				p.SenderHardwareAddr.String() != at.String() {
				t.Errorf("got a frame from %v: %+v; want the %v for %s at %v from %v", f.Source, p, op, ip, at, a.fs.ifi.HardwareAddr)
			}
		}
		// Announce still names the interface's own MAC.
		if _, err := a.Announce([]netip.Addr{ip}); err != nil {
			t.Fatal(err)
		}
		if err := rx.SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
			t.Fatal(err)
		}
		m, _, err := rx.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		var f ethernet.Frame
		var p arp.Packet
		if err := f.UnmarshalBinary(buf[:m]); err != nil {
			t.Fatal(err)
		}
		if err := p.UnmarshalBinary(f.Payload); err != nil {
			t.Fatal(err)
		}
		if p.SenderHardwareAddr.String() != a.fs.ifi.HardwareAddr.String() {
			t.Errorf("Announce after AnnounceAt names %v, want the interface's %v", p.SenderHardwareAddr, a.fs.ifi.HardwareAddr)
		}
	})
}
