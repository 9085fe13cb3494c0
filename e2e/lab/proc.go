package lab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Proc is a background process started by Host.Start.
type Proc struct {
	// PID is the process's own PID (in the initial PID namespace).
	PID int

	ns   string
	args []string
	cmd  *exec.Cmd

	// done is closed once the process has been reaped; state is set
	// before that and read only after.
	done  chan struct{}
	state *os.ProcessState
}

func newProc(cmd *exec.Cmd, ns string, args []string) *Proc {
	p := &Proc{
		PID:  cmd.Process.Pid,
		ns:   ns,
		args: args,
		cmd:  cmd,
		done: make(chan struct{}),
	}
	go func() {
		// The error only repeats the exit status, which state has.
		_ = cmd.Wait()
		p.state = cmd.ProcessState
		close(p.done)
	}()
	return p
}

func (p *Proc) String() string {
	return fmt.Sprintf("pid %d (%s in %s)", p.PID, strings.Join(p.args, " "), p.ns)
}

// awaitNamespace waits until the process has entered its namespace. Until
// then it is still `ip` setting itself up, and sockets or signals meant for
// the command would miss it.
func (p *Proc) awaitNamespace() error {
	want, err := os.Stat(filepath.Join(netnsDir, p.ns))
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	wantIno := want.Sys().(*syscall.Stat_t).Ino
	nsPath := fmt.Sprintf("/proc/%d/ns/net", p.PID)
	deadline := time.Now().Add(enterWait)
	for {
		// Checked after the stat: a process that has been reaped has
		// no /proc entry, and its PID may already belong to another.
		got, err := os.Stat(nsPath)
		if p.Exited() {
			return nil
		}
		if err == nil && got.Sys().(*syscall.Stat_t).Ino == wantIno {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not enter its namespace within %s", p, enterWait)
		}
		time.Sleep(time.Millisecond)
	}
}

// Signal sends sig to the process. After the process has exited it returns
// os.ErrProcessDone.
func (p *Proc) Signal(sig os.Signal) error {
	if p.Exited() {
		return os.ErrProcessDone
	}
	// os.Process signals through a pidfd, so a reaped PID that the
	// kernel has handed out again is never hit.
	return p.cmd.Process.Signal(sig)
}

// Wait waits up to timeout for the process to exit and returns its exit
// code; a process ended by a signal reports 128 plus the signal number, as
// a shell does. A timeout of zero or less only checks. It returns an error
// if the process is still running when the timeout expires.
func (p *Proc) Wait(timeout time.Duration) (exitCode int, err error) {
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case <-p.done:
		case <-t.C:
		}
	}
	select {
	case <-p.done:
		return exitCode128(p.state), nil
	default:
		return -1, fmt.Errorf("%s still running after %s", p, max(timeout, 0))
	}
}

// Kill sends SIGKILL and waits for the process to be reaped.
func (p *Proc) Kill() error {
	if err := p.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill %s: %w", p, err)
	}
	if _, err := p.Wait(killWait); err != nil {
		return fmt.Errorf("kill: %w", err)
	}
	return nil
}

// Exited reports whether the process has exited and been reaped.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func exitCode128(s *os.ProcessState) int {
	if ws, ok := s.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return s.ExitCode()
}
