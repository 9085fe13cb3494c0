package main

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vipd/vipd/e2e/pair"
)

// nodeFootprint is what one node's daemon cost over the window.
type nodeFootprint struct {
	cpu      time.Duration // CPU time over the window, all of the daemon's processes and threads (cpu.go)
	tasks    time.Duration // the same summed over the live threads' schedstat, the cross-check
	exited   int           // threads that exited during the window
	cores    float64       // cpu / window
	hwm      uint64        // peak RSS (VmHWM), bytes, summed over the processes
	hwmVRRP  uint64        // peak RSS of the VRRP process alone
	pss      uint64        // proportional set size now, summed (shared pages split)
	nprocs   int
	switches uint64 // voluntary + involuntary context switches over the window
	// adverts is how many adverts the master sends and the backup
	// receives over the window: instances × window ÷ interval.
	adverts float64
}

// perAdvert is the CPU time per advert sent (master) or received (backup).
func (fp nodeFootprint) perAdvert() time.Duration {
	if fp.adverts == 0 {
		return 0
	}
	return time.Duration(float64(fp.cpu) / fp.adverts)
}

// switchesPerAdvert is the context switches per advert.
func (fp nodeFootprint) switchesPerAdvert() float64 {
	if fp.adverts == 0 {
		return 0
	}
	return float64(fp.switches) / fp.adverts
}

type footprintResult struct {
	daemon    string
	interval  time.Duration
	instances int
	window    time.Duration
	master    nodeFootprint
	backup    nodeFootprint
	elected   time.Duration // from starting the daemons to a holding every VIP
	// unsteady is set when something changed during the window (a
	// transition, or the VIPs not where they should be).
	unsteady string
	// earlier holds why earlier attempts of this configuration were
	// discarded.
	earlier []string
	// rounds is how many measurements the figures are the medians of
	// (0 or 1: one).
	rounds int
}

// footprintPhase starts each daemon's pair with every instance count at
// every interval, lets it settle, and measures CPU and memory of master
// and backup. The daemons take turns per configuration, or with -together
// run at the same time, each pair on its own lab, so that both see the
// same load on the machine. With -rounds each configuration is measured
// that many times and the report gives the medians.
func (b *bench) footprintPhase() error {
	for _, iv := range b.opt.scaleIntervals {
		for _, count := range b.opt.sizes {
			rs, err := b.footprintConfig(iv, count)
			if err != nil {
				return err
			}
			b.footprint = append(b.footprint, rs...)
		}
	}
	return nil
}

// footprintConfig measures count instances at iv -rounds times for
// every daemon, in the mode the daemons are set to (the virtual MAC or
// not), and returns each daemon's medians.
func (b *bench) footprintConfig(iv time.Duration, count int) ([]footprintResult, error) {
	rounds := make([][]footprintResult, len(b.daemons))
	for round := range b.opt.rounds {
		rs, err := b.footprintRound(iv, count)
		if err != nil {
			return nil, err
		}
		for i, r := range rs {
			rounds[i] = append(rounds[i], r)
			tag := b.modeNote()
			if b.opt.rounds > 1 {
				tag += fmt.Sprintf(" round %d", round+1)
			}
			fmt.Fprintf(os.Stderr, "%s footprint: %-10s %3d instances at %-5v%s (elected in %v) master %s cores %.1f µs %.2f sw /advert %5.1f MB, backup %s cores %.1f µs %.2f sw /advert %5.1f MB%s\n", time.Now().Format("15:04:05"),
				r.daemon, count, iv, tag, r.elected.Round(time.Millisecond),
				coresText(r.master.cores), us(r.master.perAdvert()), r.master.switchesPerAdvert(), mb(r.master.hwm),
				coresText(r.backup.cores), us(r.backup.perAdvert()), r.backup.switchesPerAdvert(), mb(r.backup.hwm), unsteadyNote(r.unsteady))
		}
	}
	var out []footprintResult
	for i := range b.daemons {
		out = append(out, medianFootprint(rounds[i]))
	}
	return out, nil
}

// footprintRound measures every daemon once, in turn or (-together) at
// the same time.
func (b *bench) footprintRound(iv time.Duration, count int) ([]footprintResult, error) {
	rs := make([]footprintResult, len(b.daemons))
	errs := make([]error, len(b.daemons))
	if !b.opt.together {
		for i, d := range b.daemons {
			if rs[i], errs[i] = b.footprintSteady(d, iv, count); errs[i] != nil {
				return nil, errs[i]
			}
		}
		return rs, nil
	}
	var wg sync.WaitGroup
	for i, d := range b.daemons {
		wg.Go(func() { rs[i], errs[i] = b.footprintSteady(d, iv, count) })
	}
	wg.Wait()
	return rs, errors.Join(errs...)
}

