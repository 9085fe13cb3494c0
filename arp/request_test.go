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

func TestRequestFrame(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0, 0x5e, 0x10, 0x20, 0x30}
	vip, gw := netip.MustParseAddr("198.18.0.100"), netip.MustParseAddr("198.18.0.1")
	b, err := RequestFrame(mac, vip, gw)
	if err != nil {
		t.Fatal(err)
	}
	var f ethernet.Frame
	if err := f.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	var p arp.Packet
	if err := p.UnmarshalBinary(f.Payload); err != nil {
		t.Fatal(err)
	}
	if f.Destination.String() != ethernet.Broadcast.String() || f.Source.String() != mac.String() || f.EtherType != ethernet.EtherTypeARP ||
		p.Operation != arp.OperationRequest || p.SenderIP != vip || p.TargetIP != gw ||
		p.SenderHardwareAddr.String() != mac.String() || p.TargetHardwareAddr.String() != "00:00:00:00:00:00" {
		t.Errorf("frame %v -> %v %v: %+v; want a broadcast request for %s from %s at %s", f.Source, f.Destination, f.EtherType, p, gw, vip, mac)
	}
	if _, err := RequestFrame(mac, netip.MustParseAddr("2001:db8::1"), gw); err == nil {
		t.Error("IPv6 sender accepted")
	}
	if _, err := RequestFrame(net.HardwareAddr{1}, vip, gw); err == nil {
		t.Error("short MAC accepted")
	}
}

// Request on one end of a veth pair: the other end receives one targeted
// request per sender, from the MAC given.
func TestRequest(t *testing.T) {
	netnstest.Run(t, func(netns.NsHandle) {
		netnstest.Veth(t, "arq0", "arq1")
		peer, err := net.InterfaceByName("arq1")
		if err != nil {
			t.Fatal(err)
		}
		rx, err := packet.Listen(peer, packet.Raw, unix.ETH_P_ARP, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer rx.Close()
		mac := net.HardwareAddr{0x02, 0, 0x5e, 0, 0, 0x43}
		senders := []netip.Addr{netip.MustParseAddr("198.18.0.100"), netip.MustParseAddr("198.18.0.101")}
		gw := netip.MustParseAddr("198.18.0.1")
		n, err := Request("arq0", mac, senders, gw)
		if err != nil || n != 2 {
			t.Fatalf("Request = %d, %v; want 2 frames", n, err)
		}
		buf := make([]byte, 1500)
		for _, s := range senders {
			if err := rx.SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
				t.Fatal(err)
			}
			m, _, err := rx.ReadFrom(buf)
			if err != nil {
				t.Fatalf("waiting for the request from %s: %v", s, err)
			}
			var f ethernet.Frame
			if err := f.UnmarshalBinary(buf[:m]); err != nil {
				t.Fatal(err)
			}
			var p arp.Packet
			if err := p.UnmarshalBinary(f.Payload); err != nil {
				t.Fatal(err)
			}
			if p.Operation != arp.OperationRequest || p.SenderIP != s || p.TargetIP != gw || p.SenderHardwareAddr.String() != mac.String() {
				t.Errorf("got %+v, want a request for %s from %s at %s", p, gw, s, mac)
			}
		}
		if _, err := Request("arq-missing", mac, senders, gw); err == nil {
			t.Error("Request on a missing interface succeeded")
		}
	})
}
