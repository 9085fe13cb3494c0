package vrrp

import (
	"net/netip"
	"time"
)

// Machine is the VRRP state machine of one instance. It is pure: it never
// reads a clock or touches the network; Step takes an event and the current
// time and returns what to do. It is not safe for concurrent use.
type Machine struct {
	cfg   MachineConfig
	state State

	masterAdverInterval time.Duration // v3: learned from the master's adverts
	masterAddr          netip.Addr    // who we believe is master (ourselves when master)
	masterPriority      uint8

	masterDown   time.Time // Backup: when to take over
	adverDue     time.Time // Master: when to advertise next
	preemptAfter time.Time // preemption is held off until then
	lastChange   time.Time
	held         bool // may not become master (maintenance, or a sync-group member in fault)

	// handOverUntil: resigned on shutdown, holding the VIPs until a
	// successor advertises or until then; zero when not handing over.
	handOverUntil time.Time

	reassert reassertion // Master: answers to lower-ranked adverts (reassert.go)

	announceLeft int       // Master: repeats of the burst still to send
	announceNext time.Time // Master: when to announce next; zero: never
	// Master: the takeover's echoes (MachineConfig.AnnounceEchoes): when
	// it took over, and the next echo's index.
	echoFrom time.Time
	echoNext int
}

// NewMachine returns a Machine in Init. Send it EventStartup to begin.
func NewMachine(cfg MachineConfig) *Machine {
	return &Machine{cfg: cfg, state: StateInit}
}

// State is the current state.
func (m *Machine) State() State { return m.state }

// Config is the configuration in force.
func (m *Machine) Config() MachineConfig { return m.cfg }

// MasterAddr is the current master's primary address as this node sees it
// (our own when master; invalid when unknown).
func (m *Machine) MasterAddr() netip.Addr { return m.masterAddr }

// MasterPriority is the priority the current master last advertised.
func (m *Machine) MasterPriority() uint8 { return m.masterPriority }

// MasterAdverInterval is the interval the master advertises at: learned from
// its adverts with v3, our own with v2.
func (m *Machine) MasterAdverInterval() time.Duration { return m.masterAdverInterval }

// LastChange is when the state last changed.
func (m *Machine) LastChange() time.Time { return m.lastChange }

// Deadline is when the Machine next needs an EventTimer; zero when it waits
// for nothing.
func (m *Machine) Deadline() time.Time {
	switch m.state {
	case StateMaster:
		return m.adverDue
	case StateBackup:
		return m.masterDown
	case StateInit:
		return m.handOverUntil
	}
	return time.Time{}
}

// AnnounceDue is when a master next sends gratuitous ARP (a repeat of its
// burst, an echo of its takeover, or a refresh); zero when it does not.
func (m *Machine) AnnounceDue() time.Time {
	if e := m.echoDue(); !e.IsZero() && (m.announceNext.IsZero() || e.Before(m.announceNext)) {
		return e
	}
	return m.announceNext
}

// echoDue is when the takeover's next echo is due; zero when none is.
func (m *Machine) echoDue() time.Time {
	if m.echoFrom.IsZero() || m.echoNext >= len(m.cfg.AnnounceEchoes) || m.cfg.AnnounceEchoes[m.echoNext] <= 0 {
		return time.Time{}
	}
	return m.echoFrom.Add(m.cfg.AnnounceEchoes[m.echoNext])
}

// startAnnounce begins a burst at now: the caller announces, and the
// repeats follow on the machine's schedule.
func (m *Machine) startAnnounce(now time.Time) {
	m.announceLeft = m.cfg.AnnounceRepeat
	m.scheduleAnnounce(now)
}

func (m *Machine) scheduleAnnounce(now time.Time) {
	switch {
	case m.announceLeft > 0:
		m.announceNext = now.Add(m.cfg.AnnounceInterval)
	case m.cfg.AnnounceRefresh > 0:
		m.announceNext = now.Add(m.cfg.AnnounceRefresh)
	default:
		m.announceNext = time.Time{}
	}
}

// HandingOver reports whether the Machine resigned on shutdown and keeps
// its VIPs until a successor advertises (make before break).
func (m *Machine) HandingOver() bool { return !m.handOverUntil.IsZero() }

// The hand-over on shutdown waits for a successor for the advert interval
// and handoverMargin, at most handoverMax, so that a long interval (v3
// allows 40.95 s, v2 255 s) cannot hold a stop past systemd's
// TimeoutStopSec (10 s in deploy/vipd.service) and get vipd killed with
// its VIPs still on the interface.
const (
	handoverMargin = 10 * time.Millisecond
	handoverMax    = 3 * time.Second
)