// footprintSteady measures d's footprint, and again (up to -retries
// times) while the window was not steady.
func (b *bench) footprintSteady(d *daemon, iv time.Duration, count int) (footprintResult, error) {
	var earlier []string
	for attempt := 0; ; attempt++ {
		r, err := b.measureFootprint(d, iv, count)
		if err != nil {
			d.stopAll()
			return r, fmt.Errorf("%s, %d instances at %v: %w", d.name, count, iv, err)
		}
		if r.unsteady == "" || attempt >= b.opt.retries {
			r.earlier = earlier
			return r, nil
		}
		fmt.Fprintf(os.Stderr, "%s footprint: %-10s %3d instances at %-5v unsteady (%s): again\n",
			time.Now().Format("15:04:05"), d.name, count, iv, r.unsteady)
		earlier = append(earlier, r.unsteady)
	}
}

// medianFootprint combines the rounds of one configuration: the median
// of each CPU, context switch and PSS figure, the largest peak RSS, and
// every round's notes.
func medianFootprint(rs []footprintResult) footprintResult {
	if len(rs) == 1 {
		return rs[0]
	}
	r := rs[0]
	r.rounds = len(rs)
	r.elected = medianOf(rs, func(x footprintResult) time.Duration { return x.elected })
	var notes, earlier []string
	for i, x := range rs {
		if x.unsteady != "" {
			notes = append(notes, fmt.Sprintf("round %d: %s", i+1, x.unsteady))
		}
		for _, e := range x.earlier {
			earlier = append(earlier, fmt.Sprintf("round %d: %s", i+1, e))
		}
	}
	r.unsteady, r.earlier = strings.Join(notes, "; "), earlier
	for _, node := range []func(*footprintResult) *nodeFootprint{
		func(x *footprintResult) *nodeFootprint { return &x.master },
		func(x *footprintResult) *nodeFootprint { return &x.backup },
	} {
		fps := make([]nodeFootprint, len(rs))
		for i := range rs {
			fps[i] = *node(&rs[i])
		}
		m := node(&r)
		m.cpu = medianOf(fps, func(f nodeFootprint) time.Duration { return f.cpu })
		m.tasks = medianOf(fps, func(f nodeFootprint) time.Duration { return f.tasks })
		m.cores = medianOf(fps, func(f nodeFootprint) float64 { return f.cores })
		m.switches = medianOf(fps, func(f nodeFootprint) uint64 { return f.switches })
		m.adverts = medianOf(fps, func(f nodeFootprint) float64 { return f.adverts })
		m.pss = medianOf(fps, func(f nodeFootprint) uint64 { return f.pss })
		for _, f := range fps {
			m.exited = max(m.exited, f.exited)
			m.hwm = max(m.hwm, f.hwm)
			m.hwmVRRP = max(m.hwmVRRP, f.hwmVRRP)
		}
	}
	return r
}

// medianOf is the median of what of xs (the upper one of an even count's
// middle two).
func medianOf[T any, V cmp.Ordered](xs []T, what func(T) V) V {
	vs := make([]V, len(xs))
	for i, x := range xs {
		vs[i] = what(x)
	}
	slices.Sort(vs)
	return vs[len(vs)/2]
}

