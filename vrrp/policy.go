package vrrp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/vipd/vipd/config"
)

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
	fileValue  map[string]int // path → integer read
}

func newTrackState() trackState {
	return trackState{ifDown: map[string]bool{}, scriptFail: map[string]bool{}, scriptErr: map[string]string{}, fileValue: map[string]int{}}
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
	return sum, fault
}

// reevaluate brings the machine in line with the carrier and the trackers:
// fault or not, and the effective priority (advertised at once by a master).
func (n *Node) reevaluate(in *instance, now time.Time) {
	sum, trackerFault := in.weights()
	fault := !in.ifc.up || trackerFault
	switch st := in.m.State(); {
	case fault && st != StateFault:
		r := ReasonLinkDown
		if in.ifc.up {
			r = ReasonTracker
		}
		n.step(in, Event{Kind: EventLinkDown, Reason: r}, now)
	case !fault && st == StateFault:
		r := ReasonLinkUp
		if in.faultReason == ReasonTracker {
			r = ReasonTracker
		}
		n.step(in, Event{Kind: EventLinkUp, Reason: r}, now)
	}
	if fault {
		if in.ifc.up {
			in.faultReason = ReasonTracker
		} else {
			in.faultReason = ReasonLinkDown
		}
	}
	mc := in.machineConfig()
	mc.Priority = effectivePriority(in.cfg.Priority, sum)
	if mc != in.m.Config() {
		if mc.Priority != in.m.Config().Priority {
			n.log.Info("effective priority changed", "instance", in.cfg.Name, "from", in.m.Config().Priority, "to", mc.Priority)
		}
		n.handle(in, in.m.Step(Event{Kind: EventReconfigure, Config: mc}, now), Event{Kind: EventReconfigure}, now, false)
	}
}

// syncGroup is the run-time form of a configured sync group.
type syncGroup struct {
	name    string
	members []*instance
}

func (n *Node) buildGroups() {
	byName := map[string]*instance{}
	for _, in := range n.insts {
		in.group = nil
		byName[in.cfg.Name] = in
	}
	for _, g := range n.cfg.SyncGroups {
		sg := &syncGroup{name: g.Name}
		for _, name := range g.Instances {
			if in := byName[name]; in != nil {
				sg.members = append(sg.members, in)
				in.group = sg
			}
		}
	}
}

// propagate makes a sync group follow a member's own transition: all to
// master when one became master, all away from master when one left it.
func (n *Node) propagate(in *instance, out Output, now time.Time) {
	g := in.group
	if g == nil {
		return
	}
	switch {
	case out.To == StateMaster:
		for _, o := range g.members {
			if o != in {
				n.stepForced(o, Event{Kind: EventForceMaster}, now)
			}
		}
	case out.From == StateMaster:
		for _, o := range g.members {
			if o != in {
				n.stepForced(o, Event{Kind: EventForceBackup}, now)
			}
		}
	}
	if out.From == StateFault || out.To == StateFault {
		n.updateHolds(g.members, now)
	}
}

// updateHolds holds out of master every instance in maintenance, and every
// member of a sync group with a member in fault or in maintenance: a group
// moves as one, so a member held back alone would have the peer's group
// pull the others over and push them back without end.
func (n *Node) updateHolds(insts []*instance, now time.Time) {
	for _, in := range insts {
		want, r := in.maintenance, ReasonMaintenance
		if !want && in.group != nil {
			for _, o := range in.group.members {
				if o != in && (o.m.State() == StateFault || o.maintenance) {
					want, r = true, ReasonSyncGroup
				}
			}
		}
		if want != in.m.Held() {
			n.stepForced(in, Event{Kind: EventHold, Hold: want, Reason: r}, now)
		}
	}
}

// maintenanceFile is the state file's layout.
type maintenanceFile struct {
	Maintenance []string `json:"maintenance"`
}

func (n *Node) stateFile() string {
	dir := n.cfg.StateDir
	if dir == "" {
		dir = "/var/lib/vipd"
	}
	return filepath.Join(dir, "maintenance.json")
}

// loadMaintenance reads which instances are in maintenance. A missing file
// means none; an unreadable or corrupt one is an error, so that a node
// put in maintenance never silently comes back into service.
func (n *Node) loadMaintenance() error {
	b, err := os.ReadFile(n.stateFile())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("maintenance state %s: %w", n.stateFile(), err)
	}
	var f maintenanceFile
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("maintenance state %s: %w (fix or remove the file)", n.stateFile(), err)
	}
	for _, in := range n.insts {
		in.maintenance = slices.Contains(f.Maintenance, in.cfg.Name)
		if in.maintenance {
			n.log.Warn("instance is in maintenance (from the state file)", "instance", in.cfg.Name, "file", n.stateFile())
		}
	}
	return nil
}

// maintenanceNames lists the instances in maintenance, for the state file.
func (n *Node) maintenanceNames() []string {
	names := []string{}
	for _, in := range n.insts {
		if in.maintenance {
			names = append(names, in.cfg.Name)
		}
	}
	return names
}

type maintReq struct {
	instance string
	on       bool
	done     chan maintReply
}

// maintReply is the loop's answer: the change is in force (err nil) and
// the state to save is queued as seq.
type maintReply struct {
	err error
	seq uint64
}

// ErrNoInstance is returned for a name no instance has.
var ErrNoInstance = errors.New("no such instance")

// ErrNotSaved wraps a failure to persist maintenance state: the change is
// in force but will not survive a restart.
var ErrNotSaved = errors.New("in force, but not saved")

// SetMaintenance turns maintenance on (resign at once, stay backup) or off
// for one instance, and records it in the state directory so that it
// survives a restart. The loop puts the change in force; the file is
// written by the Node's writer, never on the loop, and SetMaintenance
// waits for that write: an error wrapping ErrNotSaved means the change is
// in force but the write failed.
func (n *Node) SetMaintenance(ctx context.Context, instance string, on bool) error {
	req := maintReq{instance: instance, on: on, done: make(chan maintReply, 1)}
	select {
	case n.maintQ <- req:
	case <-n.loopDone:
		return ErrNotRunning
	case <-ctx.Done():
		return ctx.Err()
	}
	var r maintReply
	select {
	case r = <-req.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if r.err != nil {
		return r.err
	}
	if err := n.maint.wait(ctx, r.seq); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w yet: the state file is still being written: %v", ErrNotSaved, err)
		}
		return fmt.Errorf("%w: %v", ErrNotSaved, err)
	}
	return nil
}

// setMaintenance is the loop's part of SetMaintenance: it puts the change
// in force and queues the state for the writer, never touching the disk.
func (n *Node) setMaintenance(req maintReq, now time.Time) maintReply {
	var in *instance
	for _, x := range n.insts {
		if x.cfg.Name == req.instance {
			in = x
		}
	}
	if in == nil {
		return maintReply{err: fmt.Errorf("%w %q", ErrNoInstance, req.instance)}
	}
	if in.maintenance != req.on {
		in.maintenance = req.on
		n.log.Info("maintenance", "instance", in.cfg.Name, "on", req.on)
		if in.group != nil {
			n.updateHolds(in.group.members, now)
		} else {
			n.updateHolds([]*instance{in}, now)
		}
	}
	if n.maint == nil {
		n.maint = newMaintWriter(n.log)
	}
	return maintReply{seq: n.maint.queue(n.stateFile(), n.maintenanceNames())}
}

// startTrackers starts the script and file trackers of an instance; they
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
		}
		n.reevaluate(in, now)
	}
}

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
