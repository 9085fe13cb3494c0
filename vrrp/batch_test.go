package vrrp

import (
	"net"
	"net/netip"
	"os"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

func TestParseIPv4(t *testing.T) {
	hdr := func(ihl, total int, ttl byte) []byte {
		b := make([]byte, 40)
		b[0] = 0x40 | byte(ihl/4)
		b[2], b[3] = byte(total>>8), byte(total)
		b[8] = ttl
		copy(b[12:], []byte{198, 18, 0, 11, 224, 0, 0, 18})
		for i := ihl; i < len(b); i++ {
			b[i] = byte(i)
		}
		return b
	}
	payload, src, dst, ttl, ok := ParseIPv4(hdr(20, 36, 255))
	if !ok || len(payload) != 16 || payload[0] != 20 || src != netip.MustParseAddr("198.18.0.11") || dst != GroupV4 || ttl != 255 {
		t.Errorf("plain header: %v %v %v %d %v", payload, src, dst, ttl, ok)
	}
	if payload, _, _, _, ok := ParseIPv4(hdr(24, 40, 64)); !ok || len(payload) != 16 || payload[0] != 24 {
		t.Errorf("header with options: %v %v", payload, ok)
	}
	for name, b := range map[string][]byte{
		"short":           make([]byte, 19),
		"IPv6":            append([]byte{0x60}, make([]byte, 39)...),
		"ihl too small":   hdr(16, 36, 255),
		"total too long":  hdr(20, 41, 255),
		"total below ihl": hdr(24, 20, 255),
	} {
		if _, _, _, _, ok := ParseIPv4(b); ok {
			t.Errorf("%s: accepted", name)
		}
	}
}

// inNetns runs body on a locked thread in a fresh network namespace with
// loopback up; sockets opened there stay in it.
func inNetns(t *testing.T, body func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("VIPD_LAB") == "required" {
			t.Fatal("VIPD_LAB=required but not root")
		}
		t.Skip("needs root for a network namespace")
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	ns, err := netns.New()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer func() {
		ns.Close()
		if err := netns.Set(orig); err != nil {
			t.Errorf("restoring namespace: %v", err) // the thread stays locked and is discarded
			return
		}
		orig.Close()
		runtime.UnlockOSThread()
	}()
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	body()
}

// Adverts queued and flushed with sendmmsg come back through recvmmsg
// intact, with the source from IP_PKTINFO, TTL 255, and no allocation.
func TestBatchRoundTripWithoutAllocation(t *testing.T) {
	inNetns(t, func() {
		lo, err := net.InterfaceByName("lo")
		if err != nil {
			t.Fatal(err)
		}
		c, err := ListenConn(lo)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		local := netip.MustParseAddr("127.0.0.1")
		a := Advert{Version: 3, VRID: 51, Priority: 100, Interval: 100e6, Addresses: []netip.Addr{netip.MustParseAddr("198.18.0.100")}}
		msg, err := a.AppendMarshal(nil, ChecksumPseudoHeader, local, local)
		if err != nil {
			t.Fatal(err)
		}
		rb := NewRecvBatch()
		var got Advert
		roundTrip := func(n int) {
			for i := 0; i < n; i++ {
				if err := c.Queue(msg, local, local); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.Flush(); err != nil {
				t.Fatal(err)
			}
			seen := 0
			for seen < n {
				if err := c.ReadBatch(rb); err != nil {
					t.Fatal(err)
				}
				for i := 0; i < rb.N; i++ {
					b, src, dst, ttl, ok := ParseIPv4(rb.Datagram(i))
					if !ok || src != local || dst != local || ttl != TTL {
						t.Fatalf("datagram %d: ok %v src %v dst %v ttl %d", i, ok, src, dst, ttl)
					}
					if _, err := got.Unmarshal(b, src, dst); err != nil || got.VRID != 51 {
						t.Fatalf("datagram %d: %v %+v", i, err, got)
					}
				}
				seen += rb.N
			}
		}
		roundTrip(batchSize + 5) // more than one batch
		if allocs := testing.AllocsPerRun(50, func() { roundTrip(8) }); allocs != 0 {
			t.Errorf("a batch round trip allocates %.1f times, want 0", allocs)
		}
	})
}
