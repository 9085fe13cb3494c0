package vrrp

import (
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
