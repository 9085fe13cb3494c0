// Command interop measures, in the namespace lab, what a client sees when
// the VIP moves between vipd and keepalived 2.2.7 at 100 ms VRRPv3 adverts:
// after a link cut on the master and after a graceful stop, for each
// direction vipd→keepalived and keepalived→vipd, beside keepalived→keepalived
// and vipd→vipd measured in the same run. Each pair runs for the whole
// run and the trials go round the pairs in turn, so that a change of load
// on the machine touches every direction alike. It prints the
// distributions of the client's longest gap between replies (probing every
// 5 ms) beside the protocol bound. Run it as root.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	benchreport "github.com/vipd/vipd/bench/internal/report"
	"github.com/vipd/vipd/e2e/lab"
	"github.com/vipd/vipd/e2e/pair"
)

const (
	prioMaster = 150
	prioBackup = 100
	// interval is the advert interval: keepalived's VRRPv3 takes 0.1 s.
	interval = 100 * time.Millisecond
)

func main() {
	trials := flag.Int("trials", 10, "trials per direction and fault")
	bin := flag.String("vipd", os.Getenv("VIPD_BIN"), "vipd binary (default: build it)")
	out := flag.String("out", "", "also write the report (Markdown) to this file")
	flag.Parse()
	if err := run(*trials, *bin, *out); err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		os.Exit(1)
	}
}

// direction is one pair: A, the master, runs from; B, the backup, runs to.
type direction struct {
	from, to string
	p        *pair.Pair
	gaps     map[string][]time.Duration // by fault
}

func (d *direction) String() string { return d.from + "→" + d.to }

type fault struct {
	name   string
	bound  time.Duration
	inject func(p *pair.Pair) error
	repair func(p *pair.Pair) error
}

func run(trials int, bin, outPath string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root for network namespaces")
	}
	if trials < 1 {
		return fmt.Errorf("-trials %d: want at least 1", trials)
	}
	if _, err := pair.KeepalivedPath(); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "vipd-bench-interop")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if bin == "" {
		if bin, err = lab.Build(dir); err != nil {
			return err
		}
	}
	dirs := []*direction{
		{from: "vipd", to: "keepalived"},
		{from: "keepalived", to: "vipd"},
		{from: "keepalived", to: "keepalived"},
		{from: "vipd", to: "vipd"},
	}
	for _, d := range dirs {
		defer func() {
			if d.p != nil {
				d.p.Close()
			}
		}()
		if err := d.setUp(bin, dir); err != nil {
			return fmt.Errorf("%s: %w (logs in %s)", d, err, dir)
		}
	}
	faults := []fault{
		{
			name:   "link cut on the master",
			bound:  pair.MasterDownInterval(prioBackup, interval),
			inject: func(p *pair.Pair) error { return p.A.Host.CutLink() },
			repair: func(p *pair.Pair) error { return p.A.Host.RestoreLink() },
		},
		{
			name:   "graceful stop of the master",
			bound:  pair.SkewTime(prioBackup, interval),
			inject: func(p *pair.Pair) error { return p.Stop(p.A) },
			repair: func(p *pair.Pair) error { return p.Restart(p.A) },
		},
	}
	start := time.Now()
	for i := 1; i <= trials; i++ {
		for _, f := range faults {
			for _, d := range dirs {
				gap, err := d.trial(f)
				if err != nil {
					return fmt.Errorf("%s, %s, trial %d: %w (logs in %s)", d, f.name, i, err, dir)
				}
				fmt.Fprintf(os.Stderr, "%s, %s #%d: gap %s\n", d, f.name, i, ms(gap))
			}
		}
	}
	var b strings.Builder
	report(&b, trials, time.Since(start), dirs, faults)
	fmt.Print(b.String())
	if outPath != "" {
		// Only this program's section: the rest of the report is others'.
		section := "## Hand-over between vipd and keepalived\n\nWritten by `bench/interop`; reproduce with " +
			"`sudo go run ./bench/interop -trials 10 -out bench/REPORT.md`.\n" + b.String()
		return benchreport.ReplaceSection(outPath, "<!-- interop:begin -->", "<!-- interop:end -->", section)
	}
	return nil
}

// setUp builds d's pair, with its own logs, and waits for A to be master.
func (d *direction) setUp(bin, dir string) error {
	code := d.from[:1] + d.to[:1]
	sub, err := os.MkdirTemp(dir, code)
	if err != nil {
		return err
	}
	d.p, err = pair.New(fmt.Sprintf("bi%s%d", code, os.Getpid()%10000), bin, sub)
	if err != nil {
		return err
	}
	d.gaps = map[string][]time.Duration{}
	for _, n := range []struct {
		node   *pair.Node
		daemon string
		prio   uint8
	}{{d.p.A, d.from, prioMaster}, {d.p.B, d.to, prioBackup}} {
		if n.daemon == "keepalived" {
			err = d.p.ConfigureKeepalived(n.node, pair.KeepalivedConfig{Priority: n.prio, AdvertInterval: interval, Version: 3})
			if err == nil {
				err = d.p.StartKeepalived(n.node)
			}
		} else {
			err = d.p.Configure(n.node, pair.NodeConfig{Priority: n.prio, AdvertInterval: interval, Version: 3})
			if err == nil {
				err = d.p.Start(n.node)
			}
		}
		if err != nil {
			return err
		}
	}
	return d.p.WaitHolder(d.p.A, pair.VIP, 5*time.Second)
}

// trial injects f, measures the client's gap while B takes over, and
// repairs until A is master again.
func (d *direction) trial(f fault) (time.Duration, error) {
	p := d.p
	o, err := p.Failover(p.B, func() error { return f.inject(p) }, 5*time.Second, 150*time.Millisecond)
	if err != nil {
		return 0, err
	}
	d.gaps[f.name] = append(d.gaps[f.name], o.Gap)
	if err := f.repair(p); err != nil {
		return 0, err
	}
	if err := p.WaitHolder(p.A, pair.VIP, 5*time.Second); err != nil {
		return 0, err
	}
	// Let the client's ARP entry move back and the timers settle.
	time.Sleep(4 * interval)
	return o.Gap, nil
}

func report(w io.Writer, trials int, took time.Duration, dirs []*direction, faults []fault) {
	host, _ := os.Hostname()
	fmt.Fprintf(w, "\nVIP hand-over between vipd and keepalived 2.2.7 in the namespace lab: the client's longest gap "+
		"between replies (probing every %v); VRRPv3, adverts every %v, master priority %d, backup %d, "+
		"%d trials per row (host %s, %s, %v)\n\n", pair.ProbeInterval, interval, prioMaster, prioBackup,
		trials, host, time.Now().UTC().Format(time.RFC3339), took.Round(time.Second))
	fmt.Fprintf(w, "| fault | hand-over | min | median | p95 | max | protocol bound | within bound + 30 ms |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|\n")
	for _, f := range faults {
		for _, d := range dirs {
			s := slices.Clone(d.gaps[f.name])
			slices.Sort(s)
			within := 0
			for _, g := range s {
				if g <= f.bound+30*time.Millisecond {
					within++
				}
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %d/%d |\n", f.name, d,
				ms(s[0]), ms(pct(s, 50)), ms(pct(s, 95)), ms(s[len(s)-1]), ms(f.bound), within, len(s))
		}
	}
	fmt.Fprintln(w)
}

// pct is the nearest-rank percentile of sorted durations.
func pct(s []time.Duration, p int) time.Duration {
	i := (p*len(s)+99)/100 - 1
	return s[max(0, min(i, len(s)-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }
