package vrrp

import (
	"context"
	"errors"
	"maps"
	"net/netip"
	"time"

	"github.com/vipd/vipd/vip"
)

// Status is a snapshot of every instance, taken by the loop goroutine.
type Status struct {
	Started time.Time
	// The outcome of the last reload (start-up counts as a successful one).
	ReloadOK     bool
	ReloadTime   time.Time
	ReloadErrors uint64 // failed reloads since start
	Instances    []InstanceStatus
	Interfaces   []InterfaceStatus
}

// InterfaceStatus is one interface vipd runs instances on.
type InterfaceStatus struct {
	Name    string
	Index   int
	Up      bool // has carrier
	Primary netip.Addr
	// Dropped counts datagrams that could not be attributed to an
	// instance (for a VRID not configured here, or too short to say), by
	// DropReason.
	Dropped [numDropReasons]uint64
}

// InstanceStatus is one instance's state and counters.
type InstanceStatus struct {
	Name                 string
	Interface            string
	VRID                 uint8
	Version              int
	State                State
	Priority             uint8
	EffectivePriority    uint8
	AdvertInterval       time.Duration
	MasterAdvertInterval time.Duration
	PrimaryAddr          netip.Addr
	MasterAddr           netip.Addr
	MasterPriority       uint8
	LastTransition       time.Time
	VIPs                 []VIPStatus
	Counters             Counters
	Maintenance          bool
	Held                 bool   // held out of master (maintenance, or a sync-group member in fault)
	SyncGroup            string // "" when in none
	Trackers             []TrackerStatus
	// LowerMaster is a router that keeps advertising as master at a lower
	// rank while this one is master; nil when there is none.
	LowerMaster *LowerMaster
}

// TrackerStatus is one tracker of an instance.
type TrackerStatus struct {
	Kind    string // "interface", "script", "file"
	Name    string // interface, script name, or file path
	Failing bool   // interface down, script failing, or (weight-0 file) non-zero
	Value   int    // file trackers: the integer read
	Weight  int
	Error   string
}

// VIPStatus is one virtual address and whether it is on the interface now.
type VIPStatus struct {
	Address     netip.Prefix
	Description string
	Owner       string
	Present     bool
}

// ErrNotRunning is returned by Status when the Node's loop has exited, or
// the Node was aborted without running.
var ErrNotRunning = errors.New("vrrp: node is not running")

// Status asks the loop for a snapshot. A request made while the Node is
// still starting (the control socket and the metrics listener open before
// the loop runs) waits for the loop, until ctx is done.
func (n *Node) Status(ctx context.Context) (Status, error) {
	reply := make(chan Status, 1)
	select {
	case n.statusQ <- reply:
	case <-n.loopDone:
		return Status{}, ErrNotRunning
	case <-ctx.Done():
		return Status{}, ctx.Err()
	}
	select {
	case s := <-reply:
		return s, nil
	case <-ctx.Done():
		return Status{}, ctx.Err()
	}
}

func (n *Node) status() Status {
	s := Status{
		Started: n.started, ReloadOK: n.reloadOK, ReloadTime: n.reloadTime, ReloadErrors: n.reloadErrors,
		Instances: make([]InstanceStatus, 0, len(n.insts)),
	}
	for _, ifc := range n.ifaces {
		s.Interfaces = append(s.Interfaces, InterfaceStatus{
			Name: ifc.name, Index: ifc.index, Up: ifc.up, Primary: ifc.primary, Dropped: ifc.unattributed,
		})
	}
	present := map[int][]vip.Addr{}
	for _, in := range n.insts {
		idx := in.ifc.index
		if _, ok := present[idx]; !ok {
			present[idx], _ = n.addrs.List(idx)
		}
		c := in.count
		c.Transitions = maps.Clone(in.count.Transitions)
		is := InstanceStatus{
			Name:                 in.cfg.Name,
			Interface:            in.ifc.name,
			VRID:                 in.cfg.VRID,
			Version:              in.cfg.Version,
			State:                in.m.State(),
			Priority:             in.cfg.Priority,
			EffectivePriority:    in.m.Config().Priority,
			AdvertInterval:       in.cfg.AdvertInterval,
			MasterAdvertInterval: in.m.MasterAdverInterval(),
			PrimaryAddr:          in.ifc.primary,
			MasterAddr:           in.m.MasterAddr(),
			MasterPriority:       in.m.MasterPriority(),
			LastTransition:       in.m.LastChange(),
			Counters:             c,
			Maintenance:          in.maintenance,
			Held:                 in.m.Held(),
		}
		if in.group != nil {
			is.SyncGroup = in.group.name
		}
		if lm, ok := in.m.LowerMaster(time.Now()); ok {
			is.LowerMaster = &lm
		}
		for _, ti := range in.cfg.Track.Interfaces {
			is.Trackers = append(is.Trackers, TrackerStatus{Kind: "interface", Name: ti.Name, Failing: in.track.ifDown[ti.Name], Weight: ti.Weight})
		}
		for _, ts := range in.cfg.Track.Scripts {
			is.Trackers = append(is.Trackers, TrackerStatus{Kind: "script", Name: ts.Name, Failing: in.track.scriptFail[ts.Name], Weight: ts.Weight, Error: in.track.scriptErr[ts.Name]})
		}
		for _, tf := range in.cfg.Track.Files {
			v := in.track.fileValue[tf.Path]
			is.Trackers = append(is.Trackers, TrackerStatus{Kind: "file", Name: tf.Path, Value: v, Failing: tf.Weight == 0 && v != 0, Weight: tf.Weight})
		}
		for _, v := range in.cfg.VIPs {
			is.VIPs = append(is.VIPs, VIPStatus{
				Address: v.Address, Description: v.Description, Owner: v.Owner,
				Present: hasAddr(present[idx], v.Address.Addr()),
			})
		}
		s.Instances = append(s.Instances, is)
	}
	return s
}
