package vrrp

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vipd/vipd/config"
)

// NotifyEvent is one state change to report to an instance's or a sync
// group's hooks.
type NotifyEvent struct {
	Instance, State, PreviousState string   // states as "master", "backup", "fault", "stopped"
	Priority                       int      // effective; 0 for a group
	VIPs                           []string // addresses
	// Group is the sync group's name for a group's event (Instance is
	// then ""), and Members its instances.
	Group   string
	Members []string
}

// keepalivedState is keepalived's name of a hook state, as its notify
// scripts receive it.
func keepalivedState(state string) string {
	switch state {
	case "master":
		return "MASTER"
	case "backup":
		return "BACKUP"
	case "fault":
		return "FAULT"
	case "stopped":
		return "STOP"
	}
	return "{UNKNOWN}"
}

// hookRun is one program a notifier runs for an event.
type hookRun struct {
	key  string // the notify key: master, backup, fault, stop, keepalived or command
	argv []string
}

// hooksFor returns what spec runs for ev, in order: the hook of the state
// entered, then keepalived with keepalived's four arguments appended
// (INSTANCE|GROUP, the name, the state, the priority: 0 for a group), then
// command.
func hooksFor(spec *config.Notify, ev NotifyEvent) []hookRun {
	var out []hookRun
	own := map[string]struct {
		key  string
		argv []string
	}{
		"master": {"master", spec.Master}, "backup": {"backup", spec.Backup},
		"fault": {"fault", spec.Fault}, "stopped": {"stop", spec.Stop},
	}[ev.State]
	if len(own.argv) > 0 {
		out = append(out, hookRun{own.key, own.argv})
	}
	if len(spec.Keepalived) > 0 {
		kind, name, prio := "INSTANCE", ev.Instance, ev.Priority
		if ev.Group != "" {
			kind, name, prio = "GROUP", ev.Group, 0
		}
		argv := append(slices.Clip(spec.Keepalived), kind, name, keepalivedState(ev.State), strconv.Itoa(prio))
		out = append(out, hookRun{"keepalived", argv})
	}
	if len(spec.Command) > 0 {
		out = append(out, hookRun{"command", spec.Command})
	}
	return out
}

// maxNotifyPending bounds the events waiting for a hook that is slower than
// the transitions. Past it the oldest are dropped: the newest state is the
// one a hook must not miss.
const maxNotifyPending = 1000

// notifier runs one instance's (or sync group's) hooks for every event,
// in order, one at a time, never blocking the caller. Hooks for one
// instance never overlap, so a hook that sees "backup" cannot finish after
// a later one that saw "master".
type notifier struct {
	instance string // or the group's name
	group    bool
	spec     config.Notify
	log      *slog.Logger
	// run runs one hook; runCommand but in tests.
	run  func(argv, vars []string, timeout time.Duration, cred *config.Credential) commandRun
	wake chan struct{} // capacity 1: "the queue or closed changed"
	done chan struct{} // closed when the goroutine has returned
	// after, if not nil, is a predecessor's done: no hook runs before it
	// is closed, so that a hook replaced by a reload and the new one
	// never overlap or run out of order.
	after <-chan struct{}

	mu      sync.Mutex
	queue   []NotifyEvent
	dropped int // events dropped for overflow, not yet logged
	closed  bool
	drain   bool
}

// newNotifier starts the goroutine that runs an instance's hooks for each
// event; Close stops it.
func newNotifier(instance string, spec config.Notify, log *slog.Logger) *notifier {
	return startNotifier(&notifier{instance: instance, spec: spec, log: log.With("instance", instance)}, nil)
}

// newGroupNotifier is newNotifier for a sync group's hooks.
func newGroupNotifier(group string, spec config.Notify, log *slog.Logger) *notifier {
	return startNotifier(&notifier{instance: group, group: true, spec: spec, log: log.With("sync_group", group)}, nil)
}

// startNotifier completes n and starts its goroutine, whose first hook
// waits until after is closed (nil: no wait).
func startNotifier(n *notifier, after <-chan struct{}) *notifier {
	if n.spec.Timeout <= 0 {
		n.spec.Timeout = defaultNotifyTimeout
	}
	if n.run == nil {
		n.run = func(argv, vars []string, timeout time.Duration, cred *config.Credential) commandRun {
			// Not tied to the Node's context: a hook that has started is
			// let run to its end or its timeout even while vipd stops.
			return runCommand(context.Background(), argv, vars, timeout, cred)
		}
	}
	n.wake = make(chan struct{}, 1)
	n.done = make(chan struct{})
	n.after = after
	go n.loop()
	return n
}

