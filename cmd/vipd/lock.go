package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// lockFile is the name, in state_dir, of the file whose exclusive lock a
// running vipd holds, and which holds its PID.
const lockFile = "vipd.lock"

// holderWait bounds how long a refused vipd waits for the holder to have
// written its PID (it writes it just after taking the lock).
const holderWait = 200 * time.Millisecond

// lockStateDir takes the exclusive lock that makes vipd the only one
// running on state_dir's configuration: a second vipd would take the
// first one's VIPs for stale ones and remove them, then both would run
// the same VRIDs. It is taken before any address is touched and held
// until release (or the process's death: the kernel drops a flock with
// its last descriptor, so kill -9 leaves no stale lock).
func lockStateDir(dir string) (release func(), err error) {
	path := filepath.Join(dir, lockFile)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o640)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := flock(f); err != nil {
		defer f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("another vipd (PID %s) holds %s and runs these instances: stop it first", holderPID(f), path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	pid := []byte(strconv.Itoa(os.Getpid()) + "\n")
	err = f.Truncate(0)
	if err == nil {
		_, err = f.WriteAt(pid, 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: writing the PID: %w", path, err)
	}
	return func() { f.Close() }, nil
}

func flock(f *os.File) error {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err != unix.EINTR {
			return err
		}
	}
}

// holderPID reads the PID that the lock's holder wrote, waiting briefly
// for a holder that has just taken the lock.
func holderPID(f *os.File) string {
	deadline := time.Now().Add(holderWait)
	for {
		b := make([]byte, 32)
		n, _ := f.ReadAt(b, 0)
		if pid := strings.TrimSpace(string(b[:n])); pid != "" {
			if _, err := strconv.Atoi(pid); err == nil {
				return pid
			}
		}
		if time.Now().After(deadline) {
			return "unknown"
		}
		time.Sleep(10 * time.Millisecond)
	}
}