// SkewTime is Skew_Time for our priority and version (see SkewTime).
func (m *Machine) SkewTime() time.Duration {
	return SkewTime(m.cfg.Version, m.cfg.Priority, m.masterAdverInterval)
}

// MasterDownInterval is 3 × Master_Adver_Interval + Skew_Time.
func (m *Machine) MasterDownInterval() time.Duration {
	return MasterDownInterval(m.cfg.Version, m.cfg.Priority, m.masterAdverInterval)
}

// SkewTime is how long a backup with this priority waits after a master
// resigns. VRRPv3 scales it by the advert interval: (256 − priority) ×
// interval / 256 (RFC 5798 §6.1). VRRPv2 does not: it is (256 − priority)
// / 256 seconds whatever the interval (RFC 3768 §6.1, and keepalived), so
// a v2 peer with a 3 s interval and a vipd backup agree on who goes first.
func SkewTime(version int, priority uint8, interval time.Duration) time.Duration {
	if version == 2 {
		interval = time.Second
	}
	return time.Duration(256-int64(priority)) * interval / 256
}

// MasterDownInterval is 3 × interval + SkewTime (RFC 5798 §6.1, RFC 3768
// §6.1).
func MasterDownInterval(version int, priority uint8, interval time.Duration) time.Duration {
	return 3*interval + SkewTime(version, priority, interval)
}

// Step feeds one event to the Machine at time now.
func (m *Machine) Step(ev Event, now time.Time) Output {
	switch ev.Kind {
	case EventStartup:
		return m.startup(now, ReasonStartup)
	case EventShutdown:
		return m.shutdown(now, ev.HandOver)
	case EventAdvert:
		return m.advert(ev, now)
	case EventTimer:
		return m.timer(now)
	case EventLinkDown:
		r := ev.Reason
		if r == ReasonNone {
			r = ReasonLinkDown
		}
		return m.linkDown(now, r)
	case EventLinkUp:
		if m.state != StateFault {
			return Output{}
		}
		r := ev.Reason
		if r == ReasonNone {
			r = ReasonLinkUp
		}
		return m.startup(now, r)
	case EventForceMaster:
		if m.state != StateBackup || m.held {
			return Output{}
		}
		return m.becomeMaster(now, ReasonSyncGroup)
	case EventForceBackup:
		if m.state != StateMaster {
			return Output{}
		}
		return m.resign(now, ReasonSyncGroup)
	case EventHold:
		return m.setHold(ev.Hold, ev.Reason, now)
	case EventReconfigure:
		if ev.Config == nil {
			return Output{}
		}
		return m.reconfigure(*ev.Config, now)
	case EventAnnounce:
		if m.state != StateMaster {
			return Output{}
		}
		m.startAnnounce(now)
		return Output{Actions: ActAnnounce}
	}
	return Output{}
}

// Held reports whether the machine is held in backup.
func (m *Machine) Held() bool { return m.held }

// SetHold holds the machine out of master (hold true) or releases it. A
// master that is held resigns at once: it sends a priority-0 advert, so a
// backup takes over after Skew_Time, and gives up its VIPs. A held backup
// keeps following adverts but never takes over on its timer.
func (m *Machine) SetHold(hold bool, r Reason, now time.Time) Output {
	return m.Step(Event{Kind: EventHold, Hold: hold, Reason: r}, now)
}

func (m *Machine) setHold(hold bool, r Reason, now time.Time) Output {
	m.held = hold
	if hold && m.state == StateMaster {
		return m.resign(now, r)
	}
	return Output{}
}

// resign leaves master for backup with a priority-0 advert.
func (m *Machine) resign(now time.Time, r Reason) Output {
	m.masterAddr = netip.Addr{}
	m.masterPriority = 0
	m.masterDown = now.Add(m.MasterDownInterval())
	return m.transition(StateBackup, r, now, ActStopAnnounce|ActResign|ActRemoveVIPs)
}

// Reconfigure applies a new configuration in place, keeping the state. A
// master advertises the change at once; a backup's timer uses the new
// priority from the next advert on.
func (m *Machine) Reconfigure(cfg MachineConfig, now time.Time) Output {
	return m.Step(Event{Kind: EventReconfigure, Config: &cfg}, now)
}

