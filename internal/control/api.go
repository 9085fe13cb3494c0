package control

import (
	"fmt"
	"net/netip"
	"runtime"
	"time"

	"github.com/vipd/vipd/vrrp"
)

// The JSON documents of the socket's API. Their field names are the API:
// clients (vipd status --json, scripts) rely on them.

// Status is the body of GET /v1/status.
type Status struct {
	Version    string     `json:"version"`
	Goroutines int        `json:"goroutines"` // of the whole daemon, for spotting leaks
	Started    time.Time  `json:"started"`
	Reload     Reload     `json:"reload"`
	Instances  []Instance `json:"instances"`
	Static     Static     `json:"static"`
}

// Reload is the outcome of the last configuration load.
type Reload struct {
	OK       bool      `json:"ok"`
	Time     time.Time `json:"time"`
	Failures uint64    `json:"failures"`
}

// Instance is one VRRP instance's state, configuration and counters.
type Instance struct {
	Name                        string            `json:"name"`
	Interface                   string            `json:"interface"`
	VRID                        uint8             `json:"vrid"`
	Version                     int               `json:"version"`
	Family                      string            `json:"family"`
	State                       string            `json:"state"`
	Priority                    uint8             `json:"priority"`
	EffectivePriority           uint8             `json:"effective_priority"`
	AdvertIntervalSeconds       float64           `json:"advert_interval_seconds"`
	MasterAdvertIntervalSeconds float64           `json:"master_advert_interval_seconds"`
	PrimaryAddress              string            `json:"primary_address"`
	SourceAddress               string            `json:"source_address"`
	MasterAddress               string            `json:"master_address"`
	MasterPriority              uint8             `json:"master_priority"`
	LastTransition              time.Time         `json:"last_transition"`
	VIPs                        []VIP             `json:"vips"`
	Counters                    Counters          `json:"counters"`
	Dropped                     map[string]uint64 `json:"dropped"`
	Maintenance                 bool              `json:"maintenance"`
	Held                        bool              `json:"held"`
	SyncGroup                   string            `json:"sync_group,omitempty"`
	Trackers                    []Tracker         `json:"trackers"`
	LowerPriorityMaster         *LowerMaster      `json:"lower_priority_master,omitempty"`
	Routes                      []Route           `json:"routes"`
	Rules                       []Rule            `json:"rules"`
	// Upstreams is the upstream check of this term as master (omitted
	// when none); UpstreamChecks its attempts by upstream since start.
	Upstreams      []Upstream      `json:"upstreams,omitempty"`
	UpstreamChecks []UpstreamCheck `json:"upstream_checks,omitempty"`
}

// LowerMaster is a router that keeps advertising as master at a lower
// priority than this master's: it does not accept this node's adverts.
type LowerMaster struct {
	Address  string    `json:"address"`
	Priority uint8     `json:"priority"`
	Since    time.Time `json:"since"`
	LastSeen time.Time `json:"last_seen"`
	Adverts  uint64    `json:"adverts"`
	Answers  uint64    `json:"answers"` // adverts answered with an advert and a gratuitous ARP
}

// Tracker is one tracked interface, script or file of an instance.
type Tracker struct {
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	Failing bool   `json:"failing"`
	Value   int    `json:"value,omitempty"`
	// Count is a process tracker's matching processes at its last scan
	// (absent for the other kinds).
	Count  *int   `json:"count,omitempty"`
	Weight int    `json:"weight"`
	Error  string `json:"error,omitempty"`
}

// VIP is one virtual address of an instance.
type VIP struct {
	Address     string `json:"address"`
	Description string `json:"description"`
	Owner       string `json:"owner"`
	Interface   string `json:"interface"`
	Label       string `json:"label,omitempty"`
	// Advertised is false for a VIP left out of the adverts (advertise:
	// false): it moves with the master all the same.
	Advertised bool `json:"advertised"`
	Present    bool `json:"present"`
	// The last add's error while adding the VIP fails, and the failed
	// adds since vipd started.
	AddError    string `json:"add_error,omitempty"`
	AddFailures uint64 `json:"add_failures"`
	// Conflicts are the MACs, neither this node's nor the master's, that
	// claim the VIP on the link (ARP); absent when none.
	Conflicts []VIPConflict `json:"conflicts,omitempty"`
}

// VIPConflict is another host's MAC claiming a VIP, and since when.
type VIPConflict struct {
	MAC   string    `json:"mac"`
	Since time.Time `json:"since"`
}

// Counters are an instance's counters since vipd started.
type Counters struct {
	AdvertsSent          uint64            `json:"adverts_sent"`
	AdvertsReceived      uint64            `json:"adverts_received"`
	PriorityZeroSent     uint64            `json:"priority_zero_sent"`
	PriorityZeroReceived uint64            `json:"priority_zero_received"`
	GARPSent             uint64            `json:"garp_sent"`
	AddressListMismatch  uint64            `json:"address_list_mismatch"`
	VIPsRestored         uint64            `json:"vips_restored"`
	RoutesRestored       uint64            `json:"routes_restored"`
	RulesRestored        uint64            `json:"rules_restored"`
	Transitions          map[string]uint64 `json:"transitions"`
}

