package vrrp

import (
	"reflect"
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
	return startNotifier(&notifier{instance: c.Name, spec: *c.Notify, log: n.log.With("instance", c.Name), run: n.hookRun}, n.retiredDone(c.Name, false))
}

// newGroupNotifierFor is newNotifierFor for a sync group's hooks.
func (n *Node) newGroupNotifierFor(g config.SyncGroup) *notifier {
	if g.Notify == nil {
		return nil
	}
	return startNotifier(&notifier{instance: g.Name, group: true, spec: *g.Notify, log: n.log.With("sync_group", g.Name), run: n.hookRun}, n.retiredDone(g.Name, true))
}

// retiredDone returns the Done of the latest retired notifier of that
// instance or group (it waits for any earlier one), or nil.
func (n *Node) retiredDone(name string, group bool) <-chan struct{} {
	var after <-chan struct{}
	for _, r := range n.retired {
		if r.instance == name && r.group == group {
			after = r.Done()
		}
	}
	return after
}

// groupNotifyEvent is a sync group's change from prev to g.state.
func groupNotifyEvent(g *syncGroup, prev State) NotifyEvent {
	ev := NotifyEvent{Group: g.name, State: notifyState(g.state), PreviousState: notifyState(prev)}
	for _, m := range g.members {
		ev.Members = append(ev.Members, m.cfg.Name)
		for _, v := range m.vips {
			ev.VIPs = append(ev.VIPs, v.String())
		}
	}
	return ev
}

// groupChanged looks at a sync group's state as a whole (groupState) after
// a member's transition, and on a change logs it and queues the group's
// hooks. While the loop starts, stops or reloads (groupsFrozen) the
// members' steps are not looked at one by one: the group's state is looked
// at once at the end (settleGroups), so that a group whose members stop
// one after the other does not report a passing state.
func (n *Node) groupChanged(g *syncGroup) {
	if g == nil || n.groupsFrozen {
		return
	}
	states := make([]State, len(g.members))
	for i, m := range g.members {
		if m.m != nil {
			states[i] = m.m.State()
		}
	}
	s := groupState(states)
	if s == g.state {
		return
	}
	prev := g.state
	g.state = s
	n.log.Info("sync group state", "sync_group", g.name, "from", notifyState(prev), "to", notifyState(s))
	if g.notify != nil {
		g.notify.Notify(groupNotifyEvent(g, prev))
	}
}

// freezeGroups holds groupChanged until settleGroups.
func (n *Node) freezeGroups() { n.groupsFrozen = true }

// settleGroups ends freezeGroups and looks at every group once.
func (n *Node) settleGroups() {
	n.groupsFrozen = false
	for _, g := range n.groups {
		n.groupChanged(g)
	}
}

// buildGroups makes the run-time sync groups of n.cfg. A group that stays
// (by name) keeps its state and, if its notify is the same, its hook
// runner; one whose notify changed gets a new runner that starts after the
// old one is done. A group that is gone queues its "stopped" hooks (unless
// it never started) and retires its runner.
func (n *Node) buildGroups() {
	byName := map[string]*instance{}
	for _, in := range n.insts {
		in.group = nil
		byName[in.cfg.Name] = in
	}
	old := map[string]*syncGroup{}
	for _, g := range n.groups {
		old[g.name] = g
	}
	var groups []*syncGroup
	for _, g := range n.cfg.SyncGroups {
		sg := &syncGroup{name: g.Name, cfg: g, state: StateInit}
		if o := old[g.Name]; o != nil {
			delete(old, g.Name)
			sg.state = o.state
			if reflect.DeepEqual(o.cfg.Notify, g.Notify) {
				sg.notify = o.notify
			} else {
				n.retireNotifier(o.notify)
				sg.notify = n.newGroupNotifierFor(g)
			}
		} else {
			sg.notify = n.newGroupNotifierFor(g)
		}
		for _, name := range g.Instances {
			if in := byName[name]; in != nil {
				sg.members = append(sg.members, in)
				in.group = sg
			}
		}
		groups = append(groups, sg)
	}
	for _, o := range n.groups {
		if old[o.name] != o {
			continue
		}
		if o.state != StateInit && o.notify != nil {
			prev := o.state
			o.state = StateInit
			o.notify.Notify(groupNotifyEvent(o, prev))
		}
		n.retireNotifier(o.notify)
	}
	n.groups = groups
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
