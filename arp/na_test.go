package arp

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/vipd/vipd/e2e/netnstest"
)

var (
	naMAC = net.HardwareAddr{0x02, 0, 0x5e, 0x10, 0x20, 0x30}
	naVIP = netip.MustParseAddr("fd00:18::100")
)

// icmp6Sum verifies an ICMPv6 checksum long-hand: the sum over the IPv6
// pseudo-header and the message must be 0xffff.
func icmp6Sum(src, dst netip.Addr, msg []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
	}
	s, d := src.As16(), dst.As16()
	add(s[:])
	add(d[:])
	add([]byte{0, 0, byte(len(msg) >> 8), byte(len(msg)), 0, 0, 0, 58})
	add(msg)
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum)
}

func TestNAFrame(t *testing.T) {
	for _, router := range []bool{false, true} {
		b, err := NAFrame(naMAC, naVIP, router)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != naFrameLen {
			t.Fatalf("frame of %d bytes, want %d", len(b), naFrameLen)
		}
		var f ethernet.Frame
		if err := f.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		if f.Destination.String() != "33:33:00:00:00:01" || f.Source.String() != naMAC.String() || f.EtherType != ethernet.EtherTypeIPv6 {
			t.Errorf("Ethernet %v -> %v type %v", f.Source, f.Destination, f.EtherType)
		}
		ip := f.Payload
		src, dst := netip.AddrFrom16([16]byte(ip[8:24])), netip.AddrFrom16([16]byte(ip[24:40]))
		if ip[0]>>4 != 6 || ip[6] != 58 || ip[7] != 255 || src != naVIP || dst != AllNodes || int(binary.BigEndian.Uint16(ip[4:])) != len(ip)-40 {
			t.Errorf("IPv6 header % x: want version 6, next header 58, hop limit 255, %s -> ff02::1", ip[:40], naVIP)
		}
		icmp := ip[40:]
		if s := icmp6Sum(src, dst, icmp); s != 0xffff {
			t.Errorf("ICMPv6 checksum does not verify (sum %04x)", s)
		}
		m, err := ndp.ParseMessage(icmp)
		if err != nil {
			t.Fatal(err)
		}
		want := &ndp.NeighborAdvertisement{Router: router, Override: true, TargetAddress: naVIP,
			Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: naMAC}}}
		if diff := cmp.Diff(want, m, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
			t.Errorf("router %v: message (-want +got):\n%s", router, diff)
		}
	}
	for _, bad := range []struct {
		mac net.HardwareAddr
		ip  netip.Addr
	}{
		{naMAC, netip.MustParseAddr("198.18.0.1")},
		{naMAC, netip.MustParseAddr("::ffff:198.18.0.1")},
		{naMAC, netip.MustParseAddr("fe80::1%eth0")},
		{net.HardwareAddr{1, 2}, naVIP},
	} {
		if _, err := NAFrame(bad.mac, bad.ip, false); err == nil {
			t.Errorf("NAFrame(%v, %v) accepted", bad.mac, bad.ip)
		}
	}
}

// The frames Announce writes are byte for byte NAFrame's (mdlayher/ndp's
// message): the template with the address filled in and the checksum
// recomputed.
func TestFillNA(t *testing.T) {
	for _, router := range []bool{false, true} {
		tmpl, err := NAFrame(naMAC, netip.IPv6Unspecified(), router)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(tmpl))
		for _, s := range []string{"fd00:18::100", "fe80::1", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "fd00:18::1:0:0"} {
			ip := netip.MustParseAddr(s)
			want, err := NAFrame(naMAC, ip, router)
			if err != nil {
				t.Fatal(err)
			}
			fillNA(got, tmpl, ip)
			if !bytes.Equal(got, want) {
				t.Errorf("%s router %v:\n got % x\nwant % x", ip, router, got, want)
			}
		}
	}
}

// Wireshark's dissector agrees: a neighbour advertisement with a good
// checksum, Override only, target and link-layer address as sent.
func TestTsharkDecodesNA(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed")
	}
	frame, err := NAFrame(naMAC, naVIP, false)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	var p []byte
	for _, v := range []uint32{0xa1b2c3d4, 0, 0, 0, 65535, 1, 1_700_000_000, 0, uint32(len(frame)), uint32(len(frame))} {
		p = le.AppendUint32(p, v)
	}
	le.PutUint16(p[4:], 2) // version 2.4
	le.PutUint16(p[6:], 4)
	path := filepath.Join(t.TempDir(), "na.pcap")
	if err := os.WriteFile(path, append(p, frame...), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(tshark, "-n", "-r", path, "-T", "fields", "-E", "separator=|",
		"-e", "ipv6.hlim", "-e", "ipv6.dst", "-e", "icmpv6.type", "-e", "icmpv6.checksum.status",
		"-e", "icmpv6.nd.na.flag.r", "-e", "icmpv6.nd.na.flag.s", "-e", "icmpv6.nd.na.flag.o",
		"-e", "icmpv6.nd.na.target_address", "-e", "icmpv6.opt.linkaddr").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	// type 136 is a neighbour advertisement; checksum.status 1 is good.
	want := "255|ff02::1|136|1|0|0|1|fd00:18::100|02:00:5e:10:20:30"
	if got := strings.TrimSpace(string(out)); got != want {
		t.Errorf("tshark fields = %q, want %q", got, want)
	}
}

