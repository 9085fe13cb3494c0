package e2e

// Reliability cases about what a node sees of its segment and its peers: a
// hardware address that changes under a running master (8d), a
// lower-priority router that keeps advertising as master (8f), and an
// advert that reaches a backup in the last moment before its takeover (8g).

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/e2e/inject"
	"github.com/vipd/vipd/e2e/lab"
	"github.com/vipd/vipd/e2e/pair"
	"github.com/vipd/vipd/vrrp"
)

func TestReliabilityMACChange(t *testing.T) {
	p := newPair(t, "rmc")
	row := relRecord(t, "8d", "MAC changed with the link up",
		"`ip link set dev eth0 address 02:18:00:00:12:05` in the master's namespace, its link up throughout (as bonding with fail_over_mac=active does), with the kernel's own announcement of a new address (arp_notify) off, as by default, while the client pinged the VIP every 5 ms.",
		"the client's ARP entry for the VIP on the new MAC within 1 s; every advert the client receives from the master from 20 ms after the change on has the new source MAC (at least three within 500 ms); no state transition on either node; no vipd died")
	startPair(t, p, pair.NodeConfig{}, pair.NodeConfig{})
	// Only vipd may move the client: the kernel would announce the
	// interface's addresses on a new MAC with arp_notify on.
	_, err := p.A.Host.Run("sysctl", "-qw", "net.ipv4.conf.eth0.arp_notify=0")
	must(t, err)
	w, err := p.Client.WatchAdverts()
	must(t, err)
	defer w.Stop()
	trans := transitionsOf(t, p)
	probe := startProbe(t, p)
	newMAC := net.HardwareAddr{0x02, 0x18, 0x00, 0x00, 0x12, 0x05}
	changed := time.Now()
	if _, err := p.A.Host.Run("ip", "link", "set", "dev", "eth0", "address", newMAC.String()); err != nil {
		probe.Stop()
		t.Fatal(err)
	}
	moved, merr := clientMovesTo(p, newMAC, time.Second)()
	time.Sleep(time.Until(changed.Add(500 * time.Millisecond)))
	r := probe.Stop()
	if up, err := p.A.Host.Carrier(); err != nil || !up {
		t.Fatalf("the master's eth0 lost carrier (%v, %v): the case needs the link up", up, err)
	}
	var fresh, stale int
	for _, a := range w.Adverts() {
		if a.Outgoing || a.Src != p.A.Host.Addr || a.Time.Before(changed.Add(20*time.Millisecond)) {
			continue
		}
		if a.MAC.String() == newMAC.String() {
			fresh++
		} else {
			stale++
		}
	}
	arp := "never (1 s)"
	if merr == nil {
		arp = ms(moved.Sub(changed))
	}
	gap := r.LongestGap(changed.Add(-50*time.Millisecond), r.End)
	row.Figure = fmt.Sprintf("client's ARP entry on the new MAC after %s; adverts from the master after the change: %d from the new MAC, %d from the old; client gap %s", arp, fresh, stale, ms(gap))
	if merr != nil {
		t.Errorf("the client's ARP entry did not move to the new MAC: %v", merr)
	}
	if stale > 0 || fresh < 3 {
		t.Errorf("the client received %d adverts from the master's new MAC and %d from another after the change, want at least 3 and none", fresh, stale)
	}
	assertNoTransition(t, p, trans)
	assertEnd(t, p, p.A)
}

// maxAnswers bounds how many times a master answers a lower-ranked router
// that advertises throughout window: at once, then after one interval,
// then after twice as long each time; one more for the window's edges.
func maxAnswers(window time.Duration) uint64 {
	return 2 + uint64(math.Ceil(math.Log2(float64(window)/float64(interval)+1)))
}

// lowerMasterStatus is the part of `vipd status --json` case 8f reads.
type lowerMasterStatus struct {
	Instances []struct {
		LowerPriorityMaster *struct {
			Address  string `json:"address"`
			Priority uint8  `json:"priority"`
			Adverts  uint64 `json:"adverts"`
		} `json:"lower_priority_master"`
	} `json:"instances"`
}

