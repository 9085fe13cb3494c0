package arp

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/net/bpf"

	"github.com/vipd/vipd/e2e/netnstest"
)

func frameOf(t *testing.T, op arp.Operation, mac net.HardwareAddr, sender, target netip.Addr) []byte {
	t.Helper()
	p, err := arp.NewPacket(op, mac, sender, ethernet.Broadcast, target)
	if err != nil {
		t.Fatal(err)
	}
	b, err := marshalFrame(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ParseFrame reads what mdlayher/arp writes, and the kernel filter keeps
// exactly the frames that claim an address.
func TestParseFrameAndFilter(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0, 0x5e, 0x10, 0x20, 0x30}
	vip, peer := netip.MustParseAddr("198.18.0.100"), netip.MustParseAddr("198.18.0.1")
	vm, err := bpf.NewVM(mustDisassemble(t, watchFilter))
	if err != nil {
		t.Fatal(err)
	}
	probe := frameOf(t, arp.OperationRequest, mac, netip.IPv4Unspecified(), vip)
	notARP := frameOf(t, arp.OperationReply, mac, vip, peer)
	notARP[12], notARP[13] = 0x08, 0x00
	ipv6ptype := frameOf(t, arp.OperationReply, mac, vip, peer)
	ipv6ptype[ethHeaderLen+2], ipv6ptype[ethHeaderLen+3] = 0x86, 0xdd
	for _, tc := range []struct {
		name     string
		b        []byte
		parsed   bool
		claims   bool
		filtered bool // dropped by the kernel filter
	}{
		{"reply", frameOf(t, arp.OperationReply, mac, vip, peer), true, true, false},
		{"gratuitous request", frameOf(t, arp.OperationRequest, mac, vip, vip), true, true, false},
		{"probe", probe, true, false, true},
		{"IP frame", notARP, false, false, true},
		{"other protocol type", ipv6ptype, false, false, true},
		{"short", frameOf(t, arp.OperationReply, mac, vip, peer)[:30], false, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, ok := ParseFrame(tc.b)
			if ok != tc.parsed || (ok && s.Claims() != tc.claims) {
				t.Fatalf("ParseFrame = %+v, %v; want parsed %v, claims %v", s, ok, tc.parsed, tc.claims)
			}
			if ok && (s.HardwareAddr().String() != mac.String() || (tc.claims && s.IP != vip)) {
				t.Errorf("ParseFrame = %+v, want %s at %s", s, vip, mac)
			}
			n, err := vm.Run(tc.b)
			if err != nil {
				t.Fatal(err)
			}
			if (n == 0) != tc.filtered {
				t.Errorf("filter kept %d bytes; want dropped %v", n, tc.filtered)
			}
		})
	}
	b := frameOf(t, arp.OperationReply, mac, vip, peer)
	if a := testing.AllocsPerRun(100, func() { ParseFrame(b) }); a != 0 {
		t.Errorf("ParseFrame allocated %v times, want 0", a)
	}
}

