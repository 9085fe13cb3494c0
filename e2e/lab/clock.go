package lab

import (
	"errors"
	"time"

	"golang.org/x/sys/unix"
)

// SleepUntil blocks until t, within a few microseconds: an absolute
// clock_nanosleep on the calling thread until spinLead before t (the Go
// timer may wake up to a millisecond late, a sleeping thread's own wake-up
// a few hundred microseconds late on a busy machine), then the rest on the
// CPU. The benchmarks use it to place a fault or a probe's request at a
// chosen phase: a request sent late makes its reply, and the gap measured,
// late by as much.
func SleepUntil(t time.Time) {
	if d := time.Until(t) - spinLead; d > 0 {
		// The wall clock's deadline; time.Until used the monotonic one.
		ts := unix.NsecToTimespec(time.Now().UnixNano() + int64(d))
		for {
			err := unix.ClockNanosleep(unix.CLOCK_REALTIME, unix.TIMER_ABSTIME, &ts, nil)
			if !errors.Is(err, unix.EINTR) {
				break
			}
		}
	}
	for time.Now().Before(t) {
	}
}

// spinLead is how much of a SleepUntil is spent waiting on the CPU.
const spinLead = 300 * time.Microsecond
