package main

import (
	"os"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// readUsage of this process reads the same clock as
// CLOCK_PROCESS_CPUTIME_ID, and finds the CPU time a busy loop used.
func TestReadUsageSelf(t *testing.T) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_PROCESS_CPUTIME_ID, &ts); err != nil {
		t.Fatal(err)
	}
	lo := time.Duration(ts.Nano())
	u0, err := readUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.ClockGettime(unix.CLOCK_PROCESS_CPUTIME_ID, &ts); err != nil {
		t.Fatal(err)
	}
	hi := time.Duration(ts.Nano())
	if u0.cpu < lo || u0.cpu > hi {
		t.Fatalf("CPU-time clock of pid %d reads %v, want between %v and %v (CLOCK_PROCESS_CPUTIME_ID before and after)", os.Getpid(), u0.cpu, lo, hi)
	}
	if _, ok := u0.threads[unix.Gettid()]; !ok {
		t.Errorf("thread %d (this one) missing from %v", unix.Gettid(), u0.threads)
	}
	// Spin until this thread has used 30 ms of CPU by its own clock
	// (not 30 ms of wall time, which a busy machine shares out), then
	// the process's figures must hold at least that. Locked, so that
	// the thread clock read is the same thread's throughout.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var own unix.Timespec
	x := 0
	for {
		if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &own); err != nil {
			t.Fatal(err)
		}
		if x == 0 {
			lo = time.Duration(own.Nano())
		} else if time.Duration(own.Nano())-lo >= 30*time.Millisecond {
			break
		}
		x++
	}
	u1, err := readUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	d := u1.since(u0)
	if d.cpu < 30*time.Millisecond {
		t.Errorf("a busy loop of 30 ms of thread CPU time (%d turns) shows %v on the process's CPU-time clock", x, d.cpu)
	}
	if d.tasks < 30*time.Millisecond || d.tasks > d.cpu+time.Millisecond {
		t.Errorf("threads' schedstat sum %v, want at least 30ms and about the clock's %v", d.tasks, d.cpu)
	}
}

// since counts a thread that started from zero, and counts one that
// exited without its time.
func TestUsageSince(t *testing.T) {
	before := procUsage{cpu: 100 * time.Millisecond, threads: map[int]threadUsage{
		1: {run: 60 * time.Millisecond, switches: 10},
		2: {run: 40 * time.Millisecond, switches: 5}, // exits
	}}
	after := procUsage{cpu: 130 * time.Millisecond, threads: map[int]threadUsage{
		1: {run: 75 * time.Millisecond, switches: 14},
		3: {run: 5 * time.Millisecond, switches: 2}, // new
	}}
	got := after.since(before)
	want := usageDelta{cpu: 30 * time.Millisecond, tasks: 20 * time.Millisecond, switches: 6, exited: 1}
	if got != want {
		t.Errorf("since = %+v, want %+v", got, want)
	}
	fp := nodeFootprint{cpu: got.cpu, tasks: got.tasks, exited: got.exited, switches: got.switches, adverts: 3}
	if c := fp.crossCheck(); c == "" {
		t.Error("a 10 ms gap and an exited thread: no note")
	}
	if fp.perAdvert() != 10*time.Millisecond || fp.switchesPerAdvert() != 2 {
		t.Errorf("per advert %v and %v switches, want 10ms and 2", fp.perAdvert(), fp.switchesPerAdvert())
	}
	if c := (nodeFootprint{cpu: time.Second, tasks: time.Second - 50*time.Microsecond}).crossCheck(); c != "" {
		t.Errorf("readings 50 µs apart: note %q", c)
	}
}

// The rounds of a configuration combine into the medians, the largest
// peak RSS, and every round's notes.
func TestMedianFootprint(t *testing.T) {
	round := func(cpu time.Duration, hwm uint64, note string) footprintResult {
		fp := nodeFootprint{cpu: cpu, tasks: cpu, cores: cpu.Seconds() / 10, switches: uint64(cpu / time.Millisecond), adverts: 500, hwm: hwm, pss: hwm / 2}
		return footprintResult{daemon: "vipd", master: fp, backup: fp, unsteady: note}
	}
	got := medianFootprint([]footprintResult{
		round(30*time.Millisecond, 10e6, ""),
		round(10*time.Millisecond, 12e6, "1 transitions on b during the window"),
		round(20*time.Millisecond, 11e6, ""),
	})
	if got.rounds != 3 {
		t.Errorf("rounds %d, want 3", got.rounds)
	}
	for name, fp := range map[string]nodeFootprint{"master": got.master, "backup": got.backup} {
		if fp.cpu != 20*time.Millisecond || fp.switches != 20 || fp.cores != 0.002 || fp.pss != 5.5e6 {
			t.Errorf("%s: %+v, want the middle round's CPU, switches, cores and PSS", name, fp)
		}
		if fp.hwm != 12e6 {
			t.Errorf("%s: peak RSS %d, want the largest, 12e6", name, fp.hwm)
		}
	}
	if got.unsteady != "round 2: 1 transitions on b during the window" {
		t.Errorf("notes %q", got.unsteady)
	}
	one := round(time.Millisecond, 1, "x")
	if m := medianFootprint([]footprintResult{one}); m.rounds != 0 || m.unsteady != "x" || m.master.cpu != time.Millisecond {
		t.Errorf("one round changed: %+v", m)
	}
}
