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

// clockTick is the unit of utime and stime in /proc/PID/stat: USER_HZ,
// which Linux fixes at 100 for user space.
const clockTick = 10 * time.Millisecond

// nodeFootprint is what one node's daemon cost over the window.
type nodeFootprint struct {
	cpu      time.Duration // user+sys over the window, all of the daemon's processes
	cores    float64       // cpu / window
	hwm      uint64        // peak RSS (VmHWM), bytes, summed over the processes
	hwmVRRP  uint64        // peak RSS of the VRRP process alone
	pss      uint64        // proportional set size now, summed (shared pages split)
	nprocs   int
	switches uint64 // voluntary + involuntary context switches over the window
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
				fmt.Fprintf(os.Stderr, "%s footprint: %-10s %3d instances at %-5v (elected in %v) master %.4f cores %5.1f MB, backup %.4f cores %5.1f MB%s\n", time.Now().Format("15:04:05"),
					d.name, count, iv, r.elected.Round(time.Millisecond), r.master.cores, mb(r.master.hwm), r.backup.cores, mb(r.backup.hwm), unsteadyNote(r.unsteady))
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
	var cpu0 [2]time.Duration
	var sw0 [2]uint64
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
	for i := range nodes {
		var err error
		if cpu0[i], sw0[i], err = cpuOf(pids[i]); err != nil {
			return r, err
		}
	}
	sleep(b.opt.window)
	wall := time.Since(t0)
	fps := []*nodeFootprint{&r.master, &r.backup}
	for i, n := range nodes {
		cpu1, sw1, err := cpuOf(pids[i])
		if err != nil {
			return r, fmt.Errorf("%s on %s: %w", d.name, n.Host.Name, err)
		}
		fp := fps[i]
		fp.cpu = cpu1 - cpu0[i]
		fp.cores = fp.cpu.Seconds() / wall.Seconds()
		fp.switches = sw1 - sw0[i]
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

// cpuOf sums user+sys time and context switches of the processes.
func cpuOf(pids []int) (time.Duration, uint64, error) {
	var total time.Duration
	var switches uint64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0, 0, err
		}
		s := string(b)
		// Fields after the command name (which may hold spaces and
		// parentheses): state is field 3, utime 14, stime 15.
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 13 {
			return 0, 0, fmt.Errorf("/proc/%d/stat: too short", pid)
		}
		for _, field := range f[11:13] {
			ticks, err := strconv.ParseUint(field, 10, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
			}
			total += time.Duration(ticks) * clockTick
		}
		// The process's status counts its main thread's switches only.
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil {
			return 0, 0, err
		}
		for _, t := range tasks {
			st, err := readStatusFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, t.Name()))
			if err != nil {
				continue // the thread has exited
			}
			switches += st["voluntary_ctxt_switches"] + st["nonvoluntary_ctxt_switches"]
		}
	}
	return total, switches, nil
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

// mb is bytes in MB (10^6).
func mb(b uint64) float64 { return float64(b) / 1e6 }
