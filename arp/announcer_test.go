package arp

import (
	"net"
	"net/netip"
	"testing"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
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
