package vrrp

import (
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// wakeTimer is the protocol loop's one timer: a timerfd that the Go
// runtime's poller watches. A Go timer can fire a millisecond or more late
// (the poller sleeps in whole milliseconds, and the kernel adds its timer
// slack), and a backup that takes over late lengthens every failover. A
// timerfd expiry wakes the poller at once, so the loop runs within tens of
// microseconds of a deadline, without spinning. Its reads and settime are
// raw system calls, as the sockets' are (batch.go): they never block, and a
// raw call does not wake the runtime's sysmon thread.
type wakeTimer struct {
	f      *os.File
	raw    syscall.RawConn
	fd     int
	readFn func(uintptr) bool
	rerr   unix.Errno
	buf    [8]byte       // the count of expiries
	C      chan struct{} // a tick per expiry; ticks coalesce
	done   chan struct{}
	// stopped is set before Stop closes the file: a read of a closed file
	// through its RawConn fails with an error that os does not translate
	// to os.ErrClosed.
	stopped atomic.Bool
}

func newWakeTimer() (*wakeTimer, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("create the protocol timer (timerfd): %w", err)
	}
	t := &wakeTimer{f: os.NewFile(uintptr(fd), "timerfd"), fd: fd, C: make(chan struct{}, 1), done: make(chan struct{})}
	if t.raw, err = t.f.SyscallConn(); err != nil {
		t.f.Close()
		return nil, fmt.Errorf("protocol timer (timerfd): %w", err)
	}
	t.readFn = t.doRead
	go t.run()
	return t, nil
}

// run turns expiries into ticks until Stop.
func (t *wakeTimer) run() {
	defer close(t.done)
	for {
		t.rerr = 0
		err := t.raw.Read(t.readFn)
		if t.stopped.Load() {
			return
		}
		if err != nil || t.rerr != 0 {
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

// doRead is the raw connection's read callback: it reads the expiry count,
// and returns false ("wait until readable, then call again") when there is
// none yet.
func (t *wakeTimer) doRead(fd uintptr) bool {
	for {
		_, _, errno := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&t.buf[0])), uintptr(len(t.buf)))
		switch errno {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		case 0:
			return true
		}
		t.rerr = errno
		return true
	}
}

// Set arms the timer to expire after d, at once if d is not positive.
func (t *wakeTimer) Set(d time.Duration) error {
	return t.settime(unix.ItimerSpec{Value: unix.NsecToTimespec(int64(max(d, 1)))})
}

// Disarm stops the timer from expiring.
func (t *wakeTimer) Disarm() error {
	return t.settime(unix.ItimerSpec{})
}

func (t *wakeTimer) settime(spec unix.ItimerSpec) error {
	_, _, errno := unix.RawSyscall6(unix.SYS_TIMERFD_SETTIME, uintptr(t.fd), 0, uintptr(unsafe.Pointer(&spec)), 0, 0, 0)
	if errno != 0 {
		return fmt.Errorf("set the protocol timer (timerfd): %w", errno)
	}
	return nil
}

// Stop closes the timer and waits for its goroutine.
func (t *wakeTimer) Stop() {
	t.stopped.Store(true)
	t.f.Close()
	<-t.done
}
