// Command failover measures, in the namespace lab, what a client sees when
// vipd moves the VIP: the longest gap between replies (probing every 5 ms)
// after a link cut on the master and after a graceful stop, and the time
// from the VIP landing on the new master to the client's first reply. It
// prints each distribution beside the protocol bound. Run it as root
// (`sudo make bench-failover`).
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	benchreport "github.com/vipd/vipd/bench/internal/report"
	"github.com/vipd/vipd/e2e/lab"
	"github.com/vipd/vipd/e2e/pair"
)

const (
	prioA = 150
	prioB = 100
)

func main() {
	trials := flag.Int("trials", 10, "trials per scenario")
	interval := flag.Duration("interval", 100*time.Millisecond, "advert interval")
	bin := flag.String("vipd", os.Getenv("VIPD_BIN"), "vipd binary (default: build it)")
	out := flag.String("out", "", "also write the report (Markdown) to this file")
	flag.Parse()
	if err := run(*trials, *interval, *bin, *out); err != nil {
		fmt.Fprintln(os.Stderr, "failover:", err)
		os.Exit(1)
	}
}

type scenario struct {
	name   string
	bound  time.Duration
	fault  func(p *pair.Pair) error
	repair func(p *pair.Pair) error
	gaps   []time.Duration
	lands  []time.Duration
	moves  []time.Duration
}

// maintenance switches A's instance in or out of maintenance mode.
func maintenance(p *pair.Pair, on string) error {
	out, err := exec.Command(p.Bin, "maintenance", "web", on, "--socket", filepath.Join(p.Dir, "a.sock")).CombinedOutput()
	if err != nil {
		return fmt.Errorf("vipd maintenance web %s: %v: %s", on, err, out)
	}
	return nil
}

