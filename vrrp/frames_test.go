package vrrp

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
)

// A frame's Ethernet source is the MAC given to add (an instance's
// virtual MAC), else the interface's; the rest of the frame is the same.
func TestFrameSenderSourceMAC(t *testing.T) {
	s := &frameSender{src: [6]byte{0x02, 0, 0, 0, 0, 1}}
	msg := []byte{0x31, 51, 100, 1, 0, 10, 0, 0, 198, 18, 0, 100}
	src := netip.MustParseAddr("198.18.0.1")
	vmac := net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x01, 51}
	s.add(msg, src, vmac)
	s.add(msg, src, nil)
	if s.n != 2 {
		t.Fatalf("%d frames queued, want 2", s.n)
	}
	frame := func(i int) []byte {
		return s.arena[i*(headerLen+len(msg)) : (i+1)*(headerLen+len(msg))]
	}
	f0, f1 := frame(0), frame(1)
	if !bytes.Equal(f0[0:6], groupMAC[:]) || !bytes.Equal(f0[6:12], vmac) {
		t.Errorf("frame with the virtual MAC: destination %x source %x, want %x and %s", f0[0:6], f0[6:12], groupMAC, vmac)
	}
	if !bytes.Equal(f1[6:12], s.src[:]) {
		t.Errorf("frame without a MAC: source %x, want the interface's %x", f1[6:12], s.src)
	}
	if !bytes.Equal(f0[headerLen:], msg) || !bytes.Equal(f1[headerLen:], msg) {
		t.Error("the message was not copied after the headers")
	}
}
