// Command demo shows vipd at work in a throw-away lab: two nodes and a
// client in network namespaces on one bridge, dual-stack. Each node runs
// two instances: web (VRID 51, VRRPv3 over IPv4, an IPv4 VIP) and web6
// (VRID 52, VRRPv3 over IPv6 from the link-locals, an IPv6 VIP). It shows
// the election, cuts the master's link, brings it back, stops it
// gracefully, prints what the client saw of both VIPs each time, and
// removes the lab. Run it as root (`sudo make demo`).
package main

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/vipd/vipd/e2e/lab"
	"github.com/vipd/vipd/e2e/pair"
)

const interval = 100 * time.Millisecond

// The IPv6 side of the lab: the hosts' addresses and web6's VIP, from the
// lab's fd00:18::/64.
var (
	vip6    = netip.MustParseAddr("fd00:18::100")
	v6Addrs = map[string]netip.Prefix{"a": netip.MustParsePrefix("fd00:18::11/64"), "b": netip.MustParsePrefix("fd00:18::12/64"), "client": netip.MustParsePrefix("fd00:18::50/64")}
)

// web6 is the second instance, appended to the configuration that
// pair.Configure writes: VIPs all IPv6, so it runs over IPv6 with no
// other key.
const web6 = `  - name: web6
    interface: eth0
    vrid: 52
    priority: %d
    advert_interval: %s
    vips:
      - address: %s
        description: lab service over IPv6
`

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func step(format string, args ...any) {
	fmt.Printf("\n==> "+format+"\n", args...)
}

func run() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root for network namespaces: run 'sudo make demo'")
	}
	dir, err := os.MkdirTemp("", "vipd-demo")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := os.Getenv("VIPD_BIN")
	if bin == "" {
		if bin, err = lab.Build(dir); err != nil {
			return err
		}
	}
	step("building the lab: nodes a (%s, %s) and b (%s, %s), a client (%s, %s), one bridge",
		pair.AddrA, v6Addrs["a"], pair.AddrB, v6Addrs["b"], pair.AddrClient, v6Addrs["client"])
	p, err := pair.New(fmt.Sprintf("demo%d", os.Getpid()%1000), bin, dir)
	if err != nil {
		return err
	}
	defer func() {
		step("removing the lab")
		if err := p.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "demo: cleanup:", err)
		}
	}()
	for _, h := range []*lab.Host{p.A.Host, p.B.Host, p.Client} {
		if _, err := h.EnableIPv6(v6Addrs[h.Name]); err != nil {
			return err
		}
	}
	for _, n := range []struct {
		node *pair.Node
		prio uint8
	}{{p.A, 150}, {p.B, 100}} {
		if err := p.Configure(n.node, pair.NodeConfig{Priority: n.prio, AdvertInterval: interval}); err != nil {
			return err
		}
		f, err := os.OpenFile(n.node.Config, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(f, web6, n.prio, interval, vip6)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	cfg, _ := os.ReadFile(p.A.Config)
	step("node a's configuration (b's differs only in priority 100):\n%s", indent(string(cfg)))

	step("starting vipd on both nodes; VIPs %s (web) and %s (web6), adverts every %v", pair.VIP, vip6, interval)
	for _, n := range p.Nodes() {
		if err := p.Start(n); err != nil {
			return err
		}
	}
	for _, v := range []netip.Addr{pair.VIP, vip6} {
		if err := p.WaitHolder(p.A, v, 5*time.Second); err != nil {
			return err
		}
	}
	fmt.Println("    a (priority 150) won both elections and holds", pair.VIP, "and", vip6)
	ll, _ := p.A.Host.LinkLocal()
	fmt.Printf("    web6's adverts go from a's link-local %s to ff02::12\n", ll)
	showClient(p)

	mdi := pair.MasterDownInterval(100, interval)
	step("cutting a's link: b must take over within Master_Down_Interval = %v", mdi)
	if err := failover(p, p.B, p.A.Host.CutLink, mdi); err != nil {
		return err
	}
	showClient(p)

	step("restoring a's link: a has the higher priority and preempts")
	if err := failover(p, p.A, p.A.Host.RestoreLink, 0); err != nil {
		return err
	}

	skew := pair.SkewTime(100, interval)
	step("stopping vipd on a (SIGTERM): it resigns, b takes over after Skew_Time = %v, and a answers until b does", skew)
	if err := failover(p, p.B, func() error { return p.Stop(p.A) }, skew); err != nil {
		return err
	}
	showClient(p)

	step("what the daemons logged about their state:")
	for _, n := range p.Nodes() {
		transitions(n)
	}
	return nil
}

// failover measures fault moving both VIPs to to: the IPv4 one with
// pair.Failover, the IPv6 one with a probe of its own running meanwhile.
func failover(p *pair.Pair, to *pair.Node, fault func() error, bound time.Duration) error {
	pr, err := p.Client.StartProbe(vip6, pair.ProbeInterval)
	if err != nil {
		return err
	}
	defer pr.Stop()
	start := time.Now()
	o, err := p.Failover(to, fault, 5*time.Second, 200*time.Millisecond)
	if err != nil {
		return err
	}
	if err := p.WaitHolder(to, vip6, 5*time.Second); err != nil {
		return err
	}
	time.Sleep(200 * time.Millisecond)
	r := pr.Stop()
	fmt.Printf("    %s:\n", pair.VIP)
	outage(o, bound)
	fmt.Printf("    %s:\n", vip6)
	fmt.Printf("      client's longest gap between replies: %.1f ms", float64(r.LongestGap(start, r.End))/1e6)
	if bound > 0 {
		fmt.Printf(" (protocol bound %.1f ms)", float64(bound)/1e6)
	}
	fmt.Printf("; %d of %d pings lost\n", r.Lost(), r.Sent)
	return nil
}

func outage(o pair.Outage, bound time.Duration) {
	fmt.Printf("      client's longest gap between replies: %.1f ms", float64(o.Gap)/1e6)
	if bound > 0 {
		fmt.Printf(" (protocol bound %.1f ms)", float64(bound)/1e6)
	}
	fmt.Printf("\n      VIP on the new master → client's first reply: %.1f ms; %d of %d pings lost\n",
		float64(o.LandToReply)/1e6, o.Lost, o.Sent)
}

// showClient pings each VIP briefly (so the client has resolved it) and
// prints the client's neighbour entry for it and whose MAC that is.
func showClient(p *pair.Pair) {
	for _, v := range []netip.Addr{pair.VIP, vip6} {
		if pr, err := p.Client.StartProbe(v, 10*time.Millisecond); err == nil {
			time.Sleep(50 * time.Millisecond)
			pr.Stop()
		}
		mac, err := p.ClientNeighbour(v)
		if err != nil {
			return
		}
		owner := "?"
		for _, n := range p.Nodes() {
			if m, err := n.Host.MAC(); err == nil && m.String() == mac {
				owner = n.Host.Name
			}
		}
		kind := "ARP"
		if v.Is6() {
			kind = "neighbour (NDP)"
		}
		fmt.Printf("    client's %s entry for %s: %s (node %s)\n", kind, v, mac, owner)
	}
}

func transitions(n *pair.Node) {
	f, err := os.Open(n.Log)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := sc.Text(); strings.Contains(l, "msg=transition") {
			fmt.Printf("    %s: %s\n", n.Host.Name, l)
		}
	}
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}
