package e2e

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/e2e/lab"
	"github.com/vipd/vipd/e2e/pair"
)

// uni6Extra is the instance keys of an IPv6 instance advertising to peer,
// from src when it is valid (source_address).
func uni6Extra(peer, src netip.Addr) string {
	s := fmt.Sprintf("    unicast_peers: [\"%s\"]\n", peer)
	if src.IsValid() {
		s += fmt.Sprintf("    source_address: \"%s\"\n", src)
	}
	return s
}

// uni6Status is what these tests read of `vipd status --json`.
type uni6Status struct {
	Instances []struct {
		SourceAddress string            `json:"source_address"`
		MasterAddress string            `json:"master_address"`
		Dropped       map[string]uint64 `json:"dropped"`
		Counters      struct {
			AdvertsReceived uint64 `json:"adverts_received"`
		} `json:"counters"`
	} `json:"instances"`
}

// assertUni6Status checks that vipd on n advertises from src, has
// accepted adverts if received, and counted no drop.
func assertUni6Status(t *testing.T, p *pair.Pair, n *pair.Node, src netip.Addr, received bool) {
	t.Helper()
	s := statusInto[uni6Status](t, p, n)
	if len(s.Instances) != 1 {
		t.Fatalf("status of %s has %d instances", n.Host.Name, len(s.Instances))
	}
	in := s.Instances[0]
	if in.SourceAddress != src.String() {
		t.Errorf("%s: status source_address %q, want %s", n.Host.Name, in.SourceAddress, src)
	}
	if received && in.Counters.AdvertsReceived == 0 {
		t.Errorf("%s accepted no advert", n.Host.Name)
	}
	for r, c := range in.Dropped {
		if c > 0 {
			t.Errorf("%s dropped %d packets as %s", n.Host.Name, c, r)
		}
	}
}

// assertUnicastAdverts checks the adverts a watch on one node's eth0 saw:
// every one for VRID 51 goes between the two sources (each to the other),
// never to ff02::12, with hop limit 255, and both sources sent some. It
// returns how many it saw by source.
func assertUnicastAdverts(t *testing.T, w *lab.AdvertWatch, src1, src2 netip.Addr) map[netip.Addr]int {
	t.Helper()
	from := map[netip.Addr]int{}
	for _, a := range w.Adverts() {
		if a.VRID != 51 {
			continue
		}
		ok := (a.Src == src1 && a.Dst == src2) || (a.Src == src2 && a.Dst == src1)
		if !ok || a.HopLimit != 255 {
			t.Errorf("advert %s → %s (hop limit %d, priority %d): want unicast between %s and %s, hop limit 255", a.Src, a.Dst, a.HopLimit, a.Priority, src1, src2)
			continue
		}
		from[a.Src]++
	}
	if from[src1] == 0 || from[src2] == 0 {
		t.Errorf("adverts by source %v: want both %s and %s", from, src1, src2)
	}
	return from
}

// assertNoMulticastAdverts fails if w saw an advert to ff02::12 or
// 224.0.0.18.
func assertNoMulticastAdverts(t *testing.T, w *lab.AdvertWatch, where string) {
	t.Helper()
	for _, a := range w.Adverts() {
		if a.Dst.IsMulticast() {
			t.Errorf("%s saw a multicast advert %s → %s (VRID %d)", where, a.Src, a.Dst, a.VRID)
		}
	}
}