func (m *Machine) reconfigure(cfg MachineConfig, now time.Time) Output {
	old := m.cfg
	m.cfg = cfg
	if cfg.PreemptDelay != old.PreemptDelay {
		m.preemptAfter = m.lastChange.Add(cfg.PreemptDelay)
	}
	if m.cfg.Version == 2 || m.state != StateBackup {
		m.masterAdverInterval = cfg.AdvertInterval
	}
	if m.state == StateMaster {
		m.masterAddr = cfg.Addr
		m.masterPriority = cfg.Priority
		if old.Priority != cfg.Priority || old.AdvertInterval != cfg.AdvertInterval {
			m.adverDue = now.Add(cfg.AdvertInterval)
			return Output{Actions: ActSendAdvert}
		}
	}
	return Output{}
}

func (m *Machine) transition(to State, r Reason, now time.Time, acts Action) Output {
	from := m.state
	m.state = to
	if to != StateMaster {
		m.announceLeft, m.announceNext = 0, time.Time{}
		m.echoFrom = time.Time{}
	} else if from != StateMaster && acts.Has(ActAnnounce) {
		m.echoFrom, m.echoNext = now, 0
	}
	if acts.Has(ActAnnounce) {
		m.startAnnounce(now)
	}
	m.lastChange = now
	return Output{Actions: acts, Transition: from != to, From: from, To: to, Reason: r}
}

func (m *Machine) startup(now time.Time, r Reason) Output {
	if m.state != StateInit && m.state != StateFault {
		return Output{}
	}
	m.masterAdverInterval = m.cfg.AdvertInterval
	m.preemptAfter = now.Add(m.cfg.PreemptDelay)
	var acts Action
	if m.HandingOver() {
		// Started again while handing over: the VIPs go, as after a
		// stop, unless the owner takes them back.
		m.handOverUntil = time.Time{}
		acts = ActRemoveVIPs
	}
	if m.cfg.Priority == 255 && !m.held {
		if r == ReasonStartup {
			r = ReasonOwner
		}
		return m.becomeMaster(now, r)
	}
	m.masterAddr = netip.Addr{}
	m.masterPriority = 0
	m.masterDown = now.Add(m.MasterDownInterval())
	return m.transition(StateBackup, r, now, acts)
}

func (m *Machine) becomeMaster(now time.Time, r Reason) Output {
	m.adverDue = now.Add(m.cfg.AdvertInterval)
	m.masterAdverInterval = m.cfg.AdvertInterval
	m.masterAddr = m.cfg.Addr
	m.masterPriority = m.cfg.Priority
	m.reassert = reassertion{}
	return m.transition(StateMaster, r, now, ActAddVIPs|ActSendAdvert|ActAnnounce)
}

// becomeBackup yields to a better master. It advertises once more at its
// own priority on the way out: in a split brain that heals, the winner
// re-announces only when it hears a lower rank, and without this advert a
// winner whose advert crossed first never would, leaving clients on the
// loser's MAC (keepalived's higher_prio_send_advert does the same).
func (m *Machine) becomeBackup(ev Event, now time.Time) Output {
	m.learn(ev)
	m.masterDown = now.Add(m.MasterDownInterval())
	return m.transition(StateBackup, ReasonPreferredPeer, now, ActStopAnnounce|ActRemoveVIPs|ActSendAdvert)
}

// learn records the advertising master (and, with v3, its interval).
func (m *Machine) learn(ev Event) {
	if m.cfg.Version == 3 && ev.Interval > 0 {
		m.masterAdverInterval = ev.Interval
	}
	m.masterAddr = ev.From
	m.masterPriority = ev.Priority
}

// shutdown stops the instance. A master resigns (priority-0 advert); with
// handOver it keeps its VIPs until another router advertises the VRID with
// a priority above 0 (the backup taking over after its Skew_Time), or
// until the hand-over times out: a planned stop then costs the clients
// only the gratuitous ARP's trip instead of Skew_Time without an answer.
func (m *Machine) shutdown(now time.Time, handOver bool) Output {
	switch m.state {
	case StateMaster:
		if handOver {
			m.handOverUntil = now.Add(min(m.cfg.AdvertInterval+handoverMargin, handoverMax))
			return m.transition(StateInit, ReasonShutdown, now, ActStopAnnounce|ActResign|ActHandOver)
		}
		return m.transition(StateInit, ReasonShutdown, now, ActStopAnnounce|ActResign|ActRemoveVIPs)
	case StateBackup, StateFault:
		return m.transition(StateInit, ReasonShutdown, now, 0)
	}
	return Output{}
}

