package inject

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/vipd/vipd/e2e/lab"
)

func TestAppendIPv4(t *testing.T) {
	src, dst := netip.MustParseAddr("198.18.0.66"), netip.MustParseAddr("224.0.0.18")
	payload := []byte{1, 2, 3, 4, 5}
	b := AppendIPv4([]byte{0xee}, src, dst, 64, 0, payload)
	if b[0] != 0xee {
		t.Fatal("AppendIPv4 overwrote what was in b")
	}
	h, err := ipv4.ParseHeader(b[1:])
	if err != nil {
		t.Fatal(err)
	}
	if h.Version != 4 || h.Len != ipHeaderLen || h.TotalLen != ipHeaderLen+len(payload) || h.TTL != 64 ||
		h.Protocol != protocolVRRP || !h.Src.Equal(src.AsSlice()) || !h.Dst.Equal(dst.AsSlice()) {
		t.Errorf("header %+v", h)
	}
	if headerChecksum(b[1:1+ipHeaderLen]) != 0 {
		t.Error("header checksum does not verify")
	}
	if got := b[1+ipHeaderLen:]; string(got) != string(payload) {
		t.Errorf("payload % x, want % x", got, payload)
	}
	if b := AppendIPv4(nil, src, dst, 0, 17, nil); b[8] != 255 || b[9] != 17 {
		t.Errorf("TTL 0 and protocol 17 gave TTL %d protocol %d, want 255 and 17", b[8], b[9])
	}
}

func TestAllowed(t *testing.T) {
	for addr, want := range map[string]bool{
		"224.0.0.18": true, "198.18.0.11": true, "198.18.0.255": true,
		"224.0.0.1": false, "198.18.1.1": false, "8.8.8.8": false, "127.0.0.1": false, "::ffff:198.18.0.12": true,
	} {
		if got := Allowed(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Allowed(%s) = %v, want %v", addr, got, want)
		}
	}
}

func TestMarshalRefusesOutsideTheLab(t *testing.T) {
	j := &Injector{src: netip.MustParseAddr("198.18.0.66"), fd: -1}
	for _, d := range []Datagram{
		{Dst: netip.MustParseAddr("192.0.2.1")},
		{Dst: netip.MustParseAddr("224.0.0.18"), Src: netip.MustParseAddr("10.0.0.1")},
		{},
	} {
		if _, _, err := j.marshal(d); err == nil {
			t.Errorf("marshal(%+v) succeeded", d)
		}
	}
	if _, _, err := j.marshal(Datagram{Dst: netip.MustParseAddr("224.0.0.18")}); err != nil {
		t.Errorf("marshal to the VRRP group: %v", err)
	}
}

func TestFloodArguments(t *testing.T) {
	j := &Injector{src: netip.MustParseAddr("198.18.0.66"), fd: -1}
	next := func(int) Datagram { return Datagram{Dst: vrrpGroup} }
	for _, f := range []Flood{
		{Count: 0, Rate: 1, Limit: time.Second, Next: next},
		{Count: MaxCount + 1, Rate: 1, Limit: time.Second, Next: next},
		{Count: 1, Rate: 0, Limit: time.Second, Next: next},
		{Count: 1, Rate: MaxRate + 1, Limit: time.Second, Next: next},
		{Count: 1, Rate: 1, Next: next},
		{Count: 1, Rate: 1, Limit: time.Second},
	} {
		if _, err := j.Flood(context.Background(), f); err == nil {
			t.Errorf("Flood(%+v) accepted", f)
		}
	}
}

// A flood from a lab host keeps to its rate and count, and a receiver on
// the segment sees every datagram.
func TestFloodInLab(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: the lab needs root")
	}
	l, err := lab.New(fmt.Sprintf("inj%d", os.Getpid()%10000))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	evil, err := l.AddHost("evil", "198.18.0.66/24")
	if err != nil {
		t.Fatal(err)
	}
	peer, err := l.AddHost("peer", "198.18.0.67/24")
	if err != nil {
		t.Fatal(err)
	}
	j, err := Open(evil)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if err := j.Send(Datagram{Dst: netip.MustParseAddr("192.0.2.1")}); err == nil {
		t.Error("sent outside the lab")
	}

	// The peer counts what arrives with a raw socket of its own for an
	// experimental protocol number that nothing else on the segment uses.
	var fd int
	err = InNamespace(peer.NS, func() error {
		var err error
		fd, err = openListener()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	const count, rate = 500, 5000.0
	payload := []byte{0x31, 0x33, 0, 0}
	res, err := j.Flood(context.Background(), Flood{Count: count, Rate: rate, Limit: 2 * time.Second,
		Next: func(int) Datagram {
			return Datagram{Dst: netip.MustParseAddr("198.18.0.67"), Protocol: 253, Payload: payload}
		}})
	if err != nil || res.Sent != count || res.Failed != 0 {
		t.Fatalf("flood: %+v, %v", res, err)
	}
	minimum := time.Duration(float64(count-1) / rate * float64(time.Second))
	if res.Elapsed() < minimum {
		t.Errorf("flood of %d at %v/s took %v, less than the schedule's %v", count, rate, res.Elapsed(), minimum)
	}
	t.Logf("flood: %d datagrams in %v (%.0f/s)", res.Sent, res.Elapsed(), res.Rate())
	got := drainCount(t, fd)
	if got != count {
		t.Errorf("peer received %d datagrams, want %d", got, count)
	}
}
