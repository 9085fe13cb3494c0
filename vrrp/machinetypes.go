package vrrp

import (
	"net/netip"
	"time"
)

// The Machine's vocabulary: its states, the events it takes, the actions
// it asks for and the reasons it gives.

// State is a VRRP router state (RFC 5798 §6.4) plus Fault, which vipd
// enters while the instance's interface has no carrier.
type State uint8

// The states an instance can be in.
const (
	StateInit State = iota
	StateBackup
	StateMaster
	StateFault
)

var stateNames = [...]string{"init", "backup", "master", "fault"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "unknown"
}

// AllStates lists every state, in order, for pre-creating metric series.
func AllStates() []State { return []State{StateInit, StateBackup, StateMaster, StateFault} }

// EventKind says what happened to a Machine.
type EventKind uint8

// The events a Machine reacts to.
const (
	EventStartup     EventKind = iota // the instance starts (or restarts after a reload)
	EventShutdown                     // the daemon is stopping or the instance is removed
	EventAdvert                       // a validated advertisement for our VRID arrived
	EventTimer                        // the Machine's deadline has passed
	EventLinkDown                     // fault: the interface lost carrier, or a weight-0 tracker failed (Reason says which)
	EventLinkUp                       // the fault is over
	EventForceMaster                  // a sync-group peer became master: follow it
	EventForceBackup                  // a sync-group peer left master: follow it
	EventHold                         // hold out of master (Hold true) or release (Reason says why)
	EventReconfigure                  // apply Config in place, keeping the state
	EventAnnounce                     // a master's addresses need announcing again (restored, MAC changed): a new burst
)

// numEventKinds is how many event kinds there are, for tables over them.
const numEventKinds = int(EventAnnounce) + 1

// Event is one input to Machine.Step. From, Priority and Interval describe
// the advertisement for EventAdvert and are ignored otherwise.
type Event struct {
	Kind     EventKind
	Reason   Reason        // for EventLinkDown/EventLinkUp: why; default link_down/link_up
	From     netip.Addr    // source (the sender's primary address)
	Priority uint8         // advertised priority; 0 means the master resigns
	Interval time.Duration // advertised interval
	// HandOver, with EventShutdown, makes a master hand over rather than
	// drop its VIPs: make before break (see Machine.HandingOver).
	HandOver bool
	// Hold, with EventHold: hold (true) or release (false).
	Hold bool
	// Config, with EventReconfigure: the configuration to apply (a
	// pointer, so that the per-advert Event stays small).
	Config *MachineConfig
}

// Action is a set of things the caller must do after a Step.
type Action uint8

// Actions, in the order the runtime carries them out.
const (
	ActRemoveVIPs   Action = 1 << iota // delete the virtual addresses from the interface
	ActAddVIPs                         // add the virtual addresses to the interface
	ActSendAdvert                      // send an advertisement with our priority
	ActResign                          // send an advertisement with priority 0
	ActAnnounce                        // send gratuitous ARP for every VIP that is present (the machine schedules the repeats)
	ActStopAnnounce                    // the announcement repeats are cancelled (informational: the machine keeps the schedule)
	ActHandOver                        // keep the VIPs until a successor advertises (or the hand-over times out)
)

// Has reports whether every action in b is in a.
func (a Action) Has(b Action) bool { return a&b == b }

// Reason says why a transition happened; it is logged and shown by status.
type Reason uint8

// The reasons for a transition.
const (
	ReasonNone           Reason = iota
	ReasonStartup               // start-up as a backup
	ReasonOwner                 // start-up with priority 255 (address owner)
	ReasonMasterDown            // Master_Down_Timer fired: no advert from a master in time
	ReasonPreferredPeer         // an advert with higher priority (or equal from a higher address)
	ReasonShutdown              // the daemon or the instance is stopping
	ReasonLinkDown              // the interface lost carrier
	ReasonLinkUp                // the interface has carrier again
	ReasonPriorityChange        // our priority was reconfigured
	ReasonTracker               // a tracker with weight 0 failed, or recovered
	ReasonSyncGroup             // a member of the sync group moved, and this one followed
	ReasonMaintenance           // maintenance mode was turned on
	ReasonNoLinkLocal           // over IPv6, the interface has no usable link-local address to advertise from
)

// ReasonNoGlobalAddress: over IPv6 to unicast peers that are not
// link-locals, without source_address, the interface has no usable global
// address to advertise from.
const ReasonNoGlobalAddress = ReasonNoLinkLocal + 1

var reasonNames = [...]string{"", "startup", "address_owner", "master_down_timer",
	"preferred_peer_advert", "shutdown", "link_down", "link_up", "priority_change",
	"tracker", "sync_group", "maintenance", "no_link_local", "no_global_address"}

func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "unknown"
}

// Output is what one Step asks of the caller.
type Output struct {
	Actions    Action
	Transition bool // From → To happened in this Step
	From, To   State
	Reason     Reason
}

// MachineConfig is the part of an instance's configuration that the
// protocol logic needs.
type MachineConfig struct {
	Priority       uint8         // 1..255; 255 is the address owner
	Version        int           // 2 or 3
	AdvertInterval time.Duration // our own advertisement interval
	Preempt        bool
	// PreemptDelay holds off preemption for this long after start-up (as
	// keepalived's preempt_delay does): until then a backup accepts a
	// lower-priority master.
	PreemptDelay time.Duration
	// Addr is our primary address on the interface: the advert's source and
	// the tie-break between equal priorities.
	Addr netip.Addr
	// The gratuitous ARP schedule of a master: after the first burst,
	// AnnounceRepeat more every AnnounceInterval, then one every
	// AnnounceRefresh (0: none).
	AnnounceRepeat   int
	AnnounceInterval time.Duration
	AnnounceRefresh  time.Duration
	// AnnounceEchoes: after a takeover, one more announcement at each of
	// these times after it (ascending; zero ends the list; an array, so
	// that a MachineConfig compares with ==), besides the schedule above. With
	// a virtual MAC both routers send from one MAC, and a frame the old
	// master sends after the new master's first ones (a reply to a request
	// already on its way, before it let go on hearing our advert) pulls
	// the switches back to its port, where nothing answers once it has
	// let go; an echo pulls them back here without waiting a whole advert
	// interval.
	AnnounceEchoes [2]time.Duration
}
