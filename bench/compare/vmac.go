package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/vipd/vipd/e2e/pair"
)

// The markers of the virtual-MAC phase's section in the report.
const (
	vmacBegin = "<!-- vmac:begin -->"
	vmacEnd   = "<!-- vmac:end -->"
)

// vmacSysctls are the sysctls of a node's eth0 that keepalived's use_vmac
// sets (arp_ignore, arp_filter) or needs set (arp_announce) and never puts
// back; the phase reads them before and restores them after.
var vmacSysctls = []string{"net.ipv4.conf.eth0.arp_ignore", "net.ipv4.conf.eth0.arp_filter", "net.ipv4.conf.eth0.arp_announce"}

// vmacResults is what the vmac phase measured: both daemons with the
// virtual MAC on both nodes, at one advert interval.
type vmacResults struct {
	interval  time.Duration
	trials    int
	outage    *outageResults
	footprint []footprintResult
	took      time.Duration
	// owners names the MACs of each daemon's nodes ("a's eth0"), to say
	// what a client's entry was when it was not the virtual MAC.
	owners map[string]map[string]string
}

// vmacPhase runs the failover trials and the one-instance footprint with
// vipd's virtual_mac: true and keepalived's use_vmac on both nodes, with
// the outage and footprint phases' code. keepalived does not set
// arp_announce on its base interface; the phase sets it to 2 as an
// operator following vipd doctor would (vipd sets it itself), and puts
// back the sysctls keepalived leaves changed.
func (b *bench) vmacPhase() (res *vmacResults, err error) {
	start := time.Now()
	iv := b.opt.vmacInterval
	res = &vmacResults{interval: iv, trials: b.opt.vmacTrials, owners: map[string]map[string]string{}}
	for _, d := range b.daemons {
		d.stopAll()
		res.owners[d.name] = map[string]string{}
		for _, n := range d.p.Nodes() {
			mac, err := n.Host.MAC()
			if err != nil {
				return nil, err
			}
			res.owners[d.name][mac.String()] = n.Host.Name + "'s eth0"
		}
		if !d.vipd() {
			restore, err := keepalivedVMACSysctls(d)
			if err != nil {
				return nil, err
			}
			defer func() {
				d.stopAll()
				if rerr := restore(); rerr != nil && err == nil {
					err = rerr
				}
			}()
		}
		d.vmac = true
		defer func() { d.vmac = false }()
	}
	if res.outage, err = b.outageRun([]time.Duration{iv}, b.opt.vmacTrials); err != nil {
		return nil, err
	}
	if res.footprint, err = b.footprintConfig(iv, 1); err != nil {
		return nil, err
	}
	res.took = time.Since(start)
	return res, nil
}

// keepalivedVMACSysctls reads vmacSysctls on d's nodes and sets
// arp_announce to 2; the function it returns writes back what it read.
func keepalivedVMACSysctls(d *daemon) (func() error, error) {
	saved := map[*pair.Node]map[string]string{}
	restore := func() error {
		for n, m := range saved {
			for k, v := range m {
				if _, err := n.Host.Run("sysctl", "-qw", k+"="+v); err != nil {
					return fmt.Errorf("%s on %s: putting %s back: %w", d.name, n.Host.Name, k, err)
				}
			}
		}
		return nil
	}
	for _, n := range d.p.Nodes() {
		m := map[string]string{}
		for _, k := range vmacSysctls {
			out, err := n.Host.Run("sysctl", "-n", k)
			if err != nil {
				return nil, errors.Join(fmt.Errorf("%s on %s: %w", d.name, n.Host.Name, err), restore())
			}
			m[k] = strings.TrimSpace(out)
		}
		saved[n] = m
		if _, err := n.Host.Run("sysctl", "-qw", "net.ipv4.conf.eth0.arp_announce=2"); err != nil {
			return nil, errors.Join(fmt.Errorf("%s on %s: %w", d.name, n.Host.Name, err), restore())
		}
	}
	return restore, nil
}

// clientEntry has the client ping the VIP until it replies (up to 2 s)
// and returns the client's neighbour entry for it: the MAC that
// answered.
func (d *daemon) clientEntry() (string, error) {
	probe, err := d.p.Client.StartProbe(d.vip(), pair.ProbeInterval)
	if err != nil {
		return "", err
	}
	deadline := time.Now().Add(2 * time.Second)
	for probe.Snapshot().Received == 0 && time.Now().Before(deadline) {
		sleep(10 * time.Millisecond)
	}
	if r := probe.Stop(); r.Received == 0 {
		return "", fmt.Errorf("the client got no reply from %s in 2s (logs in %s)", d.vip(), d.dir)
	}
	return d.p.ClientNeighbour(d.vip())
}

// modeNote marks the progress lines of the virtual-MAC and IPv6 modes.
func (b *bench) modeNote() string {
	switch {
	case len(b.daemons) == 0:
	case b.daemons[0].vmac:
		return " (virtual MAC)"
	case b.daemons[0].ipv6:
		return " (IPv6)"
	}
	return ""
}

// macNote is a progress line's note of a client entry read ("" when not
// read).
func macNote(what, mac string) string {
	if mac == "" {
		return ""
	}
	tag := ""
	if mac == pair.VirtualMAC.String() {
		tag = " (virtual)"
	}
	return fmt.Sprintf(", %s %s%s", what, mac, tag)
}