// A vipd pair over IPv6 with unicast_peers (fd00:18::11 ↔ fd00:18::12),
// first from the interfaces' global addresses (no source_address), then
// with source_address set to a second address: the adverts go unicast to
// the peer from that address with hop limit 255 (a packet socket on b's
// eth0 sees both directions; none goes to ff02::12, on b nor on the
// client); a link cut moves the VIP within Master_Down_Interval + 30 ms and
// a graceful stop within 15 ms, the client's neighbour entry following each
// time; neither node drops an advert.
func TestIPv6UnicastPair(t *testing.T) {
	for _, tc := range []struct {
		name, short string
		srcA, srcB  netip.Addr // source_address, none if invalid
	}{
		{"interface-address", "u6i", netip.Addr{}, netip.Addr{}},
		{"source_address", "u6s", netip.MustParseAddr("fd00:18::21"), netip.MustParseAddr("fd00:18::22")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPair6(t, tc.short)
			fromA, fromB := v6Addrs["a"].Addr(), v6Addrs["b"].Addr()
			if tc.srcA.IsValid() {
				fromA, fromB = tc.srcA, tc.srcB
				for _, x := range []struct {
					n *pair.Node
					a netip.Addr
				}{{p.A, tc.srcA}, {p.B, tc.srcB}} {
					_, err := x.n.Host.Run("ip", "-6", "addr", "add", x.a.String()+"/64", "dev", "eth0", "nodad")
					must(t, err)
				}
			}
			onB, err := p.B.Host.WatchAdverts()
			must(t, err)
			defer onB.Stop()
			onClient, err := p.Client.WatchAdverts()
			must(t, err)
			defer onClient.Stop()

			configure6Extra(t, p, p.A, 150, uni6Extra(fromB, tc.srcA), vip6.String())
			configure6Extra(t, p, p.B, 100, uni6Extra(fromA, tc.srcB), vip6.String())
			must(t, p.Start(p.A))
			must(t, p.Start(p.B))
			must(t, p.WaitHolder(p.A, vip6, 5*time.Second))
			if ok, err := p.B.Host.HasAddr(vip6); err != nil || ok {
				t.Fatalf("the backup holds %s too (err %v)", vip6, err)
			}
			assertClientOn(t, p, p.A, vip6)
			time.Sleep(300 * time.Millisecond)
			assertUni6Status(t, p, p.A, fromA, false) // the master from the start
			assertUni6Status(t, p, p.B, fromB, true)
			if s := statusInto[uni6Status](t, p, p.B); s.Instances[0].MasterAddress != fromA.String() {
				t.Errorf("b's status: master %q, want %s", s.Instances[0].MasterAddress, fromA)
			}

			// vipd doctor on the backup names the address the adverts
			// leave from, and fails nothing.
			doc, code := doctor(t, p, p.B)
			if want := "sends IPv6 unicast adverts to its peers from " + fromB.String(); !tc.srcB.IsValid() && !strings.Contains(doc, want) {
				t.Errorf("doctor on the IPv6 unicast backup (exit %d) lacks %q:\n%s", code, want, doc)
			}
			if !tc.srcB.IsValid() && strings.Contains(doc, "sends adverts from its link-local") {
				t.Errorf("doctor on the IPv6 unicast backup names a link-local source, which no instance there uses:\n%s", doc)
			}
			if strings.Contains(doc, "FAIL") {
				t.Errorf("doctor on the IPv6 unicast backup (exit %d) fails something:\n%s", code, doc)
			}

			bound := pair.MasterDownInterval(100, interval)
			_, o := failoverVIPs(t, p, p.B, []netip.Addr{vip6}, p.A.Host.CutLink)
			t.Logf("IPv6 unicast (%s) link cut: client gap %v (bound %v + %v), landing → first reply %v", tc.name, o[vip6].gap, bound, v6Bound, o[vip6].landToReply)
			if o[vip6].gap > bound+v6Bound {
				t.Errorf("client gap %v after a link cut, want at most %v + %v", o[vip6].gap, bound, v6Bound)
			}
			assertClientOn(t, p, p.B, vip6)
			must(t, p.A.Host.RestoreLink())
			must(t, p.WaitHolder(p.A, vip6, 5*time.Second))
			assertClientOn(t, p, p.A, vip6)

			old, err := p.A.Host.WatchAddr(vip6)
			must(t, err)
			defer old.Stop()
			at, o := failoverVIPs(t, p, p.B, []netip.Addr{vip6}, func() error { return p.Stop(p.A) })
			var released time.Time
			for _, ev := range old.Events() {
				if !ev.Added && ev.Time.After(at) {
					released = ev.Time
				}
			}
			t.Logf("IPv6 unicast (%s) graceful stop: client gap %v, VIP on b %v after the signal, off a %v after it", tc.name, o[vip6].gap, o[vip6].land.Sub(at), released.Sub(at))
			if o[vip6].gap > v6StopGap {
				t.Errorf("client gap %v after a graceful stop, want at most %v", o[vip6].gap, v6StopGap)
			}
			switch {
			case released.IsZero():
				t.Error("no address event showed the VIP leaving a")
			case released.Before(o[vip6].land.Add(-watchSkew)):
				t.Errorf("a let the VIP go %v before b took it, want after", o[vip6].land.Sub(released))
			}
			assertClientOn(t, p, p.B, vip6)
			time.Sleep(200 * time.Millisecond) // b's adverts as master
			from := assertUnicastAdverts(t, onB, fromA, fromB)
			assertNoMulticastAdverts(t, onB, "b")
			assertNoMulticastAdverts(t, onClient, "the client")
			t.Logf("adverts on b's eth0 by source: %v; the client saw %d", from, len(onClient.Adverts()))
			assertUni6Status(t, p, p.B, fromB, true)
			assertNoDrops(t, p)
		})
	}
}

