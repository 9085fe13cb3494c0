package lab

import (
	"errors"
	"time"

	"golang.org/x/sys/unix"
)

// SleepUntil blocks until t with the kernel's own precision (tens of
// microseconds) rather than the Go timer's, which may wake up to a
// millisecond late: an absolute clock_nanosleep on the calling thread.
// The benchmarks use it to place a fault or a probe at a chosen phase.
func SleepUntil(t time.Time) {
	d := time.Until(t)
	if d <= 0 {
		return
	}
	// The wall clock's deadline; time.Until used the monotonic one.
	wall := time.Now().UnixNano() + int64(d)
	ts := unix.NsecToTimespec(wall)
	for {
		err := unix.ClockNanosleep(unix.CLOCK_REALTIME, unix.TIMER_ABSTIME, &ts, nil)
		if !errors.Is(err, unix.EINTR) {
			return
		}
	}
}
