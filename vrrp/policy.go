package vrrp

import (
	"context"
	"time"

	"github.com/vipd/vipd/config"
)

// The policy above the machine: trackers set the effective priority or a
// fault, maintenance and sync groups hold an instance out of master, and a
// sync group follows its members' transitions. The decisions are pure
// functions (effectivePriority, weights, faultFor, holdFor, groupFollow);
// the Node applies them as events through Machine.Step.

// effectivePriority is the configured priority plus the weights in force,
// clamped to 1..254; only an owner (255) with nothing in force keeps 255.
func effectivePriority(configured uint8, weights int) uint8 {
	if configured == 255 && weights == 0 {
		return 255
	}
	return uint8(min(max(int(configured)+weights, 1), 254))
}

// trackState is what an instance's trackers say now.
type trackState struct {
	ifDown     map[string]bool // tracked interface → no carrier
	scriptFail map[string]bool // script → failing
	scriptErr  map[string]string
	fileValue  map[string]int  // path → integer read
	procDown   map[string]bool // process tracker → down
	procCount  map[string]int  // process tracker → matching processes at the last scan
	procErr    map[string]string
}

func newTrackState() trackState {
	return trackState{ifDown: map[string]bool{}, scriptFail: map[string]bool{}, scriptErr: map[string]string{}, fileValue: map[string]int{},
		procDown: map[string]bool{}, procCount: map[string]int{}, procErr: map[string]string{}}
}

// weights adds up the weights in force and says whether a weight-0 tracker
// puts the instance in fault.
func (in *instance) weights() (sum int, fault bool) {
	t := &in.track
	for _, ti := range in.cfg.Track.Interfaces {
		if t.ifDown[ti.Name] {
			if ti.Weight == 0 {
				fault = true
			}
			sum += ti.Weight
		}
	}
	for _, ts := range in.cfg.Track.Scripts {
		if t.scriptFail[ts.Name] {
			if ts.Weight == 0 {
				fault = true
			}
			sum += ts.Weight
		}
	}
	for _, tf := range in.cfg.Track.Files {
		v := t.fileValue[tf.Path]
		if tf.Weight == 0 {
			fault = fault || v != 0
			continue
		}
		sum += max(min(v, 1000), -1000) * tf.Weight
	}
	for _, tp := range in.cfg.Track.Processes {
		if t.procDown[tp.Name] {
			if tp.Weight == 0 {
				fault = true
			}
			sum += tp.Weight
		}
	}
	return sum, fault
}

// faultFor says whether an instance is in fault, and why: its link has no
// carrier (unless trackOwn is false: track.own_interface: false), or a
// weight-0 tracker fails. last is the reason of the fault that is ending,
// so that its end is told by the same name.
//
// An instance that does not track its own interface keeps running the
// protocol while the link is down, as keepalived's dont_track_primary
// does: a master stays master (its adverts cannot leave; their failures
// are logged, rate-limited), a backup that hears no adverts becomes master
// when Master_Down expires.
func faultFor(linkUp, trackOwn, trackerFault bool, last Reason) (fault bool, why Reason) {
	switch {
	case !linkUp && trackOwn:
		return true, ReasonLinkDown
	case trackerFault:
		return true, ReasonTracker
	case last == ReasonTracker:
		return false, ReasonTracker
	}
	return false, ReasonLinkUp
}

// reevaluate brings the machine in line with the carrier and the trackers:
// fault or not, and the effective priority (advertised at once by a master).
func (n *Node) reevaluate(in *instance, now time.Time) {
	sum, trackerFault := in.weights()
	fault, r := faultFor(in.ifc.up, !in.cfg.Track.IgnoreOwnInterface, trackerFault, in.faultReason)
	if !fault && !in.source().IsValid() {
		// Over IPv6 adverts come from the link-local (RFC 5798 §5.1.2),
		// or to unicast peers from a global address; without it the
		// instance cannot take part.
		fault, r = true, in.noSourceReason()
	}
	switch st := in.m.State(); {
	case fault && st != StateFault:
		n.step(in, Event{Kind: EventLinkDown, Reason: r}, now)
	case !fault && st == StateFault:
		n.step(in, Event{Kind: EventLinkUp, Reason: r}, now)
	}
	if fault {
		in.faultReason = r
	}
	mc := in.machineConfig()
	mc.Priority = effectivePriority(in.cfg.Priority, sum)
	if mc != in.m.Config() {
		if mc.Priority != in.m.Config().Priority {
			n.log.Info("effective priority changed", "instance", in.cfg.Name, "from", in.m.Config().Priority, "to", mc.Priority)
		}
		n.stepForced(in, Event{Kind: EventReconfigure, Config: &mc}, now)
	}
}

// syncGroup is the run-time form of a configured sync group.
type syncGroup struct {
	name    string
	cfg     config.SyncGroup
	members []*instance
	// state is the group's state as a whole last reported to its hooks
	// (groupState); init until the members start, and again once they
	// all stopped.
	state  State
	notify *notifier // nil: no hooks
}

