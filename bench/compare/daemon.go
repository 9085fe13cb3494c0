package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/vipd/vipd/e2e/pair"
)

// daemon is one daemon under test and the lab pair it runs on: two nodes
// of the same daemon, A (priority 150, the master) and B (100).
type daemon struct {
	name string // "vipd" or "keepalived"
	p    *pair.Pair
	dir  string
	bin  string // vipd's binary, for `vipd status`
	// vmac puts the VIPs on a macvlan with the virtual MAC: vipd's
	// virtual_mac: true, keepalived's use_vmac (the vmac phase).
	vmac bool
	// ipv6 gives the instances IPv6 VIPs, so that they run over IPv6
	// (the ipv6 phase; the hosts have IPv6 turned on first).
	ipv6 bool
}

func (d *daemon) vipd() bool { return d.name == "vipd" }

// vip is the VIP of the one-instance runs: pair.VIP, or vip6 in the
// IPv6 mode.
func (d *daemon) vip() netip.Addr { return d.pool()[0] }

// pool is the VIPs of the many-instance runs in d's mode.
func (d *daemon) pool() []netip.Addr {
	if d.ipv6 {
		return vipPool6()
	}
	return vipPool()
}

// configureOne writes n's configuration for one instance (VRID 51, VIP
// d.vip()) at interval, the pair's usual instance.
func (d *daemon) configureOne(n *pair.Node, prio uint8, interval time.Duration) error {
	vips := []netip.Addr{d.vip()}
	if d.vipd() {
		return d.p.Configure(n, pair.NodeConfig{Priority: prio, AdvertInterval: interval, Version: 3, VirtualMAC: d.vmac, VIPs: vips})
	}
	return d.p.ConfigureKeepalived(n, pair.KeepalivedConfig{Priority: prio, AdvertInterval: interval, Version: 3, VirtualMAC: d.vmac, VIPs: vips})
}

// vmacName is the macvlan of VRID vrid in the virtual-MAC mode, for both
// daemons: vipd's default virtual_mac_name, given to keepalived's
// use_vmac.
func vmacName(vrid int) string { return fmt.Sprintf("vrrp4.%d", vrid) }

// configureMany writes n's configuration for count instances, VRIDs
// 1..count, each with its own VIP from d.pool(). Both daemons get the same
// gratuitous ARP schedule: a burst on becoming master and one more a
// second later, then none. With d.vmac each instance has its macvlan,
// vmacName of its VRID.
func (d *daemon) configureMany(n *pair.Node, prio uint8, interval time.Duration, count int) error {
	vips := d.pool()[:count]
	var b strings.Builder
	if d.vipd() {
		fmt.Fprintf(&b, "metrics_listen: \"\"\ncontrol_socket: %s\nstate_dir: %s\ninstances:\n",
			d.socket(n), filepath.Join(d.dir, n.Host.Name+"-state"))
		for i, v := range vips {
			fmt.Fprintf(&b, "  - name: vr%d\n    interface: eth0\n    vrid: %d\n    priority: %d\n    version: 3\n"+
				"    advert_interval: %s\n    garp:\n      repeat: 1\n      interval: 1s\n",
				i+1, i+1, prio, interval)
			if d.vmac {
				b.WriteString("    virtual_mac: true\n")
			}
			fmt.Fprintf(&b, "    vips:\n      - address: %s\n        description: bench\n        owner: bench\n", v)
		}
		n.Priority = prio
		return os.WriteFile(n.Config, []byte(b.String()), 0o600)
	}
	fmt.Fprintf(&b, "global_defs {\n    router_id %s\n    vrrp_version 3\n}\n", n.Host.NS)
	for i, v := range vips {
		fmt.Fprintf(&b, "vrrp_instance vr%d {\n    state BACKUP\n    interface eth0\n    virtual_router_id %d\n"+
			"    priority %d\n    advert_int %s\n    garp_master_delay 1\n    garp_master_repeat 1\n"+
			"    garp_master_refresh 0\n",
			i+1, i+1, prio, strconv.FormatFloat(interval.Seconds(), 'f', -1, 64))
		if d.vmac {
			fmt.Fprintf(&b, "    use_vmac %s\n", vmacName(i+1))
		}
		fmt.Fprintf(&b, "    virtual_ipaddress {\n        %s dev eth0\n    }\n}\n", netip.PrefixFrom(v, v.BitLen()))
	}
	n.Priority = prio
	return os.WriteFile(d.p.KeepalivedConf(n), []byte(b.String()), 0o600)
}

// vipPool is the VIPs of the footprint runs: 198.18.0.100 up to .254, then
// .1 up, skipping the lab hosts' addresses; 250 in all. 255 instances with
// a VIP each do not fit in the lab's /24 (vipd refuses a VIP in two
// instances), so 250 is the largest run.
func vipPool() []netip.Addr {
	hosts := map[netip.Addr]bool{}
	for _, h := range []string{pair.AddrA, pair.AddrB, pair.AddrClient} {
		hosts[netip.MustParsePrefix(h).Addr()] = true
	}
	var out []netip.Addr
	add := func(from, to int) {
		for i := from; i <= to; i++ {
			a := netip.AddrFrom4([4]byte{198, 18, 0, byte(i)})
			if !hosts[a] && len(out) < 250 {
				out = append(out, a)
			}
		}
	}
	add(100, 254)
	add(1, 99)
	return out
}