// An advertisement sent by NAAnnouncer on one end of a veth pair moves the
// other namespace's neighbour entry for the VIP to this end's MAC, in
// state STALE, as an unsolicited advertisement with Override must; and a
// burst allocates nothing.
func TestNAAnnouncerUpdatesNeighbour(t *testing.T) {
	netnstest.Run(t, func(netns.NsHandle) {
		netnstest.Veth(t, "na0", "na1")
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
		na1, err := netlink.LinkByName("na1")
		if err != nil {
			t.Fatal(err)
		}
		if err := netlink.LinkSetNsFd(na1, int(peerNS)); err != nil {
			t.Fatal(err)
		}
		if na1, err = peer.LinkByName("na1"); err != nil {
			t.Fatal(err)
		}
		if err := peer.LinkSetUp(na1); err != nil {
			t.Fatal(err)
		}
		addr, _ := netlink.ParseAddr("fd00:18::2/64")
		addr.Flags = unix.IFA_F_NODAD
		if err := peer.AddrAdd(na1, addr); err != nil {
			t.Fatal(err)
		}
		// The client knows the VIP at the old master's MAC.
		old := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x99}
		if err := peer.NeighAdd(&netlink.Neigh{LinkIndex: na1.Attrs().Index, Family: unix.AF_INET6,
			State: netlink.NUD_REACHABLE, IP: naVIP.AsSlice(), HardwareAddr: old}); err != nil {
			t.Fatal(err)
		}

		a, err := NewNAAnnouncer("na0")
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		if a.Router() {
			t.Fatal("a fresh namespace does not forward IPv6, yet Router is set")
		}
		na0, err := net.InterfaceByName("na0")
		if err != nil {
			t.Fatal(err)
		}
		// Sent again while waiting, as the runtime repeats: the first may go
		// out before the moved peer end has its carrier.
		var last netlink.Neigh
		for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if n, err := a.Announce([]netip.Addr{naVIP}); n != 1 || err != nil {
				t.Fatalf("Announce = %d, %v", n, err)
			}
			ns, err := peer.NeighList(na1.Attrs().Index, unix.AF_INET6)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range ns {
				if n.IP.Equal(naVIP.AsSlice()) {
					last = n
				}
			}
			if last.HardwareAddr.String() == na0.HardwareAddr.String() && last.State == netlink.NUD_STALE {
				break
			}
		}
		if last.HardwareAddr.String() != na0.HardwareAddr.String() || last.State != netlink.NUD_STALE {
			t.Fatalf("peer's entry for %s: %v state %#x; want %v, STALE", naVIP, last.HardwareAddr, last.State, na0.HardwareAddr)
		}

		ips := []netip.Addr{naVIP, netip.MustParseAddr("fd00:18::101")}
		if allocs := testing.AllocsPerRun(100, func() {
			if _, err := a.Announce(ips); err != nil {
				t.Fatal(err)
			}
		}); allocs != 0 {
			t.Errorf("Announce allocated %v times per burst, want 0", allocs)
		}
		if _, err := a.Announce([]netip.Addr{netip.MustParseAddr("198.18.0.1")}); err == nil {
			t.Error("an IPv4 address was advertised")
		}

		// Forwarding on: Reopen sets the Router flag.
		if err := os.WriteFile("/proc/sys/net/ipv6/conf/na0/forwarding", []byte("1"), 0); err != nil {
			t.Fatal(err)
		}
		if err := a.Reopen(); err != nil {
			t.Fatal(err)
		}
		if !a.Router() || a.template[naICMPOffset+4]&0x80 == 0 {
			t.Errorf("forwarding on: Router() %v, flags %#x; want the Router flag", a.Router(), a.template[naICMPOffset+4])
		}

		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Announce(ips); err == nil || !strings.Contains(err.Error(), "closed") {
			t.Errorf("Announce after Close: %v", err)
		}
	})
}