// entryCounts counts the trials whose entry (what picks it) was the
// virtual MAC, and names the others by owners: "a's eth0 ×2".
func entryCounts(ts []trialResult, pick func(trialResult) string, owners map[string]string) (onVMAC int, others []string) {
	count := map[string]int{}
	for _, t := range ts {
		mac := pick(t)
		if mac == pair.VirtualMAC.String() {
			onVMAC++
			continue
		}
		name := owners[mac]
		switch {
		case mac == "":
			name = "no entry"
		case name == "":
			name = mac
		}
		count[name]++
	}
	for name, n := range count {
		others = append(others, fmt.Sprintf("%s ×%d", name, n))
	}
	slices.Sort(others)
	return onVMAC, others
}

func macFailoverOf(t trialResult) string { return t.macFailover }
func macRepairOf(t trialResult) string   { return t.macRepair }

// vmacSection writes the virtual-MAC phase's section of the report.
func (b *bench) vmacSection(w io.Writer) {
	r := b.vmac
	iv := r.interval
	fmt.Fprintf(w, "## Virtual MAC: vipd's virtual_mac beside keepalived's use_vmac\n\n")
	fmt.Fprintf(w, "Written by `bench/compare`'s vmac phase (%s UTC, the phase took %v); a new run of the phase replaces this section and keeps the rest of the file. "+
		"The same labs and pairs as the comparison above (two nodes of the same daemon, VRRPv3, a at priority %d, b at %d), "+
		"with the VIP on a macvlan with RFC 5798's virtual MAC %s on both nodes of each pair: vipd with `virtual_mac: true` "+
		"(its macvlan %s, bridge mode; vipd sets arp_ignore, arp_filter and arp_announce on eth0 itself and puts them back at stop), "+
		"keepalived with `use_vmac %s`, and arp_announce=2 on its eth0 set by the benchmark as an operator following `vipd doctor` would: "+
		"keepalived sets arp_ignore and arp_filter but not arp_announce, and without it the node's own ARP requests name the VIP with eth0's MAC and the client leaves the virtual MAC. "+
		"Adverts every %v. Times are in milliseconds, memory in MB (10^6 bytes), CPU in cores.\n\n",
		b.start.UTC().Format("2006-01-02 15:04"), r.took.Round(time.Second), prioMaster, prioBackup,
		pair.VirtualMAC, pair.VMACLink, pair.VMACLink, iv)
	b.machineLine(w)
	fmt.Fprintf(w, "**Reproduce:** `sudo make bench` runs this phase after the others (%s); alone: `sudo make bench COMPAREFLAGS=\"-phases vmac\"` "+
		"(`-vmac-trials 10 -vmac-interval 100ms -window 20s -rounds 1` are the defaults; `-rounds 3` takes the footprint's medians of three windows, about 3.5 minutes), which leaves the comparison's section as it is. This run: `%s`.\n\n",
		vmacCost, b.opt.command)

	fmt.Fprintf(w, "### Failover outage with the virtual MAC\n\n")
	fmt.Fprintf(w, "Measured as in the failover outage table above: the client pings the VIP every 5 ms, the outage is its longest gap between replies, "+
		"the faults are placed at the same phases after the master's advert and the client's request for both daemons; "+
		"%d trials per row. Gratuitous ARP and takeover are from the master's last advert to the new master's first gratuitous ARP from the virtual MAC and its first advert, as the client heard them (median, max). "+
		"After each failover, once the client has had replies from b for 150 ms, the benchmark reads the client's neighbour entry for the VIP (`ip neigh`); "+
		"after a is repaired (link restored, daemon restarted) and holds the VIP again, the client pings until it answers and the entry is read again. "+
		"The two counts are the trials whose entry was the virtual MAC at that reading; \"other entries\" says what the others were.\n\n", r.trials)
	b.modeOutageTable(w, r.outage, iv, "gratuitous ARP", []string{"entry on the virtual MAC after the failover", "after a took the VIP back", "other entries"},
		func(d *daemon, ts []trialResult) []string {
			after, o1 := entryCounts(ts, macFailoverOf, r.owners[d.name])
			back, o2 := entryCounts(ts, macRepairOf, r.owners[d.name])
			var others []string
			if len(o1) > 0 {
				others = append(others, "after the failover: "+strings.Join(o1, ", "))
			}
			if len(o2) > 0 {
				others = append(others, "after a took it back: "+strings.Join(o2, ", "))
			}
			return []string{fmt.Sprintf("%d/%d", after, len(ts)), fmt.Sprintf("%d/%d", back, len(ts)), strings.Join(others, "; ")}
		})
	if len(r.footprint) > 0 {
		fmt.Fprintf(w, "### One instance's CPU and memory with the virtual MAC\n\n")
		fmt.Fprintf(w, "One instance (VRID 1, macvlan %s) at %v adverts, measured as in the steady-state table above: "+
			"the pair starts fresh, settles for the backup's Master_Down_Interval + 2 s, then a %v window. %s"+
			"Compare with the rows of one instance at %v there.\n\n", vmacName(1), iv, b.opt.window, b.footprintMethod(), iv)
		footprintTable(w, r.footprint)
	}
}

// vmacCost is what the phase adds to `make bench`, measured (1m45s).
const vmacCost = "about 2 minutes on 2 CPUs"
