package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
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
}

// footprintPhase starts each daemon's pair with every instance count at
// every interval, lets it settle, and measures CPU and memory of master
// and backup. The daemons take turns per configuration.
func (b *bench) footprintPhase() error {
	for _, iv := range b.opt.scaleIntervals {
		for _, count := range b.opt.sizes {
			for _, d := range b.daemons {
				var r footprintResult
				var earlier []string
				for attempt := 0; ; attempt++ {
					var err error
					r, err = b.measureFootprint(d, iv, count)
					if err != nil {
						d.stopAll()
						return fmt.Errorf("%s, %d instances at %v: %w", d.name, count, iv, err)
					}
					if r.unsteady == "" || attempt >= b.opt.retries {
						break
					}
					fmt.Fprintf(os.Stderr, "%s footprint: %-10s %3d instances at %-5v unsteady (%s): again\n",
						time.Now().Format("15:04:05"), d.name, count, iv, r.unsteady)
					earlier = append(earlier, r.unsteady)
				}
				r.earlier = earlier
				fmt.Fprintf(os.Stderr, "%s footprint: %-10s %3d instances at %-5v (elected in %v) master %s cores %.1f µs %.2f sw /advert %5.1f MB, backup %s cores %.1f µs %.2f sw /advert %5.1f MB%s\n", time.Now().Format("15:04:05"),
					d.name, count, iv, r.elected.Round(time.Millisecond),
					coresText(r.master.cores), us(r.master.perAdvert()), r.master.switchesPerAdvert(), mb(r.master.hwm),
					coresText(r.backup.cores), us(r.backup.perAdvert()), r.backup.switchesPerAdvert(), mb(r.backup.hwm), unsteadyNote(r.unsteady))
				b.footprint = append(b.footprint, r)
			}
		}
	}
	return nil
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
	vips := vipPool()[:count]
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
