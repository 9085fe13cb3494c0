package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// How CPU time is measured. One advert costs a daemon some tens of
// microseconds, so the 10 ms clock ticks of /proc/PID/stat (utime, stime)
// cannot tell one instance's figures apart. The scheduler keeps each
// thread's time on the CPU in nanoseconds (sum_exec_runtime): it is the
// first field of /proc/PID/task/TID/schedstat, per thread. (The
// process-level /proc/PID/schedstat is the main thread's alone, and a
// multi-threaded daemon such as vipd does most of its work elsewhere.)
//
// Summing the task directories loses the time of a thread that exits
// during the window. The process's CPU-time clock (clock_gettime on the
// clock id of clock_getcpuclockid(3), CPUCLOCK_SCHED) is the same
// nanosecond counter summed over every thread of the process, the exited
// ones included, read in one system call: that is the figure the report
// uses. The sum over the task directories is kept beside it as a check;
// the two differ by the exited threads' time and by the few microseconds
// between the readings.
//
// Context switches (voluntary and involuntary) come from each thread's
// /proc/PID/task/TID/status: /proc/PID/status counts the main thread's
// only. An exited thread's switches are lost; procUsage counts the
// threads that exited so that the report can say so.

// threadUsage is one thread's counters.
type threadUsage struct {
	run      time.Duration // time on the CPU (schedstat field 1)
	switches uint64        // voluntary + involuntary context switches
}

// procUsage is a reading of a process's counters.
type procUsage struct {
	cpu     time.Duration       // the process's CPU-time clock: all threads, exited ones included
	threads map[int]threadUsage // the live threads, by TID
}

// processClock is the clock id of pid's CPU-time clock: what glibc's
// clock_getcpuclockid returns, MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED).
func processClock(pid int) int32 {
	const cpuclockSched = 2
	return int32(^pid)<<3 | cpuclockSched
}

// readUsage reads pid's CPU-time clock and its threads' counters.
func readUsage(pid int) (procUsage, error) {
	u := procUsage{threads: map[int]threadUsage{}}
	var ts unix.Timespec
	if err := unix.ClockGettime(processClock(pid), &ts); err != nil {
		return u, fmt.Errorf("CPU-time clock of pid %d: %w", pid, err)
	}
	u.cpu = time.Duration(ts.Nano())
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return u, err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		run, err := readSchedstat(fmt.Sprintf("%s/%d/schedstat", dir, tid))
		if err != nil {
			continue // the thread has exited
		}
		st, err := readStatusFile(fmt.Sprintf("%s/%d/status", dir, tid))
		if err != nil {
			continue
		}
		u.threads[tid] = threadUsage{run: run, switches: st["voluntary_ctxt_switches"] + st["nonvoluntary_ctxt_switches"]}
	}
	return u, nil
}

// readSchedstat reads the time on the CPU, the first of schedstat's three
// fields (run time, wait time in ns, time slices).
func readSchedstat(path string) (time.Duration, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return 0, fmt.Errorf("%s: empty", path)
	}
	ns, err := strconv.ParseUint(f[0], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return time.Duration(ns), nil
}

// usageDelta is what a process used between two readings.
type usageDelta struct {
	cpu      time.Duration // by the CPU-time clock
	tasks    time.Duration // summed over the task directories (live threads only)
	switches uint64
	exited   int // threads present at the first reading and gone at the second
}

// since is what the process did from the reading before to u. A thread
// that started in between counts from zero.
func (u procUsage) since(before procUsage) usageDelta {
	d := usageDelta{cpu: u.cpu - before.cpu}
	for tid, t := range u.threads {
		b := before.threads[tid] // zero for a thread that started since
		d.tasks += t.run - b.run
		d.switches += t.switches - b.switches
	}
	for tid := range before.threads {
		if _, ok := u.threads[tid]; !ok {
			d.exited++
		}
	}
	return d
}

// add sums deltas of several processes.
func (d *usageDelta) add(o usageDelta) {
	d.cpu += o.cpu
	d.tasks += o.tasks
	d.switches += o.switches
	d.exited += o.exited
}

// readUsages reads every process in pids.
func readUsages(pids []int) ([]procUsage, error) {
	us := make([]procUsage, len(pids))
	for i, pid := range pids {
		var err error
		if us[i], err = readUsage(pid); err != nil {
			return nil, err
		}
	}
	return us, nil
}

// usageSince sums, over the processes, what they did since before (read
// from the same pids in the same order).
func usageSince(pids []int, before []procUsage) (usageDelta, error) {
	var d usageDelta
	for i, pid := range pids {
		u, err := readUsage(pid)
		if err != nil {
			return d, err
		}
		d.add(u.since(before[i]))
	}
	return d, nil
}
