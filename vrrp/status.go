package vrrp

import (
	"context"
	"errors"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"
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
	// The static routes and rules, and how many of each were put back
	// after something removed them.
	StaticRoutes                              []RouteStatus
	StaticRules                               []RuleStatus
	StaticRoutesRestored, StaticRulesRestored uint64
}

// InterfaceStatus is one interface vipd runs instances on.
type InterfaceStatus struct {
	Name    string
	Index   int
	Up      bool // has carrier
	Primary netip.Addr
	MAC     net.HardwareAddr // the link's hardware address as vipd uses it
	// Dropped counts datagrams that could not be attributed to an
	// instance (for a VRID not configured here, or too short to say), by
	// DropReason.
	Dropped [numDropReasons]uint64
}

// InstanceStatus is one instance's state and counters.
type InstanceStatus struct {
	Name      string
	Interface string
	// VirtualMACLink is the macvlan of an instance with virtual_mac, whose
	// VIPs live there ("" without).
	VirtualMACLink       string
	VRID                 uint8
	Version              int
	Family               Family // the family adverts use: ipv4, or ipv6 (from the link-local)
	State                State
	Priority             uint8
	EffectivePriority    uint8
	AdvertInterval       time.Duration
	MasterAdvertInterval time.Duration
	PrimaryAddr          netip.Addr // the interface's primary address
	SourceAddr           netip.Addr // where adverts come from: source_address, else PrimaryAddr
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
	// Routes and Rules follow the master; RoutesRestored and RulesRestored
	// count those put back after something removed them.
	Routes                        []RouteStatus
	Rules                         []RuleStatus
	RoutesRestored, RulesRestored uint64
	// Upstreams is the upstream check of this term as master (none while
	// not master); UpstreamCounts the attempts by upstream since start.
	Upstreams      []UpstreamStatus
	UpstreamCounts []UpstreamCount
}

// TrackerStatus is one tracker of an instance.
type TrackerStatus struct {
	Kind    string // "interface", "script", "file", "process"
	Name    string // interface, script name, file path, or process tracker name
	Failing bool   // interface down, script failing, process tracker down, or (weight-0 file) non-zero
	Value   int    // file trackers: the integer read; process trackers: matching processes at the last scan
	Weight  int
	Error   string
}

// VIPStatus is one virtual address and whether it is on the interface now,
// as the loop knows it from its adds and removals and the address events.
type VIPStatus struct {
	Address     netip.Prefix
	Description string
	Owner       string
	Interface   string // the link the VIP is on
	Label       string // the address label; "" for none
	Advertised  bool   // listed in the adverts (advertise: true, the default)
	Present     bool
	AddError    string // the last add's error, "" once an add succeeded
	AddFailures uint64 // adds that failed since vipd started
	// Conflicts are the MACs, neither this node's nor the master's, heard
	// claiming the VIP (conflict detection); empty when none.
	Conflicts []VIPConflict
}

// ErrNotRunning is returned by Status when the Node's loop has exited, or
// the Node was aborted without running.
var ErrNotRunning = errors.New("vrrp: node is not running")

// statusShare lets concurrent Status calls share one snapshot: however
// many clients ask at once, at most one request waits on the loop.
type statusShare struct {
	mu   sync.Mutex
	call *statusCall // the request on its way to the loop, if any
}

type statusCall struct {
	done chan struct{} // closed when s and err are set
	s    Status
	err  error
}