func unsteadyNote(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

func (b *bench) measureFootprint(d *daemon, iv time.Duration, count int) (footprintResult, error) {
	r := footprintResult{daemon: d.name, interval: iv, instances: count, window: b.opt.window}
	d.stopAll()
	if err := d.configureMany(d.p.A, prioMaster, iv, count); err != nil {
		return r, err
	}
	if err := d.configureMany(d.p.B, prioBackup, iv, count); err != nil {
		return r, err
	}
	vips := d.pool()[:count]
	t := time.Now()
	if err := d.startPair(vips, pair.MasterDownInterval(prioMaster, iv)+20*time.Second); err != nil {
		return r, err
	}
	r.elected = time.Since(t)
	// Settle: past the backup's Master_Down_Interval and the repeated
	// gratuitous ARP a second after the election.
	sleep(pair.MasterDownInterval(prioBackup, iv) + 2*time.Second)

	nodes := []*pair.Node{d.p.A, d.p.B}
	var before [2]int
	var pids [2][]int
	var vrrpPID [2]int
	var usage0 [2][]procUsage
	for i, n := range nodes {
		var err error
		if before[i], err = d.transitions(n); err != nil {
			return r, err
		}
		if pids[i], vrrpPID[i], err = d.procs(n); err != nil {
			return r, err
		}
	}
	t0 := time.Now()
	for i, n := range nodes {
		var err error
		if usage0[i], err = readUsages(pids[i]); err != nil {
			return r, fmt.Errorf("%s on %s: %w", d.name, n.Host.Name, err)
		}
	}
	sleep(b.opt.window)
	wall := time.Since(t0)
	fps := []*nodeFootprint{&r.master, &r.backup}
	for i, n := range nodes {
		u, err := usageSince(pids[i], usage0[i])
		if err != nil {
			return r, fmt.Errorf("%s on %s: %w", d.name, n.Host.Name, err)
		}
		fp := fps[i]
		fp.cpu, fp.tasks, fp.exited, fp.switches = u.cpu, u.tasks, u.exited, u.switches
		fp.cores = fp.cpu.Seconds() / wall.Seconds()
		fp.adverts = float64(count) * wall.Seconds() / iv.Seconds()
		fp.nprocs = len(pids[i])
		for _, pid := range pids[i] {
			st, err := readStatus(pid)
			if err != nil {
				return r, err
			}
			fp.hwm += st["VmHWM"]
			if pid == vrrpPID[i] {
				fp.hwmVRRP = st["VmHWM"]
			}
			pss, err := readPss(pid)
			if err != nil {
				return r, err
			}
			fp.pss += pss
		}
	}
	var notes []string
	for i, n := range nodes {
		after, err := d.transitions(n)
		if err != nil {
			return r, err
		}
		if after != before[i] {
			notes = append(notes, fmt.Sprintf("%d transitions on %s during the window", after-before[i], n.Host.Name))
		}
	}
	if err := d.waitElected(vips, 0); err != nil {
		notes = append(notes, "VIPs not all on the master at the end")
	}
	r.unsteady = strings.Join(notes, "; ")
	d.stopAll()
	return r, nil
}

// readStatus reads the numeric fields of /proc/PID/status; sizes in kB
// are returned in bytes.
func readStatus(pid int) (map[string]uint64, error) {
	return readStatusFile(fmt.Sprintf("/proc/%d/status", pid))
}

func readStatusFile(path string) (map[string]uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := map[string]uint64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fs := strings.Fields(v)
		if len(fs) == 0 {
			continue
		}
		n, err := strconv.ParseUint(fs[0], 10, 64)
		if err != nil {
			continue
		}
		if len(fs) == 2 && fs[1] == "kB" {
			n *= 1024
		}
		m[k] = n
	}
	return m, sc.Err()
}

// readPss reads the proportional set size from /proc/PID/smaps_rollup, in
// bytes.
func readPss(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "Pss:"); ok {
			fs := strings.Fields(v)
			if len(fs) >= 1 {
				n, err := strconv.ParseUint(fs[0], 10, 64)
				return n * 1024, err
			}
		}
	}
	return 0, fmt.Errorf("/proc/%d/smaps_rollup: no Pss", pid)
}

// coresText is a CPU load in cores: four decimals, six below a hundredth
// (one instance at 1 s adverts uses some millionths).
func coresText(c float64) string {
	if c < 0.01 {
		return fmt.Sprintf("%.6f", c)
	}
	return fmt.Sprintf("%.4f", c)
}

// us is a duration in microseconds.
func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// mb is bytes in MB (10^6).
func mb(b uint64) float64 { return float64(b) / 1e6 }

// crossCheck says how the thread sum disagreed with the CPU-time clock,
// if it did: by more than 1% (and more than 1 ms), or because threads
// exited, whose time only the clock still counts.
func (fp nodeFootprint) crossCheck() string {
	var s []string
	if diff := fp.cpu - fp.tasks; diff.Abs() > time.Millisecond && float64(diff.Abs()) > 0.01*float64(fp.cpu) {
		s = append(s, fmt.Sprintf("the threads' schedstat sum is %.1f ms, the CPU-time clock %.1f ms", msf(fp.tasks), msf(fp.cpu)))
	}
	if fp.exited > 0 {
		s = append(s, fmt.Sprintf("%d thread(s) exited during the window", fp.exited))
	}
	return strings.Join(s, ", ")
}
