package arp

import (
	"bytes"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/packet"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/vipd/vipd/e2e/netnstest"
)

func TestFrames(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0, 0x5e, 0x10, 0x20, 0x30}
	ip := netip.MustParseAddr("198.18.0.100")
	frames, err := Frames(mac, ip)
	if err != nil {
		t.Fatal(err)
	}
	for i, op := range []arp.Operation{arp.OperationRequest, arp.OperationReply} {
		p := frames[i]
		b, err := p.MarshalBinary()
		if err != nil {
			t.Fatalf("%v: marshal: %v", op, err)
		}
		var got arp.Packet
		if err := got.UnmarshalBinary(b); err != nil {
			t.Fatalf("%v: unmarshal: %v", op, err)
		}
		if got.Operation != op || got.SenderIP != ip || got.TargetIP != ip ||
			got.SenderHardwareAddr.String() != mac.String() ||
			got.TargetHardwareAddr.String() != ethernet.Broadcast.String() {
			t.Errorf("frame %d: %+v, want %v with sender=target=%s from %s", i, got, op, ip, mac)
		}
	}
}

func TestFramesRejectsNonIPv4(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0, 0x5e, 0x10, 0x20, 0x30}
	if _, err := Frames(mac, netip.MustParseAddr("2001:db8::1")); err == nil {
		t.Error("IPv6 address accepted")
	}
	if _, err := Frames(net.HardwareAddr{1, 2}, netip.MustParseAddr("198.18.0.100")); err == nil {
		t.Error("short MAC accepted")
	}
}

// The frames Announce writes are byte for byte what mdlayher/arp's client
// sends for the same address: the template with the address filled in.
func TestFill(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0, 0x5e, 0x10, 0x20, 0x30}
	tmpl, err := Frames(mac, netip.IPv4Unspecified())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"198.18.0.100", "10.0.0.1", "255.255.255.254"} {
		ip := netip.MustParseAddr(s)
		want, err := Frames(mac, ip)
		if err != nil {
			t.Fatal(err)
		}
		for i := range want {
			tb, err := marshalFrame(tmpl[i])
			if err != nil {
				t.Fatal(err)
			}
			wb, err := marshalFrame(want[i])
			if err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len(tb))
			fill(got, tb, ip)
			if !bytes.Equal(got, wb) {
				t.Errorf("%s frame %d:\n got % x\nwant % x", ip, i, got, wb)
			}
		}
	}
}

// Announce on one end of a veth pair; the other end receives, for each
// address, the request and the reply, to the broadcast address, from the
// interface's MAC, and a burst allocates nothing.
func TestAnnounce(t *testing.T) {
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

		ips := []netip.Addr{netip.MustParseAddr("198.18.0.100"), netip.MustParseAddr("198.18.0.101")}
		n, err := a.Announce(ips)
		if err != nil || n != 4 {
			t.Fatalf("Announce = %d, %v; want 4 frames", n, err)
		}
		buf := make([]byte, 1500)
		for _, ip := range ips {
			for _, op := range []arp.Operation{arp.OperationRequest, arp.OperationReply} {
				if err := rx.SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
					t.Fatal(err)
				}
				m, _, err := rx.ReadFrom(buf)
				if err != nil {
					t.Fatalf("waiting for the %v for %s: %v", op, ip, err)
				}
				var f ethernet.Frame
				if err := f.UnmarshalBinary(buf[:m]); err != nil {
					t.Fatal(err)
				}
				var p arp.Packet
				if err := p.UnmarshalBinary(f.Payload); err != nil {
					t.Fatal(err)
				}
				if f.Destination.String() != ethernet.Broadcast.String() || f.Source.String() != a.fs.ifi.HardwareAddr.String() ||
					p.Operation != op || p.SenderIP != ip || p.TargetIP != ip || p.SenderHardwareAddr.String() != a.fs.ifi.HardwareAddr.String() {
					t.Errorf("got %v from %v to %v: %+v; want the %v for %s from %v", f.EtherType, f.Source, f.Destination, p, op, ip, a.fs.ifi.HardwareAddr)
				}
			}
		}

		if allocs := testing.AllocsPerRun(100, func() {
			if _, err := a.Announce(ips); err != nil {
				t.Fatal(err)
			}
		}); allocs != 0 {
			t.Errorf("Announce allocated %v times per burst, want 0", allocs)
		}

		// A new MAC is picked up by Reopen.
		mac := net.HardwareAddr{0x02, 0, 0x5e, 0, 0, 0x42}
		if err := netlink.LinkSetHardwareAddr(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "arp0"}}, mac); err != nil {
			t.Fatal(err)
		}
		if err := a.Reopen(); err != nil {
			t.Fatal(err)
		}
		// A fresh receiver: the bursts above may have filled the old one.
		rx.Close()
		if rx, err = packet.Listen(peer, packet.Raw, unix.ETH_P_ARP, nil); err != nil {
			t.Fatal(err)
		}
		defer rx.Close()
		if _, err := a.Announce(ips[:1]); err != nil {
			t.Fatal(err)
		}
		for {
			if err := rx.SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
				t.Fatal(err)
			}
			m, _, err := rx.ReadFrom(buf)
			if err != nil {
				t.Fatalf("waiting for a frame from the new MAC: %v", err)
			}
			var f ethernet.Frame
			if err := f.UnmarshalBinary(buf[:m]); err == nil && f.Source.String() == mac.String() {
				break
			}
		}

		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Announce(ips); err == nil || !strings.Contains(err.Error(), "closed") {
			t.Errorf("Announce after Close: %v, want an error saying it is closed", err)
		}
	})
}

// BenchmarkAnnounce is the first burst of a takeover for one VIP (a
// request and a reply) on a veth in a fresh namespace (root); ns/op
// includes the kernel's delivery to the peer end.
func BenchmarkAnnounce(b *testing.B) {
	netnstest.Run(b, func(netns.NsHandle) {
		netnstest.Veth(b, "arp0", "arp1")
		a, err := NewAnnouncer("arp0")
		if err != nil {
			b.Fatal(err)
		}
		defer a.Close()
		ips := []netip.Addr{netip.MustParseAddr("198.18.0.100")}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := a.Announce(ips); err != nil {
				b.Fatal(err)
			}
		}
	})
}