func run(trials int, interval time.Duration, bin, outPath string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root for network namespaces")
	}
	dir, err := os.MkdirTemp("", "vipd-bench-failover")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if bin == "" {
		if bin, err = lab.Build(dir); err != nil {
			return err
		}
	}
	p, err := pair.New(fmt.Sprintf("bf%d", os.Getpid()%10000), bin, dir)
	if err != nil {
		return err
	}
	defer p.Close()
	// A tracks a script (a health file must exist) and an interface (a
	// veth pair inside A whose far end the benchmark takes down).
	health := filepath.Join(dir, "a-healthy")
	if err := os.WriteFile(health, nil, 0o644); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"ip", "link", "add", "name", "up0", "type", "veth", "peer", "name", "up1"},
		{"ip", "link", "set", "up0", "up"}, {"ip", "link", "set", "up1", "up"},
	} {
		if _, err := p.A.Host.Run(args...); err != nil {
			return err
		}
	}
	track := fmt.Sprintf("    track:\n      interfaces:\n        - name: up0\n          weight: -60\n"+
		"      scripts:\n        - name: svc\n          command: [\"/usr/bin/test\", \"-e\", %q]\n"+
		"          interval: 100ms\n          timeout: 90ms\n          weight: -60\n", health)
	if err := p.Configure(p.A, pair.NodeConfig{Priority: prioA, AdvertInterval: interval, Extra: track}); err != nil {
		return err
	}
	if err := p.Configure(p.B, pair.NodeConfig{Priority: prioB, AdvertInterval: interval}); err != nil {
		return err
	}
	for _, n := range p.Nodes() {
		if err := p.Start(n); err != nil {
			return err
		}
	}
	if err := p.WaitHolder(p.A, pair.VIP, 5*time.Second); err != nil {
		return err
	}
	scenarios := []*scenario{
		{
			name:   "link cut on the master",
			bound:  pair.MasterDownInterval(prioB, interval),
			fault:  func(p *pair.Pair) error { return p.A.Host.CutLink() },
			repair: func(p *pair.Pair) error { return p.A.Host.RestoreLink() },
		},
		{
			name:   "graceful stop of the master",
			bound:  pair.SkewTime(prioB, interval),
			fault:  func(p *pair.Pair) error { return p.Stop(p.A) },
			repair: func(p *pair.Pair) error { return p.Start(p.A) },
		},
		{
			name:   "tracked script fails (weight -60)",
			bound:  pair.MasterDownInterval(prioB, interval) + interval,
			fault:  func(p *pair.Pair) error { return os.Remove(health) },
			repair: func(p *pair.Pair) error { return os.WriteFile(health, nil, 0o644) },
		},
		{
			name:   "tracked interface down (weight -60)",
			bound:  pair.MasterDownInterval(prioB, interval) + interval,
			fault:  func(p *pair.Pair) error { _, err := p.A.Host.Run("ip", "link", "set", "up1", "down"); return err },
			repair: func(p *pair.Pair) error { _, err := p.A.Host.Run("ip", "link", "set", "up1", "up"); return err },
		},
		{
			name:   "maintenance on",
			bound:  pair.SkewTime(prioB, interval),
			fault:  func(p *pair.Pair) error { return maintenance(p, "on") },
			repair: func(p *pair.Pair) error { return maintenance(p, "off") },
		},
	}
	for _, s := range scenarios {
		for i := 0; i < trials; i++ {
			o, err := p.Failover(p.B, func() error { return s.fault(p) }, 5*time.Second, 150*time.Millisecond)
			if err != nil {
				return fmt.Errorf("%s, trial %d: %w (logs in %s)", s.name, i+1, err, dir)
			}
			s.gaps = append(s.gaps, o.Gap)
			s.lands = append(s.lands, o.LandToReply)
			s.moves = append(s.moves, o.Land.Sub(o.Fault))
			fmt.Fprintf(os.Stderr, "%s #%d: gap %v, fault → VIP on b %v, landing → first reply %v\n",
				s.name, i+1, ms(o.Gap), ms(o.Land.Sub(o.Fault)), ms(o.LandToReply))
			if err := s.repair(p); err != nil {
				return err
			}
			if err := p.WaitHolder(p.A, pair.VIP, 5*time.Second); err != nil {
				return err
			}
			// Let the client's ARP entry move back and the timers settle.
			time.Sleep(4 * interval)
		}
	}
	var b strings.Builder
	report(&b, trials, interval, scenarios)
	fmt.Print(b.String())
	if outPath != "" {
		// Only this program's section: the rest of the report is others'.
		section := "## Failover outage, vipd pair\n\n" +
			"Written by `bench/failover`; reproduce with `sudo make bench-failover BENCHFLAGS=\"-trials 20\"`. " +
			"\"fault → VIP on the backup\" runs from the moment the fault is injected to the address event on the " +
			"backup; for \"maintenance on\" it includes starting the `vipd maintenance` command, so the client's gap " +
			"is the figure that counts there.\n" + b.String()
		return benchreport.ReplaceSection(outPath, "<!-- failover:begin -->", "<!-- failover:end -->", section)
	}
	return nil
}

func report(w io.Writer, trials int, interval time.Duration, ss []*scenario) {
	host, _ := os.Hostname()
	fmt.Fprintf(w, "\nvipd failover in the namespace lab: %d trials per scenario, adverts every %v, "+
		"master priority %d, backup %d, client probing every %v (host %s, %s)\n\n",
		trials, interval, prioA, prioB, pair.ProbeInterval, host, time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "| scenario | measure | min | median | p95 | max | limit | within |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|\n")
	for _, s := range ss {
		limit := s.bound + 30*time.Millisecond
		row(w, s.name, "client's longest gap", s.gaps, limit, fmt.Sprintf("bound %s + 30 ms", ms(s.bound)))
		row(w, s.name, "fault → VIP on the backup", s.moves, limit, fmt.Sprintf("bound %s + 30 ms", ms(s.bound)))
		row(w, s.name, "VIP landing → first reply", s.lands, 15*time.Millisecond, "15 ms")
	}
	fmt.Fprintln(w)
}

func row(w io.Writer, name, what string, ds []time.Duration, limit time.Duration, limitText string) {
	s := slices.Clone(ds)
	slices.Sort(s)
	within := 0
	for _, d := range s {
		if d <= limit {
			within++
		}
	}
	fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %d/%d |\n", name, what,
		ms(s[0]), ms(pct(s, 50)), ms(pct(s, 95)), ms(s[len(s)-1]), limitText, within, len(s))
}

var (
	pct = benchreport.Pct
	ms  = benchreport.Ms
)
