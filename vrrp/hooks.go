package vrrp

import (
	"slices"
	"strings"
	"time"

	"github.com/vipd/vipd/config"
)

// notifyState names a state for hooks: init after a shutdown is "stopped".
func notifyState(s State) string {
	if s == StateInit {
		return "stopped"
	}
	return s.String()
}

func (n *Node) notifyHook(in *instance, out Output) {
	if in.notify == nil {
		return
	}
	vips := make([]string, len(in.vips))
	for i, v := range in.vips {
		vips[i] = v.String()
	}
	in.notify.Notify(NotifyEvent{
		Instance: in.cfg.Name, State: notifyState(out.To), PreviousState: notifyState(out.From),
		Priority: int(in.m.Config().Priority), VIPs: vips,
	})
}

// newNotifierFor starts an instance's hook runner, if it has a hook. Its
// first hook waits for any hook a reload retired for the same instance,
// so that an instance's hooks still run one at a time and in order.
func (n *Node) newNotifierFor(c config.Instance) *notifier {
	if c.Notify == nil {
		return nil
	}
	var after <-chan struct{}
	for _, r := range n.retired {
		if r.instance == c.Name {
			after = r.Done() // the latest; it waits for any earlier one
		}
	}
	return newNotifierAfter(c.Name, *c.Notify, n.log, after)
}

// hookDrainMax bounds how long a stopping Node waits for the hooks still
// queued (the "stopped" events among them) once the protocol work is
// done: with handoverMax it stays within systemd's TimeoutStopSec (10 s
// in deploy/vipd.service).
const hookDrainMax = 5 * time.Second

// retireNotifier stops nt (nil: none) without waiting: the hooks already
// queued, such as a removed instance's "stopped", still run on its own
// goroutine while the loop goes on; awaitHooks waits for them at the end.
func (n *Node) retireNotifier(nt *notifier) {
	if nt == nil {
		return
	}
	nt.Stop(true)
	n.retired = slices.DeleteFunc(n.retired, func(r *notifier) bool {
		select {
		case <-r.Done():
			return true
		default:
			return false
		}
	})
	n.retired = append(n.retired, nt)
}

// awaitHooks waits up to limit for every retired notifier to finish its
// queued hooks, and logs the instances whose hooks it left running.
func (n *Node) awaitHooks(limit time.Duration) {
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for i, r := range n.retired {
		select {
		case <-r.Done():
		case <-deadline.C:
			var left []string
			for _, r := range n.retired[i:] {
				select {
				case <-r.Done():
				default:
					left = append(left, r.instance)
				}
			}
			n.log.Warn("notify hooks still running at shutdown; not waiting for them", "waited", limit.String(), "instances", strings.Join(left, ","))
			return
		}
	}
}
