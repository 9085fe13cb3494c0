package main

import (
	"os"
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
	start := time.Now()
	x := 0
	for time.Since(start) < 30*time.Millisecond {
		x++
	}
	u1, err := readUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	d := u1.since(u0)
	if d.cpu < 20*time.Millisecond {
		t.Errorf("a 30 ms busy loop (%d turns) used %v of the CPU-time clock", x, d.cpu)
	}
	if d.tasks < 20*time.Millisecond || d.tasks > d.cpu+time.Millisecond {
		t.Errorf("threads' schedstat sum %v, want at least 20ms and about the clock's %v", d.tasks, d.cpu)
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