// Notify queues ev and returns at once. Events are kept in order and none
// is dropped unless more than maxNotifyPending are waiting, in which case
// the oldest go.
func (n *notifier) Notify(ev NotifyEvent) {
	ev.VIPs = slices.Clone(ev.VIPs)
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		n.log.Debug("notify hook closed; event not run", "state", ev.State)
		return
	}
	n.queue = append(n.queue, ev)
	if over := len(n.queue) - maxNotifyPending; over > 0 {
		clear(n.queue[:over]) // let the dropped events' VIP lists go
		n.queue = n.queue[over:]
		n.dropped += over
	}
	n.mu.Unlock()
	n.signal()
}

// Close stops accepting events and waits for the goroutine. A hook already
// running finishes or is killed at its timeout; the events still queued are
// run (each bounded by the timeout) only if drain is true. Later calls only
// wait.
func (n *notifier) Close(drain bool) {
	n.Stop(drain)
	<-n.done
}

// Stop is Close without the wait: it returns at once, and the goroutine
// goes on with what Close would do; Done is closed when it has. The
// protocol loop stops notifiers this way, never waiting on a hook.
func (n *notifier) Stop(drain bool) {
	n.mu.Lock()
	if !n.closed {
		n.closed, n.drain = true, drain
	}
	n.mu.Unlock()
	n.signal()
}

// Done is closed when the notifier's goroutine has returned.
func (n *notifier) Done() <-chan struct{} { return n.done }

func (n *notifier) signal() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

func (n *notifier) loop() {
	defer close(n.done)
	if n.after != nil {
		<-n.after
	}
	for {
		ev, ok := n.next()
		if !ok {
			return
		}
		n.runHooks(ev)
	}
}

// next waits for the next event to run; false means the notifier is closed
// and nothing more is to run.
func (n *notifier) next() (NotifyEvent, bool) {
	for {
		n.mu.Lock()
		dropped := n.dropped
		n.dropped = 0
		if len(n.queue) > 0 && (!n.closed || n.drain) {
			ev := n.queue[0]
			n.queue[0] = NotifyEvent{}
			n.queue = n.queue[1:]
			n.mu.Unlock()
			n.logDropped(dropped)
			return ev, true
		}
		closed, discarded := n.closed, len(n.queue)
		if closed {
			n.queue = nil
		}
		n.mu.Unlock()
		n.logDropped(dropped)
		if closed {
			if discarded > 0 {
				n.log.Info("notify hook not run for queued events: shutting down", "discarded", discarded)
			}
			return NotifyEvent{}, false
		}
		<-n.wake
	}
}

func (n *notifier) logDropped(dropped int) {
	if dropped > 0 {
		n.log.Warn("notify hook is falling behind; dropped the oldest queued events", "dropped", dropped, "max_pending", maxNotifyPending)
	}
}

// runHooks runs the hooks for one event, one after the other, and logs
// how each went.
func (n *notifier) runHooks(ev NotifyEvent) {
	if ev.Instance == "" && !n.group {
		ev.Instance = n.instance
	}
	if n.group && ev.Group == "" {
		ev.Group = n.instance
	}
	// With PATH and LANG, the hook's whole environment: nothing of the
	// daemon's own (NOTIFY_SOCKET, WATCHDOG_*) reaches it.
	var vars []string
	if n.group {
		vars = append(vars, "VIPD_GROUP="+ev.Group, "VIPD_INSTANCES="+strings.Join(ev.Members, " "))
	} else {
		vars = append(vars, "VIPD_INSTANCE="+ev.Instance)
	}
	vars = append(vars,
		"VIPD_STATE="+ev.State,
		"VIPD_PREVIOUS_STATE="+ev.PreviousState,
		"VIPD_PRIORITY="+strconv.Itoa(ev.Priority),
		"VIPD_VIPS="+strings.Join(ev.VIPs, " "),
	)
	for _, h := range hooksFor(&n.spec, ev) {
		run := n.run(h.argv, vars, n.spec.Timeout, n.spec.Run)
		attrs := append([]any{"hook", h.key, "state", ev.State, "previous_state", ev.PreviousState}, run.outputAttrs()...)
		attrs = append(attrs, "duration", run.duration)
		switch {
		case run.timedOut:
			n.log.Error(fmt.Sprintf("notify hook timed out after %s; killed", n.spec.Timeout), attrs...)
		case !run.started:
			n.log.Error("notify hook could not be started", append(attrs, "err", run.err)...)
		case run.err != nil:
			n.log.Warn("notify hook failed", append(attrs, "err", run.err)...)
		default:
			n.log.Info("notify hook ran", attrs...)
		}
	}
}
