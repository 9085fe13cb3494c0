package inject

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openListener opens a raw socket for IP protocol 253 (reserved for
// experiments) with a large receive buffer, in the calling thread's
// namespace.
func openListener() (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 253)
	if err != nil {
		return -1, err
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// drainCount reads what fd has queued until it stays quiet for 200 ms,
// closes it and returns the number of datagrams.
func drainCount(t *testing.T, fd int) int {
	t.Helper()
	defer unix.Close(fd)
	buf := make([]byte, 2048)
	n := 0
	quiet := time.Now().Add(200 * time.Millisecond)
	for time.Now().Before(quiet) {
		_, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
		if err == unix.EAGAIN {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatalf("receive: %v", err)
		}
		n++
		quiet = time.Now().Add(200 * time.Millisecond)
	}
	return n
}