// keepalived 2.2.7 as the peer over IPv6 unicast (unicast_src_ip,
// unicast_peer, check_unicast_src so that it checks vipd's source too, and
// unicast_ttl 255: without it keepalived sends IPv6 unicast adverts with
// hop limit 64, which vipd drops as it does any advert not sent on the
// link with 255; see TestScenarioIPv6UnicastKeepalivedDefaultsExplained),
// each daemon in turn the preferred master: the adverts go unicast both
// ways, a link cut and a graceful stop hand over within the bounds, the
// client's neighbour entry follows, the master takes the VIP back, and
// neither daemon complains (keepalived's log, vipd's drop counters).
func TestIPv6UnicastKeepalivedHandOver(t *testing.T) {
	for _, master := range []string{vipd, keepalived} {
		t.Run(master+"-master", func(t *testing.T) {
			p := newInteropPair(t, "u6"+master[:1])
			for _, h := range []*lab.Host{p.A.Host, p.B.Host, p.Client} {
				if _, err := h.EnableIPv6(v6Addrs[h.Name]); err != nil {
					t.Fatal(err)
				}
			}
			onClient, err := p.Client.WatchAdverts()
			must(t, err)
			defer onClient.Stop()
			addr := func(n *pair.Node) netip.Addr { return v6Addrs[n.Host.Name].Addr() }
			run := func(n *pair.Node, d string, prio uint8) {
				t.Helper()
				peer := addr(p.A)
				if n == p.A {
					peer = addr(p.B)
				}
				if d == vipd {
					configure6Extra(t, p, n, prio, uni6Extra(peer, netip.Addr{}), vip6.String())
					must(t, p.Start(n))
					return
				}
				extra := fmt.Sprintf("    check_unicast_src\n    unicast_ttl 255\n    unicast_src_ip %s\n    unicast_peer {\n        %s\n    }\n", addr(n), peer)
				must(t, p.ConfigureKeepalived(n, pair.KeepalivedConfig{Priority: prio, AdvertInterval: interval, VIPs: []netip.Addr{vip6}, Extra: extra}))
				must(t, p.StartKeepalived(n))
			}
			backup := other(master)
			vipdNode := p.A
			if master != vipd {
				vipdNode = p.B
			}
			run(p.B, backup, 100)
			must(t, p.WaitHolder(p.B, vip6, 5*time.Second))
			onB, err := p.B.Host.WatchAdverts()
			must(t, err)
			defer onB.Stop()
			run(p.A, master, 150)
			must(t, p.WaitHolder(p.A, vip6, 5*time.Second))
			assertClientOn(t, p, p.A, vip6)
			time.Sleep(300 * time.Millisecond)
			assertUni6Status(t, p, vipdNode, addr(vipdNode), true)

			bound := pair.MasterDownInterval(100, interval)
			_, o := failoverVIPs(t, p, p.B, []netip.Addr{vip6}, p.A.Host.CutLink)
			t.Logf("%s→%s IPv6 unicast link cut: client gap %v (bound %v + %v)", master, backup, o[vip6].gap, bound, v6Bound)
			if o[vip6].gap > bound+v6Bound {
				t.Errorf("%s→%s link cut: client gap %v, want at most %v + %v", master, backup, o[vip6].gap, bound, v6Bound)
			}
			assertClientOn(t, p, p.B, vip6)
			must(t, p.A.Host.RestoreLink())
			must(t, p.WaitHolder(p.A, vip6, 5*time.Second))
			assertClientOn(t, p, p.A, vip6)

			skew := pair.SkewTime(100, interval)
			_, o = failoverVIPs(t, p, p.B, []netip.Addr{vip6}, func() error { return p.Stop(p.A) })
			t.Logf("%s→%s IPv6 unicast graceful stop: client gap %v (Skew_Time %v)", master, backup, o[vip6].gap, skew)
			want := skew + v6Bound // keepalived lets go at once: the client waits out Skew_Time
			if master == vipd {
				want = v6StopGap // vipd makes before it breaks, whoever takes over
			}
			if o[vip6].gap > want {
				t.Errorf("%s→%s graceful stop: client gap %v, want at most %v", master, backup, o[vip6].gap, want)
			}
			assertClientOn(t, p, p.B, vip6)
			must(t, p.Restart(p.A))
			must(t, p.WaitHolder(p.A, vip6, 5*time.Second))
			assertClientOn(t, p, p.A, vip6)
			time.Sleep(300 * time.Millisecond)

			assertUnicastAdverts(t, onB, addr(p.A), addr(p.B))
			assertNoMulticastAdverts(t, onB, "b")
			assertNoMulticastAdverts(t, onClient, "the client")
			assertUni6Status(t, p, vipdNode, addr(vipdNode), true)
			if c := peerComplaints(t, p); len(c) > 0 {
				t.Errorf("complaints:\n%s", strings.Join(c, "\n"))
			}
		})
	}
}