func TestReliabilityLowerMasterPersists(t *testing.T) {
	p := newPair(t, "rlm")
	const lasting = 3 * time.Second
	row := relRecord(t, "8f", "A lower-priority router stays master",
		fmt.Sprintf("From a third namespace, valid VRID 51 adverts at priority 50 every %s for %s, as a peer that does not accept the master's adverts (FRR with another v3_checksum) sends them; garp.repeat 0, so that every gratuitous ARP counted is an answer to it.", dur(interval), dur(lasting)),
		"the master answers with backoff: at most 2 + ⌈log2(window/interval + 1)⌉ answers (2 gratuitous ARP each) instead of one per interval; status names the peer (lower_priority_master: its address and priority 50) while it advertises and not once it has been quiet for a second; the log says so once; no state transition; the master keeps the VIP alone; no vipd died")
	noRepeat := pair.NodeConfig{Extra: "    garp:\n      repeat: 0\n"}
	startPair(t, p, noRepeat, noRepeat)
	peer, err := p.Lab.AddHost("lm", "198.18.0.67/24")
	must(t, err)
	j, err := inject.Open(peer)
	must(t, err)
	defer j.Close()
	low := advertBytes(t, vrrp.Advert{Version: 3, VRID: 51, Priority: 50, Interval: interval, Addresses: []netip.Addr{pair.VIP}}, peer.Addr)
	trans := transitionsOf(t, p)
	before := relStatusOf(t, p, p.A)
	start := time.Now()
	var during lowerMasterStatus
	for i := 0; time.Since(start) < lasting; i++ {
		lab.SleepUntil(start.Add(time.Duration(i) * interval))
		must(t, j.Send(inject.Datagram{Dst: vrrp.GroupV4, Payload: low}))
		if i == int(lasting/interval)-3 {
			during = statusInto[lowerMasterStatus](t, p, p.A)
		}
	}
	window := time.Since(start)
	after := relStatusOf(t, p, p.A)
	time.Sleep(time.Second)
	quiet := statusInto[lowerMasterStatus](t, p, p.A)
	garps := after.Instances[0].Counters.GARPSent - before.Instances[0].Counters.GARPSent
	sent := after.Instances[0].Counters.AdvertsSent - before.Instances[0].Counters.AdvertsSent
	logb, err := os.ReadFile(p.A.Log)
	must(t, err)
	logged := strings.Count(string(logb), "keeps advertising as master at a lower priority")
	row.Figure = fmt.Sprintf("in %s: %d gratuitous ARP (%d answers), %d adverts sent; logged %d time(s)", ms(window), garps, garps/2, sent, logged)
	if limit := 2 * maxAnswers(window); garps > limit {
		t.Errorf("the master sent %d gratuitous ARP in %v, want at most %d (answers backing off)", garps, window, limit)
	}
	if garps < 2 {
		t.Errorf("the master sent %d gratuitous ARP, want the first lower-priority advert answered at once", garps)
	}
	if lm := during.Instances[0].LowerPriorityMaster; lm == nil || lm.Address != peer.Addr.String() || lm.Priority != 50 {
		t.Errorf("status while the peer advertised: lower_priority_master %+v, want %s at priority 50", lm, peer.Addr)
	}
	if lm := quiet.Instances[0].LowerPriorityMaster; lm != nil {
		t.Errorf("status a second after the peer went quiet: lower_priority_master %+v, want none", lm)
	}
	if logged != 1 {
		t.Errorf("the log says %d times that a peer keeps advertising at a lower priority, want once", logged)
	}
	assertNoTransition(t, p, trans)
	assertEnd(t, p, p.A)
}

func TestReliabilityAdvertInTakeoverSpin(t *testing.T) {
	p := newPair(t, "rts")
	const (
		rounds = 30
		lead   = 400 * time.Microsecond
	)
	mdi := pair.MasterDownInterval(100, interval)
	row := relRecord(t, "8g", "Advert in the last moment before a takeover",
		fmt.Sprintf("A lone vipd backup (priority 100, GOMAXPROCS=1 as vipd sets it) and, from another namespace, a master's valid priority-200 adverts, %d of them each sent to reach the backup %s before its Master_Down timer (%s after the previous one's arrival, as the backup's eth0 stamps it) runs out: inside the last millisecond, when the backup's loop waits on the CPU for the deadline.", rounds, dur(lead), dur(mdi)),
		"the backup takes over no more often than the rounds in which an advert in fact arrived after the deadline (by the kernel's stamps on the backup), and such rounds are at most half; no vipd died")
	must(t, p.Configure(p.B, pair.NodeConfig{Priority: 100, AdvertInterval: interval}))
	must(t, p.Start(p.B))
	w, err := p.B.Host.WatchAdverts()
	must(t, err)
	defer w.Stop()
	j, err := inject.Open(p.A.Host)
	must(t, err)
	defer j.Close()
	high := advertBytes(t, vrrp.Advert{Version: 3, VRID: 51, Priority: 200, Interval: interval, Addresses: []netip.Addr{pair.VIP}}, p.A.Host.Addr)
	send := func() { must(t, j.Send(inject.Datagram{Dst: vrrp.GroupV4, Payload: high})) }
	fromMaster := func(a lab.Advert) bool { return !a.Outgoing && a.Src == p.A.Host.Addr }
	// Settle: B follows the injected master.
	start := time.Now()
	for i := range 10 {
		lab.SleepUntil(start.Add(time.Duration(i) * interval))
		send()
	}
	time.Sleep(interval)
	if s := relStatusOf(t, p, p.B); s.Instances[0].State != "backup" {
		t.Fatalf("B is %s under a priority-200 master, want backup", s.Instances[0].State)
	}
	before := relStatusOf(t, p, p.B).Instances[0].Counters.Transitions["backup->master"]
	prev, err := w.Wait(fromMaster, 9, time.Second)
	must(t, err)
	late := 0
	var worst time.Duration
	for range rounds {
		lab.SleepUntil(prev.Time.Add(mdi - lead))
		send()
		a, err := w.Wait(func(a lab.Advert) bool { return fromMaster(a) && a.Time.After(prev.Time) }, 0, time.Second)
		must(t, err)
		if gap := a.Time.Sub(prev.Time); gap >= mdi {
			late++
			worst = max(worst, gap-mdi)
		}
		prev = a
	}
	time.Sleep(50 * time.Millisecond)
	takeovers := relStatusOf(t, p, p.B).Instances[0].Counters.Transitions["backup->master"] - before
	row.Figure = fmt.Sprintf("%d rounds: %d takeovers; %d adverts arrived after the deadline (the latest by %s)", rounds, takeovers, late, ms(worst))
	if takeovers > uint64(late) {
		t.Errorf("the backup took over %d times in %d rounds, though only %d adverts arrived after its deadline: it missed adverts that arrived before", takeovers, rounds, late)
	}
	if late > rounds/2 {
		t.Errorf("%d of %d adverts arrived after the deadline: the lab could not place them inside the last millisecond, the case proves nothing", late, rounds)
	}
	assertAlive(t, p.B)
}