// groupState is a sync group's state as a whole, from its members' states:
// fault while any member is in fault; otherwise, leaving out the members
// not running (init: not started yet, or stopped), master when all the
// others are master and backup when not; init when no member runs. A
// group is master only once every member followed, and leaves master as
// soon as one member does, as keepalived's group notifications do.
func groupState(members []State) State {
	running, masters := 0, 0
	for _, s := range members {
		switch s {
		case StateFault:
			return StateFault
		case StateMaster:
			masters++
			running++
		case StateBackup:
			running++
		}
	}
	switch {
	case running == 0:
		return StateInit
	case masters == running:
		return StateMaster
	}
	return StateBackup
}

// groupFollow says what the other members of a sync group are told after
// a member's own transition: all to master when one became master, all
// away from master when one left it; and whether the group's holds must be
// looked at again (a member entered or left fault).
func groupFollow(out Output) (follow EventKind, ok, holds bool) {
	holds = out.From == StateFault || out.To == StateFault
	switch {
	case out.To == StateMaster:
		return EventForceMaster, true, holds
	case out.From == StateMaster:
		return EventForceBackup, true, holds
	}
	return 0, false, holds
}

// propagate makes a sync group follow a member's own transition.
func (n *Node) propagate(in *instance, out Output, now time.Time) {
	g := in.group
	if g == nil {
		return
	}
	follow, ok, holds := groupFollow(out)
	if ok {
		for _, o := range g.members {
			if o != in {
				n.stepForced(o, Event{Kind: follow}, now)
			}
		}
	}
	if holds {
		n.updateHolds(g.members, now)
	}
}

// memberState is what the hold policy needs to know of an instance.
type memberState struct {
	maintenance bool
	fault       bool
}

// holdFor says whether an instance is held out of master, and why: one in
// maintenance, and every member of a sync group with another member in
// fault or in maintenance: a group moves as one, so a member held back
// alone would have the peer's group pull the others over and push them
// back without end.
func holdFor(self memberState, others []memberState) (bool, Reason) {
	if self.maintenance {
		return true, ReasonMaintenance
	}
	for _, o := range others {
		if o.fault || o.maintenance {
			return true, ReasonSyncGroup
		}
	}
	return false, ReasonMaintenance
}

// updateHolds applies holdFor to insts.
func (n *Node) updateHolds(insts []*instance, now time.Time) {
	var others []memberState
	for _, in := range insts {
		others = others[:0]
		if in.group != nil {
			for _, o := range in.group.members {
				if o != in {
					others = append(others, memberState{maintenance: o.maintenance, fault: o.m.State() == StateFault})
				}
			}
		}
		want, r := holdFor(memberState{maintenance: in.maintenance}, others)
		if want != in.m.Held() {
			n.stepForced(in, Event{Kind: EventHold, Hold: want, Reason: r}, now)
		}
	}
}

// startTrackers starts the script, file and process trackers of an instance; they
// stop with stopTrackers or when the Node stops.
func (n *Node) startTrackers(in *instance) {
	ctx, cancel := context.WithCancel(n.ctx)
	in.stopTrack = cancel
	for _, ts := range in.cfg.Track.Scripts {
		n.wg.Add(1)
		go func() { defer n.wg.Done(); runScriptTracker(ctx, in.cfg.Name, ts, n.trackCh, n.log) }()
	}
	for _, tf := range in.cfg.Track.Files {
		n.wg.Add(1)
		go func() { defer n.wg.Done(); runFileTracker(ctx, in.cfg.Name, tf, time.Second, n.trackCh, n.log) }()
	}
	if ps := in.cfg.Track.Processes; len(ps) > 0 {
		n.wg.Add(1)
		go func() { defer n.wg.Done(); runProcessTrackers(ctx, in.cfg.Name, n.procRoot, ps, n.trackCh, n.log) }()
	}
	for _, ti := range in.cfg.Track.Interfaces {
		li, err := n.dp.LookupLink(ti.Name)
		in.track.ifDown[ti.Name] = err != nil || !li.Up
	}
}

func (in *instance) stopTrackers() {
	if in.stopTrack != nil {
		in.stopTrack()
		in.stopTrack = nil
	}
}

func (n *Node) onTrackResult(r TrackResult, now time.Time) {
	n.takeHeld()
	for _, in := range n.insts {
		if in.cfg.Name != r.Instance {
			continue
		}
		switch r.Kind {
		case "script":
			if in.track.scriptFail[r.Name] != r.Failing {
				n.log.Info("tracked script changed", "instance", in.cfg.Name, "script", r.Name, "failing", r.Failing)
			}
			in.track.scriptFail[r.Name] = r.Failing
			in.track.scriptErr[r.Name] = r.Err
		case "file":
			in.track.fileValue[r.Name] = r.Value
		case "process":
			if in.track.procDown[r.Name] != r.Failing {
				n.log.Info("tracked process changed", "instance", in.cfg.Name, "process", r.Name, "up", !r.Failing, "count", r.Value)
			}
			in.track.procDown[r.Name] = r.Failing
			in.track.procCount[r.Name] = r.Value
			in.track.procErr[r.Name] = r.Err
		}
		n.reevaluate(in, now)
	}
}
