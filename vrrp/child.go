package vrrp

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"

	"github.com/vipd/vipd/config"
	"golang.org/x/sys/unix"
)

// childPath is the PATH of every hook and tracker script. The rest of the
// daemon's environment (NOTIFY_SOCKET, WATCHDOG_*, INVOCATION_ID, the
// operator's shell variables when run by hand) is not passed on.
const childPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// childEnv is the whole environment of a hook or tracker script: PATH,
// LANG=C and the given variables (a hook's VIPD_*).
func childEnv(vars ...string) []string {
	return append([]string{"PATH=" + childPath, "LANG=C"}, vars...)
}

// credentialFor returns what the child is switched to for a configured
// user (nil: nothing to switch). config.Load allows a user or group other
// than vipd's own only when vipd runs as root, and a non-root vipd named
// as itself has nothing to switch to (and could not set groups).
func credentialFor(c *config.Credential) *syscall.Credential {
	if c == nil || os.Geteuid() != 0 {
		return nil
	}
	return &syscall.Credential{Uid: c.UID, Gid: c.GID, Groups: c.Groups}
}

// startUnprivileged starts cmd with no capabilities in any set and with
// no_new_privs, whatever vipd itself holds. With a credential
// (cmd.SysProcAttr.Credential, vipd is root) the child switches to that
// user and group before execve, still with no capability after it.
//
// os/exec can raise ambient capabilities for a child but not clear them, and
// under the shipped unit (a non-root user with ambient CAP_NET_ADMIN and
// CAP_NET_RAW) the ambient set is what carries them across execve. Capability
// sets and no_new_privs belong to a thread, and Go forks the child from the
// thread that calls Start. So cmd is started from a goroutine locked to its
// own thread, after that thread has set no_new_privs and emptied its ambient,
// inheritable, permitted and effective sets; the child inherits exactly that.
// With no_new_privs, execve grants no capability beyond the (empty)
// permitted set, which also covers a vipd run as root (uid 0 would otherwise
// get the full set back at execve) and binaries with file capabilities.
//
// Switching user takes CAP_SETGID (setgroups, setgid) and CAP_SETUID
// (setuid) in the child between fork and execve, so with a credential the
// thread keeps exactly those two in its permitted and effective sets, and
// nothing else. Setting a non-zero uid clears them in the child; for uid 0
// (a configured group with root) the thread also sets SECBIT_NOROOT
// (locked), so that execve grants root no capability: with no_new_privs
// and nothing in the ambient or inheritable sets, the program starts with
// none whatever its uid.
//
// The goroutine never unlocks the thread: the runtime then ends the thread
// with it rather than reuse a thread that lost its privileges.
func startUnprivileged(cmd *exec.Cmd) error {
	errc := make(chan error, 1)
	go startOnDisposableThread(cmd, errc)
	return <-errc
}

func startOnDisposableThread(cmd *exec.Cmd, errc chan<- error) {
	runtime.LockOSThread()
	if unix.Gettid() == unix.Getpid() {
		// The main thread is parked for good instead of ended, and its
		// credentials are what /proc/PID/status shows: leave it as it is.
		// While this goroutine holds it, a new one runs on another thread.
		done := make(chan struct{})
		go func() {
			defer close(done)
			startOnDisposableThread(cmd, errc)
		}()
		<-done
		runtime.UnlockOSThread()
		return
	}
	var setID bool
	if a := cmd.SysProcAttr; a != nil && a.Credential != nil {
		setID = true
	}
	if err := dropThreadPrivileges(setID); err != nil {
		errc <- fmt.Errorf("start %s: %w", cmd.Path, err)
		return
	}
	errc <- cmd.Start()
}

// dropThreadPrivileges leaves the calling thread, which must be locked and
// never reused, with no capabilities and with no_new_privs; with setID,
// CAP_SETUID and CAP_SETGID stay permitted and effective and root gets no
// capabilities at execve (SECBIT_NOROOT).
func dropThreadPrivileges(setID bool) error {
	if setID {
		// Needs CAP_SETPCAP, so before the capabilities go.
		bits := secbitNoroot | secbitNorootLocked
		if err := unix.Prctl(unix.PR_SET_SECUREBITS, uintptr(bits), 0, 0, 0); err != nil {
			return fmt.Errorf("set SECBIT_NOROOT: %w", err)
		}
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set no_new_privs: %w", err)
	}
	// Emptying the inheritable set below clears the ambient set too, but
	// say it outright.
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clear the ambient capabilities: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3} // Pid 0: this thread
	var keep [2]unix.CapUserData                                        // 64 bits in two words; none
	if setID {
		const setIDCaps = 1<<unix.CAP_SETUID | 1<<unix.CAP_SETGID // both in the first word
		keep[0].Permitted, keep[0].Effective = setIDCaps, setIDCaps
	}
	if err := unix.Capset(&hdr, &keep[0]); err != nil {
		return fmt.Errorf("drop the capabilities: %w", err)
	}
	return nil
}

// The securebits of linux/securebits.h that x/sys/unix does not name.
const (
	secbitNoroot       = 1 << 0 // SECBIT_NOROOT: uid 0 gains no capability at execve
	secbitNorootLocked = 1 << 1 // SECBIT_NOROOT_LOCKED
)
