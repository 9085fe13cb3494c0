package vrrp

import (
	"bytes"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/vipd/vipd/e2e/netnstest"
	"github.com/vipd/vipd/vip"
)

// veth6 makes a veth pair with IPv6 on and duplicate address detection
// off, and returns both ends and their link-local addresses.
func veth6(t *testing.T) (a, b *net.Interface, lla, llb netip.Addr) {
	t.Helper()
	for _, f := range []string{"all/accept_dad", "default/accept_dad", "all/disable_ipv6", "default/disable_ipv6"} {
		if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+f, []byte("0"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	netnstest.Veth(t, "v6a", "v6b")
	m, err := vip.NewManager()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ll := func(name string) (*net.Interface, netip.Addr) {
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			as, err := m.List(ifi.Index)
			if err != nil {
				t.Fatal(err)
			}
			if a, ok := vip.LinkLocal(as, nil); ok {
				return ifi, a
			}
		}
		t.Fatalf("%s has no link-local", name)
		return nil, netip.Addr{}
	}
	a, lla = ll("v6a")
	b, llb = ll("v6b")
	return a, b, lla, llb
}

// The IPv6 advert socket sends from the link-local it is given to
// ff02::12 with hop limit 255, and the receiving socket reports the
// source, destination, hop limit and arrival time that onDatagram6
// needs; the sender does not hear itself.
func TestConn6SendsAndReceives(t *testing.T) {
	netnstest.Run(t, func(netns.NsHandle) {
		ia, ib, lla, _ := veth6(t)
		ca, err := ListenConn6(ia)
		if err != nil {
			t.Fatal(err)
		}
		defer ca.Close()
		cb, err := ListenConn6(ib)
		if err != nil {
			t.Fatal(err)
		}
		defer cb.Close()
		ad := Advert{Version: 3, VRID: 18, Priority: 150, Interval: 100 * time.Millisecond,
			Addresses: []netip.Addr{netip.MustParseAddr("fd00:18::100")}}
		msg, err := ad.AppendMarshalIPv6(nil, lla, GroupV6)
		if err != nil {
			t.Fatal(err)
		}
		if err := ca.Queue(msg, lla, GroupV6, nil); err != nil {
			t.Fatal(err)
		}
		if err := ca.Flush(); err != nil {
			t.Fatal(err)
		}
		rb := NewRecvBatch()
		done := make(chan error, 1)
		go func() { done <- cb.ReadBatch(rb) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(2 * time.Second):
			cb.Close()
			<-done
			t.Fatal("no advert received on the peer's socket")
		}
		if rb.N != 1 {
			t.Fatalf("received %d datagrams, want 1", rb.N)
		}
		src, scope, ok := SourceIPv6(rb.Source(0))
		if !ok || src != lla || int(scope) != ib.Index {
			t.Fatalf("source %v scope %d (%v), want %v on %d", src, scope, ok, lla, ib.Index)
		}
		p, from, dst, hops, ok := ParseIPv6(rb.Datagram(0), src, rb.Control(0))
		if !ok || from != lla || dst != GroupV6 || hops != HopLimit {
			t.Fatalf("ParseIPv6: from %v to %v hop limit %d (%v), want %v to ff02::12 with 255", from, dst, hops, ok, lla)
		}
		if rb.Stamp(0) == 0 {
			t.Error("no receive timestamp")
		}
		var got Advert
		if err := got.UnmarshalIPv6(p, from, dst); err != nil || got.VRID != 18 || got.Priority != 150 {
			t.Fatalf("UnmarshalIPv6: %+v, %v", got, err)
		}
		// Multicast loopback is off: the sender has nothing to read.
		own := NewRecvBatch()
		if err := ca.ReadNow(own); err != nil || own.N != 0 {
			t.Fatalf("the sender read %d datagrams of its own (%v), want 0", own.N, err)
		}
		// An IPv4 address is refused on an IPv6 socket.
		if err := ca.Queue(msg, netip.MustParseAddr("198.18.0.1"), GroupV4, nil); err == nil {
			t.Error("an IPv4 advert was queued on the IPv6 socket")
		}
	})
}

// An advert queued with a MAC (virtual_mac) leaves as an Ethernet frame
// from that MAC, still from the link-local to ff02::12 with hop limit 255
// and traffic class CS6: the peer's advert socket takes it and its
// checksum holds; one queued without a MAC leaves from the interface's.
func TestConn6VirtualMACFrame(t *testing.T) {
	netnstest.Run(t, func(netns.NsHandle) {
		ia, ib, lla, _ := veth6(t)
		ca, err := ListenConn6(ia)
		if err != nil {
			t.Fatal(err)
		}
		defer ca.Close()
		cb, err := ListenConn6(ib)
		if err != nil {
			t.Fatal(err)
		}
		defer cb.Close()
		// A packet socket on the peer sees the frames' Ethernet headers.
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(be16(unix.ETH_P_IPV6)))
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: be16(unix.ETH_P_IPV6), Ifindex: ib.Index}); err != nil {
			t.Fatal(err)
		}
		tv := unix.NsecToTimeval(int64(2 * time.Second))
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			t.Fatal(err)
		}
		vmac := virtualMAC(18, FamilyIPv6)
		for _, mac := range []net.HardwareAddr{vmac, nil} {
			ad := Advert{Version: 3, VRID: 18, Priority: 150, Interval: 100 * time.Millisecond,
				Addresses: []netip.Addr{netip.MustParseAddr("fd00:18::100")}}
			msg, err := ad.AppendMarshalIPv6(nil, lla, GroupV6)
			if err != nil {
				t.Fatal(err)
			}
			if err := ca.Queue(msg, lla, GroupV6, mac); err != nil {
				t.Fatal(err)
			}
			if err := ca.Flush(); err != nil {
				t.Fatal(err)
			}
			want := mac
			if mac == nil {
				want = ia.HardwareAddr
			}
			buf := make([]byte, 1500)
			var fr []byte
			for fr == nil {
				n, _, err := unix.Recvfrom(fd, buf, 0)
				if err != nil {
					t.Fatalf("no advert frame on the peer (%s): %v", want, err)
				}
				// SOCK_RAW: the frame with its Ethernet header.
				if n >= 54 && buf[14+6] == IPProtocol {
					fr = buf[:n]
				}
			}
			if got := net.HardwareAddr(fr[6:12]); got.String() != want.String() || !bytes.Equal(fr[0:6], groupMAC6[:]) {
				t.Errorf("advert frame from %s to %x, want from %s to %x", got, fr[0:6], want, groupMAC6)
			}
			if fr[14]>>4 != 6 || fr[14]&0x0f != 0x0c && mac != nil || fr[14+7] != HopLimit {
				t.Errorf("IPv6 header %x: want version 6, hop limit 255 (and traffic class CS6 from the frame sender)", fr[14:22])
			}
			rb := NewRecvBatch()
			for deadline := time.Now().Add(time.Second); ; time.Sleep(5 * time.Millisecond) {
				if err := cb.ReadNow(rb); err != nil || rb.N == 1 || time.Now().After(deadline) {
					break
				}
			}
			if rb.N != 1 {
				t.Fatalf("the peer's advert socket read %d datagrams, want 1", rb.N)
			}
			src, _, _ := SourceIPv6(rb.Source(0))
			p, from, dst, hops, ok := ParseIPv6(rb.Datagram(0), src, rb.Control(0))
			if !ok || from != lla || dst != GroupV6 || hops != HopLimit {
				t.Fatalf("ParseIPv6: from %v to %v hop limit %d (%v), want %v to ff02::12 with 255", from, dst, hops, ok, lla)
			}
			var got Advert
			if err := got.UnmarshalIPv6(p, from, dst); err != nil || got.VRID != 18 {
				t.Fatalf("UnmarshalIPv6 of the advert from %s: %+v, %v", want, got, err)
			}
		}
	})
}

func be16(v uint16) uint16 { return v<<8 | v>>8 }
