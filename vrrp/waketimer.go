package vrrp

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// wakeTimer is the protocol loop's one timer: a timerfd that the Go
// runtime's poller watches. A Go timer can fire a millisecond or more late
// (the poller sleeps in whole milliseconds, and the kernel adds its timer
// slack), and a backup that takes over late lengthens every failover. A
// timerfd expiry wakes the poller at once, so the loop runs within tens of
// microseconds of a deadline, without spinning.
type wakeTimer struct {
	f    *os.File
	fd   int
	C    chan struct{} // a tick per expiry; ticks coalesce
	done chan struct{}
}

func newWakeTimer() (*wakeTimer, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("create the protocol timer (timerfd): %w", err)
	}
	t := &wakeTimer{f: os.NewFile(uintptr(fd), "timerfd"), fd: fd, C: make(chan struct{}, 1), done: make(chan struct{})}
	go t.run()
	return t, nil
}

// run turns expiries into ticks until Stop.
func (t *wakeTimer) run() {
	defer close(t.done)
	var buf [8]byte // the count of expiries
	for {
		if _, err := t.f.Read(buf[:]); err != nil {
			if errors.Is(err, os.ErrClosed) {
				return
			}
			// Nothing else is expected from a timerfd; do not spin on
			// it, and tick so that the loop rescans its deadlines.
			time.Sleep(time.Millisecond)
		}
		select {
		case t.C <- struct{}{}:
		default:
		}
	}
}

// Set arms the timer to expire after d, at once if d is not positive.
func (t *wakeTimer) Set(d time.Duration) error {
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(max(d, 1)))}
	return unix.TimerfdSettime(t.fd, 0, &spec, nil)
}

// Disarm stops the timer from expiring.
func (t *wakeTimer) Disarm() error {
	return unix.TimerfdSettime(t.fd, 0, &unix.ItimerSpec{}, nil)
}

// Stop closes the timer and waits for its goroutine.
func (t *wakeTimer) Stop() {
	t.f.Close()
	<-t.done
}
