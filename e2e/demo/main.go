// Command demo shows vipd at work in a throw-away lab: two nodes and a
// client in network namespaces on one bridge. It shows the election, cuts
// the master's link, brings it back, stops it gracefully, prints what the
// client saw each time, and removes the lab. Run it as root (`sudo make demo`).
package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/vipd/vipd/e2e/lab"
	"github.com/vipd/vipd/e2e/pair"
)

const interval = 100 * time.Millisecond

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
	step("building the lab: nodes a (%s) and b (%s), a client (%s), one bridge", pair.AddrA, pair.AddrB, pair.AddrClient)
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
	if err := p.Configure(p.A, pair.NodeConfig{Priority: 150, AdvertInterval: interval}); err != nil {
		return err
	}
	if err := p.Configure(p.B, pair.NodeConfig{Priority: 100, AdvertInterval: interval}); err != nil {
		return err
	}
	cfg, _ := os.ReadFile(p.A.Config)
	step("node a's configuration (b's differs only in priority 100):\n%s", indent(string(cfg)))

	step("starting vipd on both nodes; VIP %s, adverts every %v", pair.VIP, interval)
	for _, n := range p.Nodes() {
		if err := p.Start(n); err != nil {
			return err
		}
	}
	if err := p.WaitHolder(p.A, pair.VIP, 5*time.Second); err != nil {
		return err
	}
	fmt.Println("    a (priority 150) won the election and holds", pair.VIP)
	showClient(p)

	mdi := pair.MasterDownInterval(100, interval)
	step("cutting a's link: b must take over within Master_Down_Interval = %v", mdi)
	o, err := p.Failover(p.B, p.A.Host.CutLink, 5*time.Second, 200*time.Millisecond)
	if err != nil {
		return err
	}
	outage(o, mdi)
	showClient(p)

	step("restoring a's link: a has the higher priority and preempts")
	o, err = p.Failover(p.A, p.A.Host.RestoreLink, 5*time.Second, 200*time.Millisecond)
	if err != nil {
		return err
	}
	outage(o, 0)

	skew := pair.SkewTime(100, interval)
	step("stopping vipd on a (SIGTERM): it resigns, b takes over after Skew_Time = %v, and a answers until b does", skew)
	o, err = p.Failover(p.B, func() error { return p.Stop(p.A) }, 5*time.Second, 200*time.Millisecond)
	if err != nil {
		return err
	}
	outage(o, skew)
	showClient(p)

	step("what the daemons logged about their state:")
	for _, n := range p.Nodes() {
		transitions(n)
	}
	return nil
}

func outage(o pair.Outage, bound time.Duration) {
	fmt.Printf("    client's longest gap between replies: %.1f ms", float64(o.Gap)/1e6)
	if bound > 0 {
		fmt.Printf(" (protocol bound %.1f ms)", float64(bound)/1e6)
	}
	fmt.Printf("\n    VIP on the new master → client's first reply: %.1f ms; %d of %d pings lost\n",
		float64(o.LandToReply)/1e6, o.Lost, o.Sent)
}

func showClient(p *pair.Pair) {
	mac, err := p.ClientNeighbour(pair.VIP)
	if err != nil {
		return
	}
	owner := "?"
	for _, n := range p.Nodes() {
		if m, err := n.Host.MAC(); err == nil && m.String() == mac {
			owner = n.Host.Name
		}
	}
	fmt.Printf("    client's ARP entry for %s: %s (node %s)\n", pair.VIP, mac, owner)
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
