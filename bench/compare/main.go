// Command compare measures vipd beside keepalived in the namespace lab, in
// one run and on the same lab: the client-visible outage after a link cut
// and after a graceful stop of the master at several advert intervals, the
// steady-state CPU and peak memory of master and backup with many
// instances, and spurious transitions at 10 ms adverts while the other
// core is saturated. Each pair runs two nodes of the same daemon (vipd
// with vipd, keepalived with keepalived), priorities 150 and 100, VRRPv3.
//
// It writes its tables into bench/REPORT.md between the markers
// <!-- compare:begin --> and <!-- compare:end --> (keeping the rest of
// the file), draws the outage distributions as a PNG, and also runs the Go
// benchmarks of vipd's per-advert hot path. Run it as root
// (`sudo make bench`); Ctrl-C removes the lab and stops every process it
// started.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vipd/vipd/e2e/lab"
	"github.com/vipd/vipd/e2e/pair"
)

// Priorities of the pair's nodes, for both daemons.
const (
	prioMaster = 150
	prioBackup = 100
)

// The markers of compare's section in the report.
const (
	markBegin = "<!-- compare:begin -->"
	markEnd   = "<!-- compare:end -->"
)

type options struct {
	trials         int
	soak           time.Duration
	soakInterval   time.Duration
	window         time.Duration
	retries        int
	rounds         int             // footprint measurements per configuration (medians reported)
	together       bool            // footprint: the daemons' pairs at the same time
	intervals      []time.Duration // outage
	scaleIntervals []time.Duration // footprint
	sizes          []int
	parallel       time.Duration
	out, png       string
	vipd           string
	logs           string
	phases         map[string]bool
	daemons        []string
	command        string // how this run was invoked, for the report

	vmacTrials   int           // vmac: outage trials per daemon and scenario
	vmacInterval time.Duration // vmac: advert interval of its trials and footprint

	ipv6Trials   int           // ipv6: outage trials per daemon and scenario
	ipv6Interval time.Duration // ipv6: advert interval of its trials and footprint
}

// comparePhases write the comparison's section of the report; floor, vmac
// and ipv6 write a section each of their own.
var comparePhases = []string{"outage", "footprint", "soak", "gobench"}

var allPhases = append(slices.Clone(comparePhases), "floor", "vmac", "ipv6")

// defaultPhases are the phases a run without -phases runs.
var defaultPhases = allPhases

func main() {
	if os.Getenv(hogEnv) != "" {
		hog()
	}
	var o options
	var intervals, scaleIntervals, sizes, phases, daemons string
	var quick bool
	flag.IntVar(&o.trials, "trials", 20, "outage trials per daemon, scenario and advert interval")
	flag.DurationVar(&o.soak, "soak", 5*time.Minute, "length of each daemon's soak under the CPU hog")
	flag.DurationVar(&o.soakInterval, "soak-interval", 10*time.Millisecond, "advert interval during the soak")
	flag.DurationVar(&o.window, "window", 20*time.Second, "CPU measuring window per footprint configuration")
	flag.IntVar(&o.rounds, "rounds", 1, "measure each footprint configuration this many times and report the medians")
	flag.BoolVar(&o.together, "together", false, "run the daemons' footprint pairs at the same time, each on its own lab, so that both see the same load (else they take turns)")
	flag.IntVar(&o.retries, "retries", 1, "measure a footprint configuration again this many times when its window was not steady (a transition, or a VIP out of place)")
	flag.StringVar(&intervals, "intervals", "1s,100ms,20ms", "advert intervals of the outage trials")
	flag.StringVar(&scaleIntervals, "scale-intervals", "1s,100ms,20ms", "advert intervals of the footprint runs")
	flag.StringVar(&sizes, "sizes", "1,100,250", "instance counts of the footprint runs (at most 250: unique VIPs from the lab's /24)")
	flag.DurationVar(&o.parallel, "parallel", time.Second, "advert intervals at or above this run the two daemons' outage trials at the same time, each in its own lab (0: never)")
	flag.StringVar(&o.out, "out", "bench/REPORT.md", "report to write the section into (\"\": print only)")
	flag.StringVar(&o.png, "png", "bench/outage.png", "outage chart (\"\": none)")
	flag.StringVar(&o.vipd, "vipd", os.Getenv("VIPD_BIN"), "vipd binary (default: $VIPD_BIN, else build one)")
	flag.StringVar(&o.logs, "logs", "", "keep configs and daemon logs in this directory (default: a temporary one, removed unless the run fails)")
	flag.StringVar(&phases, "phases", strings.Join(defaultPhases, ","), "phases to run, some of "+strings.Join(allPhases, ","))
	flag.IntVar(&o.vmacTrials, "vmac-trials", 10, "vmac: outage trials per daemon and scenario with the virtual MAC")
	flag.DurationVar(&o.vmacInterval, "vmac-interval", 100*time.Millisecond, "vmac: advert interval of the virtual-MAC trials and footprint")
	flag.IntVar(&o.ipv6Trials, "ipv6-trials", 10, "ipv6: outage trials per daemon and scenario over IPv6")
	flag.DurationVar(&o.ipv6Interval, "ipv6-interval", 100*time.Millisecond, "ipv6: advert interval of the IPv6 trials and footprint")
	flag.StringVar(&daemons, "daemons", "vipd,keepalived", "daemons to measure (for trying things out: the report compares both)")
	flag.BoolVar(&quick, "quick", false, "only the footprint of one instance at 20ms, 100ms and 1s adverts, the daemons at the same time, medians of 3 rounds of "+quickWindow.String()+
		" windows, printed and not written into the report (about two and a half minutes); flags given as well override these")
	flag.Parse()
	if quick {
		applyQuick(map[string]any{
			"phases": &phases, "sizes": &sizes, "scale-intervals": &scaleIntervals,
			"window": &o.window, "out": &o.out, "png": &o.png, "rounds": &o.rounds, "together": &o.together,
		})
	}

	var err error
	if o.intervals, err = parseDurations(intervals); err == nil {
		if o.scaleIntervals, err = parseDurations(scaleIntervals); err == nil {
			if o.sizes, err = parseSizes(sizes); err == nil {
				if o.phases, err = parsePhases(phases); err == nil {
					o.daemons, err = parseDaemons(daemons)
				}
			}
		}
	}
	if err == nil && o.trials < 1 {
		err = fmt.Errorf("-trials %d: want at least 1", o.trials)
	}
	if err == nil && o.vmacTrials < 1 {
		err = fmt.Errorf("-vmac-trials %d: want at least 1", o.vmacTrials)
	}
	if err == nil && o.ipv6Trials < 1 {
		err = fmt.Errorf("-ipv6-trials %d: want at least 1", o.ipv6Trials)
	}
	if err == nil {
		err = checkInterval(o.vmacInterval)
	}
	if err == nil {
		err = checkInterval(o.ipv6Interval)
	}
	if err == nil && o.rounds < 1 {
		err = fmt.Errorf("-rounds %d: want at least 1", o.rounds)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(2)
	}
	o.command = commandLine()
	os.Exit(run(&o))
}

