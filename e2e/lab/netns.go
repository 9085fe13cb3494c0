package lab

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
)

// inNamespace runs fn on an OS thread switched into the named network
// namespace. Sockets fn opens stay in that namespace once the thread has
// switched back.
//
// The work happens on a fresh goroutine so that the caller's thread is never
// touched. That goroutine's thread is unlocked only after it has been put
// back into its original namespace; if the switch back fails the thread
// stays locked, and the runtime destroys it when the goroutine ends instead
// of handing it to other goroutines while it sits in the wrong namespace.
func inNamespace(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		restored, err := switchAndRun(ns, fn)
		if restored {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// switchAndRun must run on a locked OS thread. It reports whether the thread
// is back in the namespace it started in.
func switchAndRun(ns string, fn func() error) (restored bool, err error) {
	orig, err := netns.Get()
	if err != nil {
		return true, fmt.Errorf("get current network namespace: %w", err)
	}
	defer orig.Close()

	target, err := netns.GetFromName(ns)
	if err != nil {
		return true, fmt.Errorf("open network namespace %s: %w", ns, err)
	}
	defer target.Close()

	if err := netns.Set(target); err != nil {
		// A failed setns leaves the thread where it was; restoring
		// anyway costs nothing and removes the doubt.
		if rerr := netns.Set(orig); rerr != nil {
			return false, errors.Join(
				fmt.Errorf("enter network namespace %s: %w", ns, err),
				fmt.Errorf("restore network namespace: %w", rerr))
		}
		return true, fmt.Errorf("enter network namespace %s: %w", ns, err)
	}

	ferr := fn()

	if rerr := netns.Set(orig); rerr != nil {
		return false, errors.Join(ferr,
			fmt.Errorf("restore network namespace after %s: %w", ns, rerr))
	}
	return true, ferr
}
