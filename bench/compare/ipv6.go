package main

import (
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/vipd/vipd/e2e/lab"
)

// The markers of the IPv6 phase's section in the report.
const (
	ipv6Begin = "<!-- ipv6:begin -->"
	ipv6End   = "<!-- ipv6:end -->"
)

// The IPv6 lab: the hosts' addresses in fd00:18::/64 beside their IPv4
// ones, and the VIPs from fd00:18::100 up.
var (
	vip6    = netip.MustParseAddr("fd00:18::100")
	v6Hosts = map[string]netip.Prefix{
		"a":      netip.MustParsePrefix("fd00:18::11/64"),
		"b":      netip.MustParsePrefix("fd00:18::12/64"),
		"client": netip.MustParsePrefix("fd00:18::50/64"),
	}
)

// vipPool6 is the IPv6 VIPs of the footprint runs, as many as vipPool's:
// fd00:18::100 and on.
func vipPool6() []netip.Addr {
	out := make([]netip.Addr, 0, len(vipPool()))
	a := vip6
	for range cap(out) {
		out = append(out, a)
		a = a.Next()
	}
	return out
}

// ipv6Results is what the IPv6 phase measured: both daemons with one IPv6
// instance (VRRPv3 over IPv6, the VIP an IPv6 address) at one advert
// interval.
type ipv6Results struct {
	interval  time.Duration
	trials    int
	outage    *outageResults
	footprint []footprintResult
	took      time.Duration
}

// ipv6Phase turns IPv6 on in every host of both labs (no duplicate
// address detection, no router solicitations: lab.Host.EnableIPv6) and
// runs the failover trials and the one-instance footprint with an IPv6
// VIP, with the outage and footprint phases' code.
func (b *bench) ipv6Phase() (res *ipv6Results, err error) {
	start := time.Now()
	iv := b.opt.ipv6Interval
	res = &ipv6Results{interval: iv, trials: b.opt.ipv6Trials}
	for _, d := range b.daemons {
		d.stopAll()
		for _, h := range []*lab.Host{d.p.A.Host, d.p.B.Host, d.p.Client} {
			if _, err := h.EnableIPv6(v6Hosts[h.Name]); err != nil {
				return nil, fmt.Errorf("%s: %w", d.name, err)
			}
		}
		d.ipv6 = true
		defer func() { d.ipv6 = false }()
	}
	if res.outage, err = b.outageRun([]time.Duration{iv}, b.opt.ipv6Trials); err != nil {
		return nil, err
	}
	if res.footprint, err = b.footprintConfig(iv, 1); err != nil {
		return nil, err
	}
	res.took = time.Since(start)
	return res, nil
}

// ipv6Section writes the IPv6 phase's section of the report.
func (b *bench) ipv6Section(w io.Writer) {
	r := b.ipv6
	iv := r.interval
	fmt.Fprintf(w, "## IPv6: vipd beside keepalived over IPv6\n\n")
	fmt.Fprintf(w, "Written by `bench/compare`'s ipv6 phase (%s UTC, the phase took %v); a new run of the phase replaces this section and keeps the rest of the file. "+
		"The same labs and pairs as the comparison above (two nodes of the same daemon, VRRPv3, a at priority %d, b at %d), "+
		"with IPv6 turned on in every host (%s for a, b and the client; no duplicate address detection, no router solicitations) "+
		"and one instance whose VIP is %s: both daemons run it over IPv6 (adverts from the node's link-local to ff02::12), "+
		"add the VIP without duplicate address detection and announce it with unsolicited neighbour advertisements; "+
		"keepalived's VIP is written `%s/128 dev eth0`, vipd's as the bare address. "+
		"Adverts every %v. Times are in milliseconds, memory in MB (10^6 bytes), CPU in cores.\n\n",
		b.start.UTC().Format("2006-01-02 15:04"), r.took.Round(time.Second), prioMaster, prioBackup,
		v6Hosts["a"].Masked(), vip6, vip6, iv)
	b.machineLine(w)
	fmt.Fprintf(w, "**Reproduce:** `sudo make bench` runs this phase last (%s); alone: `sudo make bench COMPAREFLAGS=\"-phases ipv6\"` "+
		"(`-ipv6-trials 10 -ipv6-interval 100ms -window 20s -rounds 1` are the defaults), which leaves the other sections as they are. This run: `%s`.\n\n",
		ipv6Cost, b.opt.command)

	fmt.Fprintf(w, "### Failover outage over IPv6\n\n")
	fmt.Fprintf(w, "Measured as in the failover outage table above, with ping6: the client pings the VIP every 5 ms, the outage is its longest gap between replies, "+
		"the faults are placed at the same phases after the master's advert and the client's request for both daemons; "+
		"%d trials per row. Neighbour advertisement and takeover are from the master's last advert to the new master's first unsolicited neighbour advertisement "+
		"for the VIP naming its MAC and its first advert, as the client heard them (median, max).\n\n", r.trials)
	b.modeOutageTable(w, r.outage, iv, "neighbour advertisement", nil, func(*daemon, []trialResult) []string { return nil })
	if len(r.footprint) > 0 {
		fmt.Fprintf(w, "### One IPv6 instance's CPU and memory\n\n")
		fmt.Fprintf(w, "One instance (VRID 1, VIP %s) at %v adverts, measured as in the steady-state table above: "+
			"the pair starts fresh, settles for the backup's Master_Down_Interval + 2 s, then a %v window. %s"+
			"Compare with the rows of one IPv4 instance at %v there.\n\n", vip6, iv, b.opt.window, b.footprintMethod(), iv)
		footprintTable(w, r.footprint)
	}
}

// ipv6Cost is what the phase adds to `make bench`, measured.
const ipv6Cost = "about 2 minutes on 2 CPUs"