// quickWindow is the measuring window of -quick.
const quickWindow = 10 * time.Second

// quickFlags are the values -quick gives the flags it sets.
var quickFlags = map[string]string{
	"phases":          "footprint",
	"sizes":           "1",
	"scale-intervals": "20ms,100ms,1s",
	"window":          quickWindow.String(),
	"out":             "",
	"png":             "",
	"rounds":          "3",
	"together":        "true",
}

// applyQuick sets each of quickFlags' flags that the command line did not
// set; vars holds where each flag's value lives.
func applyQuick(vars map[string]any) {
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for name, v := range quickFlags {
		if set[name] {
			continue
		}
		switch p := vars[name].(type) {
		case *string:
			*p = v
		case *time.Duration:
			*p, _ = time.ParseDuration(v)
		case *int:
			*p, _ = strconv.Atoi(v)
		case *bool:
			*p, _ = strconv.ParseBool(v)
		}
	}
}

// commandLine renders the invocation with the flags that were set.
func commandLine() string {
	args := []string{"go run ./bench/compare"}
	flag.Visit(func(f *flag.Flag) {
		v := f.Value.String()
		if f.Name == "vipd" {
			v = "bin/vipd"
		}
		args = append(args, "-"+f.Name+" "+v)
	})
	return strings.Join(args, " ")
}

func parseDurations(s string) ([]time.Duration, error) {
	var ds []time.Duration
	for f := range strings.SplitSeq(s, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(f))
		if err != nil {
			return nil, err
		}
		if err := checkInterval(d); err != nil {
			return nil, err
		}
		ds = append(ds, d)
	}
	return ds, nil
}

// checkInterval refuses an advert interval VRRPv3 cannot carry.
func checkInterval(d time.Duration) error {
	if d < 10*time.Millisecond || d%(10*time.Millisecond) != 0 {
		return fmt.Errorf("interval %v: want whole centiseconds (VRRPv3)", d)
	}
	return nil
}

func parseSizes(s string) ([]int, error) {
	var ns []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, err
		}
		if n < 1 || n > len(vipPool()) {
			return nil, fmt.Errorf("%d instances: want 1..%d", n, len(vipPool()))
		}
		ns = append(ns, n)
	}
	return ns, nil
}

func parseDaemons(s string) ([]string, error) {
	var ds []string
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f != "vipd" && f != "keepalived" || slices.Contains(ds, f) {
			return nil, fmt.Errorf("daemon %q: want vipd and/or keepalived, once each", f)
		}
		ds = append(ds, f)
	}
	return ds, nil
}

func parsePhases(s string) (map[string]bool, error) {
	m := map[string]bool{}
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if !slices.Contains(allPhases, f) {
			return nil, fmt.Errorf("phase %q: want some of %s", f, strings.Join(allPhases, ","))
		}
		m[f] = true
	}
	return m, nil
}

// cleanups runs what must be undone, once, whether the run ends, fails or
// is interrupted.
type cleanups struct {
	mu   sync.Mutex
	done bool
	fns  []func()
}

