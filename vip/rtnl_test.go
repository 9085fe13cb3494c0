package vip

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// The request is byte for byte what vishvananda/netlink sends for the same
// address (its AddrReplace and AddrDel), built here from that library's
// own message and attribute encoders.
func TestEncodeAddrRequest(t *testing.T) {
	for _, tc := range []struct {
		prefix string
		typ    uint16
		flags  uint16
		brd    string
	}{
		{"198.18.0.100/32", unix.RTM_NEWADDR, unix.NLM_F_CREATE | unix.NLM_F_REPLACE, ""},
		{"198.18.0.100/31", unix.RTM_DELADDR, 0, ""},
		{"198.18.0.100/24", unix.RTM_NEWADDR, unix.NLM_F_CREATE | unix.NLM_F_REPLACE, "198.18.0.255"},
		{"10.1.2.3/8", unix.RTM_DELADDR, 0, "10.255.255.255"},
	} {
		p := netip.MustParsePrefix(tc.prefix)
		flags := tc.flags | unix.NLM_F_REQUEST | unix.NLM_F_ACK

		want := nl.NewNetlinkRequest(int(tc.typ), int(tc.flags)|unix.NLM_F_ACK)
		want.Seq = 77
		msg := nl.NewIfAddrmsg(nl.FAMILY_V4)
		msg.Prefixlen = uint8(p.Bits())
		msg.Index = 42
		want.AddData(msg)
		want.AddData(nl.NewRtAttr(unix.IFA_LOCAL, p.Addr().AsSlice()))
		want.AddData(nl.NewRtAttr(unix.IFA_ADDRESS, p.Addr().AsSlice()))
		if tc.brd != "" {
			want.AddData(nl.NewRtAttr(unix.IFA_BROADCAST, netip.MustParseAddr(tc.brd).AsSlice()))
		}
		wantB := want.Serialize()

		var b [reqLen]byte
		n := encodeAddrRequest(b[:], tc.typ, flags, 77, 42, p)
		if !bytes.Equal(b[:n], wantB) {
			t.Errorf("%s type %d:\n got % x\nwant % x", p, tc.typ, b[:n], wantB)
		}
	}
}

// ack builds the kernel's NLMSG_ERROR reply to request seq.
func ack(seq uint32, errno int32, extack string) []byte {
	ne := binary.NativeEndian
	req := make([]byte, nlmsgHdrLen) // the request's header, capped
	var flags uint16 = unix.NLM_F_CAPPED
	body := ne.AppendUint32(nil, uint32(-errno))
	body = append(body, req...)
	if extack != "" {
		flags |= unix.NLM_F_ACK_TLVS
		v := append([]byte(extack), 0)
		a := ne.AppendUint16(nil, uint16(unix.SizeofRtAttr+len(v)))
		a = ne.AppendUint16(a, unix.NLMSGERR_ATTR_MSG)
		a = append(a, v...)
		for len(a)%4 != 0 {
			a = append(a, 0)
		}
		body = append(body, a...)
	}
	h := ne.AppendUint32(nil, uint32(nlmsgHdrLen+len(body)))
	h = ne.AppendUint16(h, unix.NLMSG_ERROR)
	h = ne.AppendUint16(h, flags)
	h = ne.AppendUint32(h, seq)
	h = ne.AppendUint32(h, 1234)
	return append(h, body...)
}

func TestParseAck(t *testing.T) {
	if done, err := parseAck(ack(5, 0, ""), 5); !done || err != nil {
		t.Errorf("success ack: %v, %v", done, err)
	}
	if done, err := parseAck(ack(4, 0, ""), 5); done || err != nil {
		t.Errorf("an earlier request's ack was taken for this one's: %v, %v", done, err)
	}
	// A late ack and this request's error in one datagram.
	two := append(ack(4, 0, ""), ack(5, int32(unix.ENODEV), "")...)
	done, err := parseAck(two, 5)
	if !done || !errors.Is(err, syscall.ENODEV) {
		t.Errorf("second ack in a datagram: %v, %v", done, err)
	}
	done, err = parseAck(ack(6, int32(unix.EINVAL), "Invalid prefix for given prefix length."), 6)
	if !done || !errors.Is(err, syscall.EINVAL) || !strings.Contains(err.Error(), "Invalid prefix for given prefix length.") {
		t.Errorf("ack with the kernel's message: %v, %v", done, err)
	}
	bad := ack(7, 0, "")
	binary.NativeEndian.PutUint32(bad, 4096)
	if done, err := parseAck(bad, 7); !done || err == nil || !strings.Contains(err.Error(), "malformed") {
		t.Errorf("malformed ack: %v, %v", done, err)
	}
}
