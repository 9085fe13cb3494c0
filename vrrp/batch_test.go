package vrrp

import (
	"net"
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/vipd/vipd/e2e/netnstest"
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

// inNetns runs body in a fresh network namespace with loopback up;
// sockets opened there stay in it.
func inNetns(t *testing.T, body func()) {
	t.Helper()
	netnstest.Run(t, func(netns.NsHandle) { body() })
}

// loopbackConn listens on lo (in a test's namespace) and returns an
// advert from 127.0.0.1 to itself.
func loopbackConn(t *testing.T) (c *Conn, msg []byte, local netip.Addr) {
	t.Helper()
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if c, err = ListenConn(lo); err != nil {
		t.Fatal(err)
	}
	local = netip.MustParseAddr("127.0.0.1")
	a := Advert{Version: 3, VRID: 51, Priority: 100, Interval: 100e6, Addresses: []netip.Addr{netip.MustParseAddr("198.18.0.100")}}
	if msg, err = a.AppendMarshal(nil, ChecksumPseudoHeader, local, local); err != nil {
		c.Close()
		t.Fatal(err)
	}
	return c, msg, local
}

// Adverts queued and flushed with sendmmsg come back through recvmmsg
// intact, with the source from IP_PKTINFO, TTL 255, their receive times,
// and no allocation.
func TestBatchRoundTripWithoutAllocation(t *testing.T) {
	inNetns(t, func() {
		c, msg, local := loopbackConn(t)
		defer c.Close()
		rb := NewRecvBatch()
		var got Advert
		roundTrip := func(n int) {
			for i := 0; i < n; i++ {
				if err := c.Queue(msg, local, local, nil); err != nil {
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
					if now := time.Now(); rb.Received(i, now).After(now) {
						t.Fatalf("datagram %d: received after it was read", i)
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

// Each datagram comes with the kernel's receive time: a datagram that
// waited in the socket is dated when it arrived, not when it was read.
func TestReceivedIsArrivalTime(t *testing.T) {
	inNetns(t, func() {
		c, msg, local := loopbackConn(t)
		defer c.Close()
		// The kernel turns its receive stamps on a little after the first
		// socket asks (a deferred static key); until then a datagram is
		// stamped when it is read.
		time.Sleep(50 * time.Millisecond)
		const wait = time.Millisecond
		sent := time.Now()
		if err := c.SendTo(msg, local, local); err != nil {
			t.Fatal(err)
		}
		time.Sleep(wait)
		rb := NewRecvBatch()
		if err := c.ReadBatch(rb); err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		if rb.N != 1 {
			t.Fatalf("read %d datagrams, want 1", rb.N)
		}
		got := rb.Received(0, now)
		if got.Before(sent) || now.Sub(got) < wait {
			t.Errorf("received %v after sending and %v before reading, want ≥ 0 and ≥ %v", got.Sub(sent), now.Sub(got), wait)
		}
	})
}

// Received trusts the kernel's stamp only within maxRxAge of now, and
// falls back to now without one.
func TestReceivedBounds(t *testing.T) {
	now := time.Now()
	stamp := func(b *RecvBatch, at time.Time) {
		c := (*unix.Cmsghdr)(unsafe.Pointer(&b.oob[0][0]))
		c.Level, c.Type = unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS
		c.SetLen(unix.CmsgLen(int(unsafe.Sizeof(unix.Timespec{}))))
		ts := (*unix.Timespec)(unsafe.Pointer(&b.oob[0][unix.CmsgLen(0)]))
		*ts = unix.NsecToTimespec(at.UnixNano())
		b.hdr[0].Hdr.SetControllen(unix.CmsgSpace(int(unsafe.Sizeof(unix.Timespec{}))))
	}
	for _, tc := range []struct {
		name  string
		setup func(*RecvBatch)
		want  time.Duration // before now
	}{
		{"no control message", func(b *RecvBatch) { b.hdr[0].Hdr.SetControllen(0) }, 0},
		{"arrived 300µs ago", func(b *RecvBatch) { stamp(b, now.Add(-300*time.Microsecond)) }, 300 * time.Microsecond},
		{"stamp older than maxRxAge", func(b *RecvBatch) { stamp(b, now.Add(-time.Second)) }, maxRxAge},
		{"stamp in the future", func(b *RecvBatch) { stamp(b, now.Add(time.Second)) }, 0},
		{"another control message", func(b *RecvBatch) {
			stamp(b, now.Add(-300*time.Microsecond))
			(*unix.Cmsghdr)(unsafe.Pointer(&b.oob[0][0])).Type = unix.SCM_RIGHTS
		}, 0},
	} {
		b := NewRecvBatch()
		tc.setup(b)
		got := now.Sub(b.Received(0, now))
		if d := got - tc.want; d < -time.Microsecond || d > time.Microsecond {
			t.Errorf("%s: received %v before now, want %v", tc.name, got, tc.want)
		}
	}
}

// Multicast adverts go out as Ethernet frames on the packet socket and
// arrive as ordinary IPv4 multicast on the peer: right header, TTL 255,
// checksum accepted by the IP stack, and no allocation per burst.
func TestFramesReachPeer(t *testing.T) {
	inNetns(t, func() {
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "fr0"}, PeerName: "fr1"}
		if err := netlink.LinkAdd(veth); err != nil {
			t.Fatal(err)
		}
		for i, name := range []string{"fr0", "fr1"} {
			l, err := netlink.LinkByName(name)
			if err != nil {
				t.Fatal(err)
			}
			a, _ := netlink.ParseAddr([]string{"198.18.0.11/24", "198.18.0.12/24"}[i])
			if err := netlink.AddrAdd(l, a); err != nil {
				t.Fatal(err)
			}
			if err := netlink.LinkSetUp(l); err != nil {
				t.Fatal(err)
			}
		}
		tx, err := net.InterfaceByName("fr0")
		if err != nil {
			t.Fatal(err)
		}
		rx, err := net.InterfaceByName("fr1")
		if err != nil {
			t.Fatal(err)
		}
		sender, err := ListenConn(tx)
		if err != nil {
			t.Fatal(err)
		}
		defer sender.Close()
		if sender.frames == nil {
			t.Fatal("no frame sender on an Ethernet interface")
		}
		receiver, err := ListenConn(rx)
		if err != nil {
			t.Fatal(err)
		}
		defer receiver.Close()
		// Not an address of this namespace: the receiving side would drop
		// a packet from one of its own addresses as a martian.
		src := netip.MustParseAddr("198.18.0.99")
		if err := receiver.c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
		a := Advert{Version: 3, VRID: 7, Priority: 150, Interval: 20e6, Addresses: []netip.Addr{netip.MustParseAddr("198.18.0.100")}}
		msg, err := a.AppendMarshal(nil, ChecksumPseudoHeader, src, GroupV4)
		if err != nil {
			t.Fatal(err)
		}
		rb := NewRecvBatch()
		var got Advert
		burst := func(n int) {
			for i := 0; i < n; i++ {
				if err := sender.Queue(msg, src, GroupV4, nil); err != nil {
					t.Fatal(err)
				}
			}
			if err := sender.Flush(); err != nil {
				t.Fatal(err)
			}
			for seen := 0; seen < n; seen += rb.N {
				if err := receiver.ReadBatch(rb); err != nil {
					t.Fatal(err)
				}
				for i := 0; i < rb.N; i++ {
					b, s, d, ttl, ok := ParseIPv4(rb.Datagram(i))
					if !ok || s != src || d != GroupV4 || ttl != TTL {
						t.Fatalf("frame %d: ok %v %v→%v ttl %d", i, ok, s, d, ttl)
					}
					if mode, err := got.Unmarshal(b, s, d); err != nil || mode != ChecksumPseudoHeader || got.VRID != 7 {
						t.Fatalf("frame %d: %v %v %+v", i, err, mode, got)
					}
				}
			}
		}
		burst(batchSize + 3)
		if allocs := testing.AllocsPerRun(20, func() { burst(16) }); allocs != 0 {
			t.Errorf("a burst of frames allocates %.1f times, want 0", allocs)
		}
	})
}

func TestIPChecksum(t *testing.T) {
	// A header from RFC 1071's worked example style: checksum of a header
	// with its checksum filled in is zero.
	h := []byte{0x45, 0xc0, 0, 0x24, 0, 1, 0, 0, 0xff, 0x70, 0, 0, 198, 18, 0, 11, 224, 0, 0, 18}
	c := ipChecksum(h)
	h[10], h[11] = byte(c>>8), byte(c)
	if got := ipChecksum(h); got != 0 {
		t.Errorf("checksum over a checksummed header = %#x, want 0", got)
	}
}

// ReadNow takes what the kernel has queued at once, with its receive
// time, and returns an empty batch rather than waiting when nothing is.
func TestReadNow(t *testing.T) {
	inNetns(t, func() {
		c, msg, local := loopbackConn(t)
		defer c.Close()
		b := NewRecvBatch()
		if err := c.ReadNow(b); err != nil || b.N != 0 {
			t.Fatalf("empty socket: N %d, err %v, want 0 and none", b.N, err)
		}
		sent := time.Now()
		for range 3 {
			if err := c.SendTo(msg, local, local); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(time.Millisecond)
		if err := c.ReadNow(b); err != nil || b.N != 3 {
			t.Fatalf("three queued: N %d, err %v, want 3 and none", b.N, err)
		}
		now := time.Now()
		for i := range b.N {
			if _, src, _, _, ok := ParseIPv4(b.Datagram(i)); !ok || src != local {
				t.Errorf("datagram %d: ok %v src %v", i, ok, src)
			}
			if got := b.Received(i, now); got.Before(sent) || !got.Before(now) {
				t.Errorf("datagram %d received %v after sending, %v before reading: want a stamp between", i, got.Sub(sent), now.Sub(got))
			}
		}
		if err := c.ReadNow(b); err != nil || b.N != 0 {
			t.Fatalf("drained socket: N %d, err %v, want 0 and none", b.N, err)
		}
	})
}