// SetFilter's program keeps only the frames whose sender address is
// watched: a VIP's reply or announcement and the master's, not an ordinary
// request from another host on the segment; above MaxFilterAddrs it keeps
// every frame that claims an address, as the broad filter does.
func TestFilterForWatchedSenders(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0, 0x5e, 0x10, 0x20, 0x30}
	vip, master := netip.MustParseAddr("198.18.0.100"), netip.MustParseAddr("198.18.0.12")
	other, gw := netip.MustParseAddr("198.18.0.77"), netip.MustParseAddr("198.18.0.1")
	many := make([]netip.Addr, 0, MaxFilterAddrs+1)
	for i := range MaxFilterAddrs + 1 {
		many = append(many, netip.AddrFrom4([4]byte{198, 19, 0, byte(i)}))
	}
	last := many[MaxFilterAddrs-1]
	other6 := net.HardwareAddr{0x02, 0, 0x5e, 0x10, 0x20, 0x31}
	lastDiffers := net.HardwareAddr{0x02, 0, 0x5e, 0x10, 0x21, 0x30}
	notARP := frameOf(t, arp.OperationReply, mac, vip, gw)
	notARP[12], notARP[13] = 0x08, 0x00
	short := frameOf(t, arp.OperationReply, mac, vip, gw)[:27]
	for _, tc := range []struct {
		name  string
		addrs []netip.Addr
		b     []byte
		kept  bool
		known []Claim
	}{
		{"the VIP's reply", []netip.Addr{vip, master}, frameOf(t, arp.OperationReply, mac, vip, gw), true, nil},
		{"the VIP announced", []netip.Addr{vip, master}, frameOf(t, arp.OperationRequest, mac, vip, vip), true, nil},
		{"the master's request", []netip.Addr{vip, master}, frameOf(t, arp.OperationRequest, mac, master, gw), true, nil},
		{"another host's request", []netip.Addr{vip, master}, frameOf(t, arp.OperationRequest, mac, other, gw), false, nil},
		{"another host asking for the VIP", []netip.Addr{vip, master}, frameOf(t, arp.OperationRequest, mac, other, vip), false, nil},
		{"a probe for the VIP", []netip.Addr{vip, master}, frameOf(t, arp.OperationRequest, mac, netip.IPv4Unspecified(), vip), false, nil},
		{"an IP frame from the VIP", []netip.Addr{vip, master}, notARP, false, nil},
		{"short", []netip.Addr{vip, master}, short, false, nil},
		{"nothing watched", []netip.Addr{}, frameOf(t, arp.OperationReply, mac, vip, gw), false, nil},
		{"the last of the most", many[:MaxFilterAddrs], frameOf(t, arp.OperationReply, mac, last, gw), true, nil},
		{"not among the most", many[:MaxFilterAddrs], frameOf(t, arp.OperationReply, mac, other, gw), false, nil},
		{"above the most: broad", many, frameOf(t, arp.OperationRequest, mac, other, gw), true, nil},
		{"above the most: no probe", many, frameOf(t, arp.OperationRequest, mac, netip.IPv4Unspecified(), gw), false, nil},
		// Known claims: the MAC already known for an address wakes nobody,
		// any other MAC claiming it does.
		{"the VIP from its known MAC", []netip.Addr{master, vip}, frameOf(t, arp.OperationReply, mac, vip, gw), false, []Claim{{vip, [6]byte(mac)}}},
		{"the VIP from another MAC", []netip.Addr{master, vip}, frameOf(t, arp.OperationReply, other6, vip, gw), true, []Claim{{vip, [6]byte(mac)}}},
		{"the VIP from a MAC differing in its last bytes", []netip.Addr{master, vip}, frameOf(t, arp.OperationReply, lastDiffers, vip, gw), true, []Claim{{vip, [6]byte(mac)}}},
		{"the VIP from the second known MAC", []netip.Addr{master, vip}, frameOf(t, arp.OperationRequest, other6, vip, vip), false, []Claim{{vip, [6]byte(mac)}, {vip, [6]byte(other6)}}},
		{"the master from the VIP's known MAC", []netip.Addr{master, vip}, frameOf(t, arp.OperationRequest, mac, master, gw), true, []Claim{{vip, [6]byte(mac)}}},
		{"the master from its known MAC, the VIP's unknown", []netip.Addr{master, vip}, frameOf(t, arp.OperationRequest, mac, master, gw), false, []Claim{{master, [6]byte(mac)}}},
		{"a known claim of an address not watched", []netip.Addr{vip}, frameOf(t, arp.OperationRequest, mac, other, gw), false, []Claim{{other, [6]byte(mac)}}},
		{"the last of the most, known", many[:MaxFilterAddrs], frameOf(t, arp.OperationReply, mac, last, gw), false, knownAll(many[:MaxFilterAddrs], mac)},
		{"the last of the most, another MAC", many[:MaxFilterAddrs], frameOf(t, arp.OperationReply, other6, last, gw), true, knownAll(many[:MaxFilterAddrs], mac)},
		{"more known MACs than the most: the rest kept", []netip.Addr{vip}, frameOf(t, arp.OperationReply, macN(MaxKnownPerAddr), vip, gw), true, knownMACs(vip, MaxKnownPerAddr+1)},
		{"more known MACs than the most: the first dropped", []netip.Addr{vip}, frameOf(t, arp.OperationReply, macN(MaxKnownPerAddr-1), vip, gw), false, knownMACs(vip, MaxKnownPerAddr+1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := FilterExcept(tc.addrs, tc.known)
			if err != nil {
				t.Fatal(err)
			}
			vm, err := bpf.NewVM(mustDisassemble(t, raw))
			if err != nil {
				t.Fatal(err)
			}
			n, err := vm.Run(tc.b)
			if err != nil {
				t.Fatal(err)
			}
			if (n != 0) != tc.kept {
				t.Errorf("filter for %d addresses kept %d bytes; want kept %v", len(tc.addrs), n, tc.kept)
			}
		})
	}
	if _, err := FilterFor([]netip.Addr{netip.MustParseAddr("2001:db8::1")}); err == nil {
		t.Error("an IPv6 address was taken")
	}
}