// start runs the daemon on n with the configuration last written.
func (d *daemon) start(n *pair.Node) error {
	if d.vipd() {
		return d.p.Start(n)
	}
	return d.p.StartKeepalived(n)
}

// running reports whether the daemon runs on n.
func running(n *pair.Node) bool { return n.Proc != nil && !n.Proc.Exited() }

// stopAll stops the daemon on both nodes, if it runs; a daemon that does
// not stop cleanly is killed.
func (d *daemon) stopAll() {
	for _, n := range d.p.Nodes() {
		if !running(n) {
			continue
		}
		if err := d.p.Stop(n); err != nil {
			fmt.Fprintf(os.Stderr, "%s on %s: %v; killing it\n", d.name, n.Host.Name, err)
			if err := d.p.Kill(n); err != nil {
				fmt.Fprintf(os.Stderr, "%s on %s: %v\n", d.name, n.Host.Name, err)
			}
		}
	}
}

// startPair starts both nodes and waits until every VIP in vips is on A
// and none on B.
func (d *daemon) startPair(vips []netip.Addr, timeout time.Duration) error {
	for _, n := range d.p.Nodes() {
		if err := d.start(n); err != nil {
			return fmt.Errorf("%s on %s: %w", d.name, n.Host.Name, err)
		}
	}
	return d.waitElected(vips, timeout)
}

// waitElected waits until every VIP in vips is on A and none on B.
func (d *daemon) waitElected(vips []netip.Addr, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		onA, err := vipsOn(d.p.A, vips)
		if err != nil {
			return err
		}
		onB, err := vipsOn(d.p.B, vips)
		if err != nil {
			return err
		}
		if onA == len(vips) && onB == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: after %v, a holds %d of %d VIPs and b %d (logs in %s)",
				d.name, timeout, onA, len(vips), onB, d.dir)
		}
		sleep(20 * time.Millisecond)
	}
}

// vipsOn counts how many of vips (either family) are on n's links: eth0,
// or the macvlans with the virtual MAC (neither daemon leaves a VIP on a
// backup's macvlan).
func vipsOn(n *pair.Node, vips []netip.Addr) (int, error) {
	out, err := n.Host.Run("ip", "-o", "addr", "show")
	if err != nil {
		return 0, err
	}
	want := make(map[netip.Addr]bool, len(vips))
	for _, v := range vips {
		want[v] = true
	}
	count := 0
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			if f[i] != "inet" && f[i] != "inet6" {
				continue
			}
			if p, err := netip.ParsePrefix(f[i+1]); err == nil && want[p.Addr()] {
				count++
			}
		}
	}
	return count, nil
}

// procs returns the PIDs of the daemon's processes on n: vipd's one, or
// keepalived's parent and VRRP child (vrrp is the VRRP process either way).
func (d *daemon) procs(n *pair.Node) (all []int, vrrp int, err error) {
	if d.vipd() {
		if !running(n) {
			return nil, 0, fmt.Errorf("vipd is not running on %s", n.Host.Name)
		}
		return []int{n.Proc.PID}, n.Proc.PID, nil
	}
	parent, child, err := n.KeepalivedPIDs()
	if err != nil {
		return nil, 0, err
	}
	return []int{parent, child}, child, nil
}

// keepalivedTransition matches keepalived's log line for a state change of
// an instance, "(vr1) Entering MASTER STATE" and the like.
var keepalivedTransition = regexp.MustCompile(`\) [Ee]ntering (MASTER|BACKUP|FAULT) (STATE|state)`)

// transitions counts the state changes n's log shows so far: vipd's
// "msg=transition" lines, keepalived's "Entering ... STATE" lines. The log
// grows over the run, so callers compare two counts.
func (d *daemon) transitions(n *pair.Node) (int, error) {
	f, err := os.Open(n.Log)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	count := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if d.vipd() {
			if strings.Contains(line, " msg=transition ") {
				count++
			}
		} else if keepalivedTransition.MatchString(line) {
			count++
		}
	}
	return count, sc.Err()
}

func (d *daemon) socket(n *pair.Node) string { return filepath.Join(d.dir, n.Host.Name+".sock") }

// vipdCounters are the counters of `vipd status --json` that the soak
// reports, summed over the instances.
type vipdCounters struct {
	Transitions     uint64
	AdvertsSent     uint64
	AdvertsReceived uint64
}

// vipdStatus asks vipd on n for its counters.
func (d *daemon) vipdStatus(n *pair.Node) (vipdCounters, error) {
	out, err := exec.Command(d.bin, "status", "--json", "--socket", d.socket(n)).Output()
	if err != nil {
		return vipdCounters{}, fmt.Errorf("vipd status on %s: %w", n.Host.Name, err)
	}
	var st struct {
		Instances []struct {
			Counters struct {
				AdvertsSent     uint64            `json:"adverts_sent"`
				AdvertsReceived uint64            `json:"adverts_received"`
				Transitions     map[string]uint64 `json:"transitions"`
			} `json:"counters"`
		} `json:"instances"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return vipdCounters{}, fmt.Errorf("vipd status on %s: %w", n.Host.Name, err)
	}
	var c vipdCounters
	for _, in := range st.Instances {
		c.AdvertsSent += in.Counters.AdvertsSent
		c.AdvertsReceived += in.Counters.AdvertsReceived
		for _, v := range in.Counters.Transitions {
			c.Transitions += v
		}
	}
	return c, nil
}