// Event is one line of GET /v1/events: a state transition.
type Event struct {
	Time         time.Time `json:"time"`
	Instance     string    `json:"instance"`
	Interface    string    `json:"interface"`
	VRID         uint8     `json:"vrid"`
	From         string    `json:"from"`
	To           string    `json:"to"`
	Reason       string    `json:"reason"`
	Priority     uint8     `json:"priority"`
	Peer         string    `json:"peer,omitempty"`
	PeerPriority uint8     `json:"peer_priority,omitempty"`
}

func addrString(a interface{ IsValid() bool }) string {
	if !a.IsValid() {
		return ""
	}
	return fmt.Sprint(a)
}

func toStatus(s vrrp.Status, version string) Status {
	out := Status{
		Version:    version,
		Goroutines: runtime.NumGoroutine(),
		Started:    s.Started,
		Reload:     Reload{OK: s.ReloadOK, Time: s.ReloadTime, Failures: s.ReloadErrors},
		Instances:  []Instance{},
		Static: Static{Routes: toRoutes(s.StaticRoutes), Rules: toRules(s.StaticRules),
			RoutesRestored: s.StaticRoutesRestored, RulesRestored: s.StaticRulesRestored},
	}
	for _, in := range s.Instances {
		ai := Instance{
			Name: in.Name, Interface: in.Interface, VRID: in.VRID, Version: in.Version, Family: in.Family.String(),
			State: in.State.String(), Priority: in.Priority, EffectivePriority: in.EffectivePriority,
			AdvertIntervalSeconds:       in.AdvertInterval.Seconds(),
			MasterAdvertIntervalSeconds: in.MasterAdvertInterval.Seconds(),
			PrimaryAddress:              addrString(in.PrimaryAddr),
			SourceAddress:               addrString(in.SourceAddr),
			MasterAddress:               addrString(in.MasterAddr),
			MasterPriority:              in.MasterPriority,
			LastTransition:              in.LastTransition,
			VIPs:                        []VIP{},
			Counters: Counters{
				AdvertsSent: in.Counters.AdvertsSent, AdvertsReceived: in.Counters.AdvertsReceived,
				PriorityZeroSent: in.Counters.PriorityZeroSent, PriorityZeroReceived: in.Counters.PriorityZeroReceived,
				GARPSent: in.Counters.GARPSent, AddressListMismatch: in.Counters.AddressListMismatch,
				VIPsRestored: in.Counters.VIPsRestored, Transitions: map[string]uint64{},
				RoutesRestored: in.RoutesRestored, RulesRestored: in.RulesRestored,
			},
			Routes:      toRoutes(in.Routes),
			Rules:       toRules(in.Rules),
			Dropped:     map[string]uint64{},
			Maintenance: in.Maintenance,
			Held:        in.Held,
			SyncGroup:   in.SyncGroup,
			Trackers:    []Tracker{},
		}
		if lm := in.LowerMaster; lm != nil {
			ai.LowerPriorityMaster = &LowerMaster{Address: addrString(lm.Addr), Priority: lm.Priority,
				Since: lm.Since, LastSeen: lm.LastSeen, Adverts: lm.Adverts, Answers: lm.Answers}
		}
		for _, tr := range in.Trackers {
			at := Tracker{Kind: tr.Kind, Name: tr.Name, Failing: tr.Failing, Value: tr.Value, Weight: tr.Weight, Error: tr.Error}
			if tr.Kind == "process" {
				// The count is its own field, there also when it is 0.
				at.Value, at.Count = 0, &tr.Value
			}
			ai.Trackers = append(ai.Trackers, at)
		}
		ai.Upstreams, ai.UpstreamChecks = toUpstreams(in)
		for k, v := range in.Counters.Transitions {
			ai.Counters.Transitions[k[0].String()+"->"+k[1].String()] = v
		}
		for _, r := range vrrp.AllDropReasons() {
			if c := in.Counters.Dropped[r]; c > 0 {
				ai.Dropped[r.String()] = c
			}
		}
		for _, v := range in.VIPs {
			ai.VIPs = append(ai.VIPs, VIP{Address: vipString(v.Address), Description: v.Description, Owner: v.Owner,
				Interface: v.Interface, Label: v.Label, Advertised: v.Advertised, Present: v.Present,
				AddError: v.AddError, AddFailures: v.AddFailures, Conflicts: vipConflicts(v.Conflicts)})
		}
		out.Instances = append(out.Instances, ai)
	}
	return out
}

func vipConflicts(cs []vrrp.VIPConflict) []VIPConflict {
	var out []VIPConflict
	for _, c := range cs {
		out = append(out, VIPConflict{MAC: c.MAC.String(), Since: c.Since})
	}
	return out
}

// vipString writes a /32 as the bare address, as the configuration does.
func vipString(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

func toEvent(e vrrp.TransitionEvent) Event {
	return Event{
		Time: e.Time, Instance: e.Instance, Interface: e.Interface, VRID: e.VRID,
		From: e.From.String(), To: e.To.String(), Reason: e.Reason.String(), Priority: e.Priority,
		Peer: addrString(e.Peer), PeerPriority: e.PeerPriority,
	}
}