func (m *Machine) linkDown(now time.Time, r Reason) Output {
	switch m.state {
	case StateInit:
		// Started on an interface without carrier: wait in Fault. A
		// hand-over ends: no successor can be heard.
		var acts Action
		if m.HandingOver() {
			m.handOverUntil = time.Time{}
			acts = ActRemoveVIPs
		}
		return m.transition(StateFault, r, now, acts)
	case StateMaster:
		m.masterAddr = netip.Addr{}
		acts := ActStopAnnounce | ActRemoveVIPs
		if r != ReasonLinkDown {
			// The link works: tell the backup at once rather than
			// leaving it to wait out its Master_Down_Interval.
			acts |= ActResign
		}
		return m.transition(StateFault, r, now, acts)
	case StateBackup:
		m.masterAddr = netip.Addr{}
		return m.transition(StateFault, r, now, 0)
	}
	return Output{}
}

func (m *Machine) timer(now time.Time) Output {
	switch m.state {
	case StateInit:
		if m.HandingOver() && !now.Before(m.handOverUntil) {
			// No successor spoke: the VIPs go anyway.
			m.handOverUntil = time.Time{}
			return Output{Actions: ActRemoveVIPs}
		}
	case StateBackup:
		if now.Before(m.masterDown) {
			return Output{}
		}
		if m.held {
			m.masterDown = now.Add(m.MasterDownInterval())
			return Output{}
		}
		return m.becomeMaster(now, ReasonMasterDown)
	case StateMaster:
		var acts Action
		if !m.announceNext.IsZero() && !now.Before(m.announceNext) {
			acts |= ActAnnounce
			if m.announceLeft > 0 {
				m.announceLeft--
			}
			m.scheduleAnnounce(now)
		}
		for e := m.echoDue(); !e.IsZero() && !now.Before(e); e = m.echoDue() {
			acts |= ActAnnounce
			m.echoNext++
		}
		if now.Before(m.adverDue) {
			return Output{Actions: acts}
		}
		m.adverDue = m.adverDue.Add(m.cfg.AdvertInterval)
		if !m.adverDue.After(now) {
			// We fell behind (a stalled process): restart the cadence
			// rather than sending a burst of catch-up adverts.
			m.adverDue = now.Add(m.cfg.AdvertInterval)
		}
		return Output{Actions: acts | ActSendAdvert}
	}
	return Output{}
}

// outranks reports whether we rank above an advert with priority p from
// address from: higher priority, or equal priority and a higher address.
func (m *Machine) outranks(p uint8, from netip.Addr) bool {
	if p != m.cfg.Priority {
		return m.cfg.Priority > p
	}
	return m.cfg.Addr.Compare(from) > 0
}

func (m *Machine) advert(ev Event, now time.Time) Output {
	switch m.state {
	case StateInit:
		if m.HandingOver() && ev.Priority > 0 {
			// Our successor has taken over: the VIPs are its now.
			m.handOverUntil = time.Time{}
			return Output{Actions: ActRemoveVIPs}
		}
	case StateBackup:
		if ev.Priority == 0 {
			// The master resigned: take over after Skew_Time only.
			m.masterDown = now.Add(m.SkewTime())
			return Output{}
		}
		preempt := m.cfg.Preempt && !now.Before(m.preemptAfter)
		if !preempt || ev.Priority >= m.cfg.Priority {
			m.learn(ev)
			m.masterDown = now.Add(m.MasterDownInterval())
		}
		// Otherwise ignore it: our Master_Down_Timer runs out and we
		// preempt the lower-priority master.
		return Output{}
	case StateMaster:
		if ev.Priority == 0 {
			m.adverDue = now.Add(m.cfg.AdvertInterval)
			return Output{Actions: ActSendAdvert}
		}
		if !m.outranks(ev.Priority, ev.From) {
			return m.becomeBackup(ev, now)
		}
		// Another node thinks it is master with a lower rank: a split
		// brain healing. Assert ourselves at once and re-announce, because
		// clients may point at the loser's MAC. Paced (reassert.go) so that
		// a flood of such adverts, or a peer that never accepts ours,
		// cannot make us flood.
		if !m.reassert.hear(ev.From, ev.Priority, now, m.cfg.AdvertInterval) {
			return Output{}
		}
		m.adverDue = now.Add(m.cfg.AdvertInterval)
		m.startAnnounce(now)
		return Output{Actions: ActSendAdvert | ActAnnounce}
	}
	return Output{}
}
