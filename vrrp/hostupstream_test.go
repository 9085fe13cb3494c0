package vrrp

import (
	"net/netip"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

// icmpDatagram is an IPv4 datagram (20-byte header, or 24 with options)
// carrying msg, as a raw socket's filter sees it.
func icmpDatagram(t *testing.T, msg icmp.Message, options bool) []byte {
	t.Helper()
	b, err := msg.Marshal(nil)
	if err != nil {
		t.Fatal(err)
	}
	hl := 20
	if options {
		hl = 24
	}
	d := make([]byte, hl+len(b))
	d[0] = 0x40 | byte(hl/4)
	d[9] = 1
	copy(d[hl:], b)
	return d
}

// The socket filter passes echo replies with the attempt's identifier
// only, whatever the IP header's length.
func TestEchoReplyFilter(t *testing.T) {
	vm, err := bpf.NewVM(echoReplyFilter(0x1234))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		msg     icmp.Message
		options bool
		pass    bool
	}{
		{"our reply", icmp.Message{Type: ipv4.ICMPTypeEchoReply, Body: &icmp.Echo{ID: 0x1234, Seq: 1}}, false, true},
		{"our reply, IP options", icmp.Message{Type: ipv4.ICMPTypeEchoReply, Body: &icmp.Echo{ID: 0x1234, Seq: 1}}, true, true},
		{"another identifier", icmp.Message{Type: ipv4.ICMPTypeEchoReply, Body: &icmp.Echo{ID: 0x1235, Seq: 1}}, false, false},
		{"an echo request", icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: 0x1234, Seq: 1}}, false, false},
		{"unreachable", icmp.Message{Type: ipv4.ICMPTypeDestinationUnreachable, Body: &icmp.DstUnreach{Data: make([]byte, 28)}}, false, false},
	} {
		n, err := vm.Run(icmpDatagram(t, tc.msg, tc.options))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if (n > 0) != tc.pass {
			t.Errorf("%s: filter returned %d, want pass=%v", tc.name, n, tc.pass)
		}
	}
}

// A reply counts only with the attempt's identifier and token, a sequence
// number naming one of its VIPs, from the upstream and to that VIP.
func TestMatchEchoReply(t *testing.T) {
	vips := []netip.Addr{netip.MustParseAddr("198.18.0.100"), netip.MustParseAddr("198.18.0.101")}
	up := netip.MustParseAddr("198.18.0.1")
	token := []byte("tokenXYZ")
	reply := func(typ ipv4.ICMPType, id, seq int, data []byte) []byte {
		b, err := (&icmp.Message{Type: typ, Body: &icmp.Echo{ID: id, Seq: seq, Data: data}}).Marshal(nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name     string
		b        []byte
		from, to netip.Addr
		seq      int
		ok       bool
	}{
		{"second VIP's reply", reply(ipv4.ICMPTypeEchoReply, 7, 1, token), up, vips[1], 1, true},
		{"destination unknown", reply(ipv4.ICMPTypeEchoReply, 7, 0, token), up, netip.Addr{}, 0, true},
		{"to the other VIP", reply(ipv4.ICMPTypeEchoReply, 7, 1, token), up, vips[0], 0, false},
		{"from another host", reply(ipv4.ICMPTypeEchoReply, 7, 0, token), netip.MustParseAddr("198.18.0.2"), vips[0], 0, false},
		{"another identifier", reply(ipv4.ICMPTypeEchoReply, 8, 0, token), up, vips[0], 0, false},
		{"another token", reply(ipv4.ICMPTypeEchoReply, 7, 0, []byte("tokenABC")), up, vips[0], 0, false},
		{"a sequence number past the VIPs", reply(ipv4.ICMPTypeEchoReply, 7, 2, token), up, vips[0], 0, false},
		{"a request", reply(ipv4.ICMPTypeEcho, 7, 0, token), up, vips[0], 0, false},
		{"garbage", []byte{0, 0}, up, vips[0], 0, false},
	} {
		seq, ok := matchEchoReply(tc.b, 7, token, vips, tc.from, tc.to, up)
		if ok != tc.ok || (ok && seq != tc.seq) {
			t.Errorf("%s: (%d, %v), want (%d, %v)", tc.name, seq, ok, tc.seq, tc.ok)
		}
	}
}
