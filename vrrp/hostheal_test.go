package vrrp

import (
	"net/netip"
	"testing"

	"golang.org/x/net/bpf"
)

// The learner's kernel filter passes the master's adverts for the VRID
// (whatever the IP header's length) and nothing else.
func TestSenderFilter(t *testing.T) {
	prog, err := senderFilter([4]byte{198, 18, 0, 11}, 51)
	if err != nil {
		t.Fatal(err)
	}
	ins := make([]bpf.Instruction, len(prog))
	for i, r := range prog {
		ins[i] = r.Disassemble()
	}
	vm, err := bpf.NewVM(ins)
	if err != nil {
		t.Fatal(err)
	}
	pkt := func(ihl int, proto byte, src [4]byte, vrid, prio byte) []byte {
		b := make([]byte, ihl*4+12)
		b[0] = 0x40 | byte(ihl)
		b[9] = proto
		copy(b[12:16], src[:])
		b[ihl*4], b[ihl*4+1], b[ihl*4+2] = 0x31, vrid, prio
		return b
	}
	master, other := [4]byte{198, 18, 0, 11}, [4]byte{198, 18, 0, 12}
	for _, c := range []struct {
		name string
		b    []byte
		pass bool
	}{
		{"the master's advert", pkt(5, 112, master, 51, 150), true},
		{"with IP options", pkt(6, 112, master, 51, 150), true},
		{"priority 0", pkt(5, 112, master, 51, 0), false},
		{"another VRID", pkt(5, 112, master, 52, 150), false},
		{"another sender", pkt(5, 112, other, 51, 150), false},
		{"not VRRP", pkt(5, 17, master, 51, 150), false},
	} {
		n, err := vm.Run(c.b)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if (n > 0) != c.pass {
			t.Errorf("%s: filter kept %d bytes, want pass=%v", c.name, n, c.pass)
		}
	}
}

// The IPv6 filter passes the master's adverts (from its link-local) for
// the VRID, and nothing else: not another sender (whichever word of the
// address differs), VRID or next header, not priority 0, not an advert
// behind an extension header (which the learner does not parse).
func TestSenderFilter6(t *testing.T) {
	master := netip.MustParseAddr("fe80::5efe:1:2:3")
	prog, err := senderFilter6(master.As16(), 51)
	if err != nil {
		t.Fatal(err)
	}
	ins := make([]bpf.Instruction, len(prog))
	for i, r := range prog {
		ins[i] = r.Disassemble()
	}
	vm, err := bpf.NewVM(ins)
	if err != nil {
		t.Fatal(err)
	}
	advert := func(vrid, prio byte) []byte {
		return []byte{0x31, vrid, prio, 1, 0, 10, 0, 0}
	}
	other := func(i int) netip.Addr { // master with byte i changed
		b := master.As16()
		b[i] ^= 0x80
		return netip.AddrFrom16(b)
	}
	hbh := append([]byte{IPProtocol, 0, 0, 0, 0, 0, 0, 0}, advert(51, 150)...) // hop-by-hop, then VRRP
	for _, c := range []struct {
		name string
		b    []byte
		pass bool
	}{
		{"the master's advert", ipv6Packet(master, GroupV6, 255, IPProtocol, advert(51, 150)), true},
		{"sent to a unicast peer", ipv6Packet(master, netip.MustParseAddr("fe80::2"), 255, IPProtocol, advert(51, 150)), true},
		{"priority 0", ipv6Packet(master, GroupV6, 255, IPProtocol, advert(51, 0)), false},
		{"another VRID", ipv6Packet(master, GroupV6, 255, IPProtocol, advert(52, 150)), false},
		{"another sender, first word", ipv6Packet(other(0), GroupV6, 255, IPProtocol, advert(51, 150)), false},
		{"another sender, second word", ipv6Packet(other(5), GroupV6, 255, IPProtocol, advert(51, 150)), false},
		{"another sender, third word", ipv6Packet(other(10), GroupV6, 255, IPProtocol, advert(51, 150)), false},
		{"another sender, last word", ipv6Packet(other(15), GroupV6, 255, IPProtocol, advert(51, 150)), false},
		{"not VRRP", ipv6Packet(master, GroupV6, 255, 58, advert(51, 150)), false},
		{"behind a hop-by-hop header", ipv6Packet(master, GroupV6, 255, 0, hbh), false},
	} {
		n, err := vm.Run(c.b)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if (n > 0) != c.pass {
			t.Errorf("%s: filter kept %d bytes, want pass=%v", c.name, n, c.pass)
		}
	}
}