func macN(i int) net.HardwareAddr { return net.HardwareAddr{0x02, 0, 0, 0, 0x40, byte(i)} }

func knownMACs(ip netip.Addr, n int) []Claim {
	var cs []Claim
	for i := range n {
		cs = append(cs, Claim{ip, [6]byte(macN(i))})
	}
	return cs
}

func knownAll(addrs []netip.Addr, mac net.HardwareAddr) []Claim {
	var cs []Claim
	for _, a := range addrs {
		cs = append(cs, Claim{a, [6]byte(mac)})
	}
	return cs
}

func mustDisassemble(t *testing.T, raw []bpf.RawInstruction) []bpf.Instruction {
	ins, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatal("filter does not disassemble")
	}
	return ins
}

// A probe from one end of a veth pair is answered by the kernel on the
// other end, which holds the address; the Watcher hears the reply with the
// peer's MAC, and a read allocates nothing.
func TestWatcherProbe(t *testing.T) {
	netnstest.Run(t, func(netns.NsHandle) {
		netnstest.Veth(t, "arpw0", "arpw1")
		vip := netip.MustParseAddr("198.18.0.100")
		peer, err := netlink.LinkByName("arpw1")
		if err != nil {
			t.Fatal(err)
		}
		if err := netlink.AddrAdd(peer, &netlink.Addr{IPNet: &net.IPNet{IP: vip.AsSlice(), Mask: net.CIDRMask(32, 32)}}); err != nil {
			t.Fatal(err)
		}
		w, err := NewWatcher("arpw0")
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		// Only the VIP is watched: the kernel filter the reader runs with.
		if err := w.SetFilter([]netip.Addr{vip}, nil); err != nil {
			t.Fatal(err)
		}
		read := func() Seen {
			t.Helper()
			deadline := time.Now().Add(2 * time.Second)
			for {
				if err := w.SetReadDeadline(deadline); err != nil {
					t.Fatal(err)
				}
				s, err := w.Read()
				if err != nil {
					t.Fatalf("waiting for the reply for %s: %v", vip, err)
				}
				if s.IP == vip {
					return s
				}
			}
		}
		if err := w.Probe(vip); err != nil {
			t.Fatal(err)
		}
		s := read()
		if s.Op != arp.OperationReply || s.HardwareAddr().String() != peer.Attrs().HardwareAddr.String() {
			t.Errorf("heard %+v, want a reply from %s", s, peer.Attrs().HardwareAddr)
		}
		if a := testing.AllocsPerRun(20, func() {
			if err := w.Probe(vip); err != nil {
				t.Fatal(err)
			}
			read()
		}); a != 0 {
			t.Errorf("a probe and a read allocated %v times, want 0", a)
		}
		// With the peer's MAC known for the VIP, its replies stay in the
		// kernel: the reader hears nothing.
		if err := w.SetFilter([]netip.Addr{vip}, []Claim{{vip, [6]byte(peer.Attrs().HardwareAddr)}}); err != nil {
			t.Fatal(err)
		}
		if err := w.Probe(vip); err != nil {
			t.Fatal(err)
		}
		if err := w.SetReadDeadline(time.Now().Add(300 * time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		if s, err := w.Read(); err == nil {
			t.Errorf("heard %+v from a known claim", s)
		}
	})
}