// add registers fn; it reports false (and does not keep fn) once the
// cleanup has run, and the caller must then undo its work itself.
func (c *cleanups) add(fn func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return false
	}
	c.fns = append(c.fns, fn)
	return true
}

// run calls the registered functions, last first. Later calls wait for
// the first to finish and do nothing.
func (c *cleanups) run() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return
	}
	c.done = true
	for _, fn := range slices.Backward(c.fns) {
		fn()
	}
}

func run(o *options) int {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "compare: needs root for network namespaces (sudo make bench)")
		return 1
	}
	cl := &cleanups{}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	var interrupted atomic.Bool
	cleaned := make(chan struct{})
	go func() {
		s := <-sigs
		interrupted.Store(true)
		fmt.Fprintf(os.Stderr, "\ncompare: %v: removing the lab and stopping what it started\n", s)
		cl.run()
		close(cleaned)
		os.Exit(130)
	}()
	b := &bench{opt: o, cl: cl, start: time.Now()}
	err := b.run()
	if interrupted.Load() {
		// The run failed because the lab went away under it: say
		// nothing more and let the clean-up finish and exit.
		<-cleaned
		os.Exit(130)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		if b.dir != "" && o.logs == "" {
			// Keep the logs of a failed run.
			b.keepDir = true
			fmt.Fprintln(os.Stderr, "compare: configs and logs kept in", b.dir)
		}
	}
	cl.run()
	if err != nil {
		return 1
	}
	return 0
}

// bench is one run.
type bench struct {
	opt     *options
	cl      *cleanups
	start   time.Time
	dir     string
	keepDir bool
	bin     string
	daemons []*daemon
	machine machineInfo

	outage    *outageResults
	footprint []footprintResult
	soak      []soakResult
	gobench   goBench
	floor     *floorResults
	vmac      *vmacResults
	ipv6      *ipv6Results
}

func (b *bench) run() error {
	var err error
	if b.opt.logs != "" {
		b.dir, err = filepath.Abs(b.opt.logs)
		if err == nil {
			err = os.MkdirAll(b.dir, 0o755)
		}
	} else {
		b.dir, err = os.MkdirTemp("", "vipd-bench-compare")
		if err == nil {
			b.cl.add(func() {
				if !b.keepDir {
					os.RemoveAll(b.dir)
				}
			})
		}
	}
	if err != nil {
		return err
	}
	if slices.Contains(b.opt.daemons, "keepalived") {
		if _, err := pair.KeepalivedPath(); err != nil {
			return err
		}
	}
	b.bin = b.opt.vipd
	if b.bin == "" {
		fmt.Fprintln(os.Stderr, "building vipd")
		if b.bin, err = lab.Build(b.dir); err != nil {
			return err
		}
	}
	if b.bin, err = filepath.Abs(b.bin); err != nil {
		return err
	}
	b.machine = readMachine(b.bin)

	// One lab per daemon, for the whole run; prefixes unique per run.
	id := os.Getpid() % 10000
	for _, name := range b.opt.daemons {
		sub := filepath.Join(b.dir, name)
		if err := os.MkdirAll(sub, 0o755); err != nil {
			return err
		}
		p, err := pair.New(fmt.Sprintf("c%s%d", name[:1], id), b.bin, sub)
		if err != nil {
			return err
		}
		if !b.cl.add(func() { p.Close() }) {
			p.Close()
			return fmt.Errorf("interrupted")
		}
		b.daemons = append(b.daemons, &daemon{name: name, p: p, dir: sub, bin: b.bin})
	}

	if b.opt.phases["gobench"] {
		b.gobench = runGoBench()
	}
	if b.opt.phases["outage"] {
		if b.outage, err = b.outagePhase(); err != nil {
			return fmt.Errorf("outage: %w", err)
		}
	}
	if b.opt.phases["footprint"] {
		if err := b.footprintPhase(); err != nil {
			return fmt.Errorf("footprint: %w", err)
		}
	}
	// After the footprint, whose one-instance masters it is set beside.
	if b.opt.phases["floor"] {
		if b.floor, err = b.floorPhase(); err != nil {
			return fmt.Errorf("floor: %w", err)
		}
	}
	if b.opt.phases["soak"] {
		if err := b.soakPhase(); err != nil {
			return fmt.Errorf("soak: %w", err)
		}
	}
	// Last: keepalived's use_vmac changes sysctls on its nodes (the
	// phase puts them back), and whatever else it leaves behind stays
	// out of the other phases' way.
	if b.opt.phases["vmac"] {
		if b.vmac, err = b.vmacPhase(); err != nil {
			return fmt.Errorf("vmac: %w", err)
		}
	}
	// After the IPv4 phases: IPv6 stays on in the hosts once turned on.
	if b.opt.phases["ipv6"] {
		if b.ipv6, err = b.ipv6Phase(); err != nil {
			return fmt.Errorf("ipv6: %w", err)
		}
	}
	for _, d := range b.daemons {
		d.stopAll()
	}
	b.machine.loadEnd = readLoad()
	return b.writeReport()
}

// sleep is time.Sleep, named for what the benchmark waits for.
func sleep(d time.Duration) { time.Sleep(d) }