// Status asks the loop for a snapshot. A request made while the Node is
// still starting (the control socket and the metrics listener open before
// the loop runs) waits for the loop, until ctx is done. Callers that ask
// while another's request is on its way get that request's snapshot; it
// is shared, so they must not modify it.
func (n *Node) Status(ctx context.Context) (Status, error) {
	for {
		n.snap.mu.Lock()
		c := n.snap.call
		if c == nil {
			c = &statusCall{done: make(chan struct{})}
			n.snap.call = c
			n.snap.mu.Unlock()
			c.s, c.err = n.askStatus(ctx)
			n.snap.mu.Lock()
			n.snap.call = nil
			n.snap.mu.Unlock()
			close(c.done)
			return c.s, c.err
		}
		n.snap.mu.Unlock()
		select {
		case <-c.done:
			if c.err != nil && ctx.Err() == nil &&
				(errors.Is(c.err, context.Canceled) || errors.Is(c.err, context.DeadlineExceeded)) {
				continue // the asker gave up before the loop answered; ask again
			}
			return c.s, c.err
		case <-ctx.Done():
			return Status{}, ctx.Err()
		}
	}
}

// askStatus hands the loop one request. Once the loop has taken it, the
// answer is a copy of memory made in the same turn of the loop, so it is
// waited for without a timeout, for the callers sharing it.
func (n *Node) askStatus(ctx context.Context) (Status, error) {
	reply := make(chan Status, 1)
	select {
	case n.statusQ <- reply:
	case <-n.loopDone:
		return Status{}, ErrNotRunning
	case <-ctx.Done():
		return Status{}, ctx.Err()
	}
	return <-reply, nil
}

func (n *Node) status() Status {
	n.takeHeld() // the counters as of now
	s := Status{
		Started: n.started, ReloadOK: n.reloadOK, ReloadTime: n.reloadTime, ReloadErrors: n.reloadErrors,
		Instances: make([]InstanceStatus, 0, len(n.insts)),
	}
	s.StaticRoutes, s.StaticRules = routeStatus(&n.static)
	s.StaticRoutesRestored, s.StaticRulesRestored = n.static.routesRestored, n.static.rulesRestored
	for _, ifc := range n.ifaces {
		s.Interfaces = append(s.Interfaces, InterfaceStatus{
			Name: ifc.name, Index: ifc.index, Up: ifc.up, Primary: ifc.primary, MAC: slices.Clone(ifc.mac), Dropped: ifc.unattributed,
		})
	}
	for _, in := range n.insts {
		c := in.count
		c.Transitions = maps.Clone(in.count.Transitions)
		is := InstanceStatus{
			Name:                 in.cfg.Name,
			Interface:            in.ifc.name,
			VirtualMACLink:       in.vmacName(),
			VRID:                 in.cfg.VRID,
			Version:              in.cfg.Version,
			Family:               in.family(),
			State:                in.m.State(),
			Priority:             in.cfg.Priority,
			EffectivePriority:    in.m.Config().Priority,
			AdvertInterval:       in.cfg.AdvertInterval,
			MasterAdvertInterval: in.m.MasterAdverInterval(),
			PrimaryAddr:          in.ifc.primaryFor(in.family()),
			SourceAddr:           in.source(),
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
		is.Routes, is.Rules = routeStatus(&in.rs)
		is.RoutesRestored, is.RulesRestored = in.rs.routesRestored, in.rs.rulesRestored
		if lm, ok := in.m.LowerMaster(n.now()); ok {
			is.LowerMaster = &lm
		}
		is.Upstreams, is.UpstreamCounts = in.upstreamStatus(), slices.Clone(in.up.counts)
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
		for _, tp := range in.cfg.Track.Processes {
			is.Trackers = append(is.Trackers, TrackerStatus{Kind: "process", Name: tp.Name, Value: in.track.procCount[tp.Name],
				Failing: in.track.procDown[tp.Name], Weight: tp.Weight, Error: in.track.procErr[tp.Name]})
		}
		for i, v := range in.cfg.VIPs {
			vs := in.vs[i]
			is.VIPs = append(is.VIPs, VIPStatus{
				Address: v.Address, Description: v.Description, Owner: v.Owner, Interface: vs.link.name, Label: vs.label, Advertised: !v.NotAdvertised,
				Present: vs.present, AddError: vs.addErr, AddFailures: vs.failures,
				Conflicts: slices.Clone(vs.conflicts),
			})
		}
		s.Instances = append(s.Instances, is)
	}
	return s
}
