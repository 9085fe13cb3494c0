package vrrp

import (
	"context"
	"net"
	"net/netip"
	"time"
)

// The upstream check. Gratuitous ARP tells the segment that the VIPs moved;
// some routers and firewalls ignore it and keep sending the VIPs' traffic
// to the old master until their entry expires. So, after a takeover, the
// new master sends each upstream (upstreams; by default the default gateway
// of the instance's interface) a targeted ARP request from each VIP on
// that interface, which a neighbour learns from even when it ignores
// gratuitous ARP, and then proves that the upstream moved: an ICMP echo
// from each VIP to the upstream, whose reply goes to the MAC the upstream
// has for the VIP, so it comes back only once that MAC is this node's.
//
// The loop only keeps the schedule and the results: each attempt (the
// requests, the echo, the wait for the reply) runs off the loop, started
// by the upstreamProber, and its probeResult comes back on upCh, as a
// tracker's result does on trackCh. An attempt is started from the loop's
// timer, after the takeover's adverts have been flushed, so the check never
// delays the takeover. A failed attempt is retried from upstreamRetryMin,
// doubling to upstreamRetryMax, at most upstreamMaxAttempts times per
// takeover; leaving master (or stopping) cancels the attempt in flight and
// drops the schedule.

const (
	// upstreamTimeout is how long an attempt waits for the echo replies.
	upstreamTimeout = 250 * time.Millisecond
	// upstreamRetryMin and upstreamRetryMax bound the wait between a
	// failed attempt and the next.
	upstreamRetryMin = 100 * time.Millisecond
	upstreamRetryMax = 5 * time.Second
	// upstreamMaxAttempts bounds the attempts of one takeover: an upstream
	// that drops ICMP echo is not asked forever (turn the check off for
	// it with upstreams: []).
	upstreamMaxAttempts = 10
	// maxProbesInFlight bounds the attempts running at once on the node
	// (many instances taking over together); the others wait their turn.
	maxProbesInFlight = 32
	// probeSlotWait is how long an attempt that found no free slot waits.
	probeSlotWait = 10 * time.Millisecond
	// upstreamStartDelay puts the first attempt in the loop's next turn,
	// after the takeover's adverts are flushed: the check goes after the
	// takeover, never before any part of it.
	upstreamStartDelay = time.Microsecond
)

// UpstreamState is what the check knows of one upstream.
type UpstreamState uint8

// The states of an upstream: checking until the first attempt's result,
// then moved or not-moved as the last attempt found.
const (
	UpstreamChecking UpstreamState = iota
	UpstreamMoved
	UpstreamNotMoved
)

func (s UpstreamState) String() string {
	switch s {
	case UpstreamChecking:
		return "checking"
	case UpstreamMoved:
		return "moved"
	case UpstreamNotMoved:
		return "not-moved"
	}
	return "unknown"
}

// AllUpstreamStates lists the states, for pre-created metric series.
func AllUpstreamStates() []UpstreamState {
	return []UpstreamState{UpstreamChecking, UpstreamMoved, UpstreamNotMoved}
}

// probeReq is one attempt of the check for one upstream.
type probeReq struct {
	Instance string
	Term     uint64 // the takeover it belongs to (upstreamCheck.term)
	Slot     int
	Link     string // the instance's interface
	Index    int
	MAC      net.HardwareAddr // this node's, on Link
	// Upstream is the neighbour to ask; the zero Addr means Link's default
	// gateway, looked up by the attempt.
	Upstream netip.Addr
	VIPs     []netip.Addr // the present VIPs on Link: the requests' and echoes' sources
	Timeout  time.Duration
}

// probeResult is what an attempt found.
type probeResult struct {
	Instance string
	Term     uint64
	Slot     int
	Upstream netip.Addr // the neighbour asked (the default gateway, looked up)
	// NoUpstream: the default gateway was asked for and Link has none.
	NoUpstream bool
	// Moved: every VIP's echo was answered.
	Moved bool
	// Err says why not moved: no reply, or what failed.
	Err string
}

// upstreamProber starts attempts off the loop. Each started attempt
// delivers exactly one result to the loop (Node.onProbeResult, by way of
// upCh on the host) while the Node runs; ctx ends with the takeover the
// attempt belongs to, which cuts it short.
type upstreamProber interface {
	startProbe(n *Node, ctx context.Context, req probeReq)
}

// upstreamCheck is an instance's check: the slots of its current term as
// master, and the attempt counters of every upstream since vipd started.
type upstreamCheck struct {
	term   uint64
	ctx    context.Context
	cancel context.CancelFunc
	slots  []upstreamSlot
	counts []UpstreamCount
	// noGatewayLogged: "no default gateway" was logged in this term.
	noGatewayLogged bool
}

// upstreamSlot is one upstream in a term.
type upstreamSlot struct {
	addr      netip.Addr // the configured one, or the default gateway once looked up
	deflt     bool       // the default gateway
	gone      bool       // the default gateway was looked for and there is none
	state     UpstreamState
	attempts  int
	inflight  bool
	started   time.Time // of the term
	lastCheck time.Time
	err       string
	due       time.Time // next attempt; zero: none scheduled
	wait      time.Duration
}

// UpstreamCount is the attempts that asked one upstream, by result, since
// vipd started.
type UpstreamCount struct {
	Upstream netip.Addr
	Moved    uint64 // answered from every VIP
	NotMoved uint64 // some echo not answered
	Errors   uint64 // could not be carried out (socket, send)
}

// UpstreamStatus is one upstream of a master's check.
type UpstreamStatus struct {
	Address   netip.Addr // invalid while the default gateway is still looked up
	Default   bool       // the default gateway of the instance's interface
	State     UpstreamState
	Attempts  int       // in this takeover
	LastCheck time.Time // of the last result; zero before the first
	Error     string    // why the last attempt did not prove the move
}

// next is the earliest attempt due, zero for none.
func (c *upstreamCheck) next() time.Time {
	var d time.Time
	for i := range c.slots {
		if s := &c.slots[i]; !s.due.IsZero() && (d.IsZero() || s.due.Before(d)) {
			d = s.due
		}
	}
	return d
}

// count is the counter of upstream a, made on first use.
func (c *upstreamCheck) count(a netip.Addr) *UpstreamCount {
	for i := range c.counts {
		if c.counts[i].Upstream == a {
			return &c.counts[i]
		}
	}
	c.counts = append(c.counts, UpstreamCount{Upstream: a})
	return &c.counts[len(c.counts)-1]
}

// startUpstreams begins the check of a new term as master: every upstream
// is due in the loop's next turn (upstreamStartDelay), once this turn's
// adverts are out. A check already running starts over.
func (n *Node) startUpstreams(in *instance, now time.Time) {
	n.stopUpstreams(in)
	if n.prober == nil || in.cfg.NoUpstreams || n.ctx == nil {
		return
	}
	c := &in.up
	c.ctx, c.cancel = context.WithCancel(n.ctx)
	c.noGatewayLogged = false
	if len(in.cfg.Upstreams) == 0 {
		c.slots = append(c.slots, upstreamSlot{deflt: true})
	}
	for _, a := range in.cfg.Upstreams {
		c.slots = append(c.slots, upstreamSlot{addr: a})
	}
	for i := range c.slots {
		c.slots[i].started, c.slots[i].due, c.slots[i].wait = now, now.Add(upstreamStartDelay), upstreamRetryMin
	}
	n.noteDeadline(in)
}

// stopUpstreams ends the check: the attempts in flight are cancelled and
// their results, when they come, ignored.
func (n *Node) stopUpstreams(in *instance) {
	c := &in.up
	if c.cancel != nil {
		c.cancel()
		c.cancel, c.ctx = nil, nil
	}
	c.term++
	c.slots = nil
}

// upstreamTimers starts the attempts that are due.
func (n *Node) upstreamTimers(in *instance, now time.Time) {
	c := &in.up
	for i := range c.slots {
		s := &c.slots[i]
		if s.due.IsZero() || s.due.After(now) {
			continue
		}
		if n.probesInFlight >= maxProbesInFlight {
			s.due = now.Add(probeSlotWait)
			continue
		}
		link := in.upstreamLink()
		vips := n.upstreamVIPs(in, link)
		if len(vips) == 0 {
			// No VIP is on the link yet (its add is retried): nothing
			// to ask about; try again later without counting it, backing
			// off as for a failed attempt.
			s.due = now.Add(s.wait)
			s.wait = min(2*s.wait, upstreamRetryMax)
			continue
		}
		s.due, s.inflight = time.Time{}, true
		s.attempts++
		n.probesInFlight++
		n.prober.startProbe(n, c.ctx, probeReq{
			Instance: in.cfg.Name, Term: c.term, Slot: i,
			Link: link.name, Index: link.index, MAC: append(net.HardwareAddr(nil), link.mac...),
			Upstream: s.addr, VIPs: vips, Timeout: upstreamTimeout,
		})
	}
	n.noteDeadline(in)
}

// upstreamLink is the link the instance's own VIPs live on: its interface,
// or with virtual_mac its macvlan, whose virtual MAC the upstream must
// learn.
func (in *instance) upstreamLink() *iface {
	if in.vmac != nil && in.vmac.ifc != nil {
		return in.vmac.ifc
	}
	return in.ifc
}

// upstreamVIPs are the instance's VIPs present on link: the upstream is a
// neighbour there.
func (n *Node) upstreamVIPs(in *instance, link *iface) []netip.Addr {
	var vips []netip.Addr
	for _, v := range in.vs {
		if v.link == link && v.present && v.family == FamilyIPv4 {
			vips = append(vips, v.prefix.Addr())
		}
	}
	return vips
}

// onProbeResult takes an attempt's result: the state, the counters, one
// log line per change of state, and the next attempt if it did not prove
// the move.
func (n *Node) onProbeResult(r probeResult, now time.Time) {
	if n.probesInFlight > 0 {
		n.probesInFlight--
	}
	var in *instance
	for _, x := range n.insts {
		if x.cfg.Name == r.Instance {
			in = x
		}
	}
	if in == nil || in.up.term != r.Term || r.Slot >= len(in.up.slots) || in.m.State() != StateMaster {
		return // from a term that has ended
	}
	c := &in.up
	s := &c.slots[r.Slot]
	s.inflight, s.lastCheck = false, now
	if r.NoUpstream {
		s.gone = true
		if !c.noGatewayLogged {
			c.noGatewayLogged = true
			n.log.Info("upstream check skipped: no default gateway on the interface; list upstreams, or set upstreams: [] to turn the check off",
				"instance", in.cfg.Name, "interface", in.ifc.name)
		}
		return
	}
	if r.Upstream.IsValid() {
		s.addr = r.Upstream
	}
	cnt := c.count(s.addr)
	attrs := []any{"instance", in.cfg.Name, "interface", in.ifc.name, "upstream", s.addr, "attempts", s.attempts,
		"after", now.Sub(s.started).Round(time.Millisecond).String()}
	prev := s.state
	if r.Moved {
		cnt.Moved++
		s.state, s.err = UpstreamMoved, ""
		if prev != UpstreamMoved {
			n.log.Info("upstream moved", attrs...)
		}
		return
	}
	if r.Err != "" && r.Err != errNoReply {
		cnt.Errors++
	} else {
		cnt.NotMoved++
	}
	s.state, s.err = UpstreamNotMoved, r.Err
	if s.attempts >= upstreamMaxAttempts {
		n.log.Warn("upstream did not move; no more checks until the next takeover", append(attrs, "err", r.Err)...)
		return
	}
	if prev != UpstreamNotMoved {
		n.log.Warn("upstream has not moved yet; asking again", append(attrs, "err", r.Err, "retry_in", s.wait.String())...)
	}
	s.due = now.Add(s.wait)
	s.wait = min(2*s.wait, upstreamRetryMax)
	n.noteDeadline(in)
}

// errNoReply is an attempt's Err when an echo went unanswered.
const errNoReply = "no echo reply: the upstream still sends the VIP's traffic elsewhere"

// upstreamStatus is the check's part of an instance's status.
func (in *instance) upstreamStatus() []UpstreamStatus {
	var out []UpstreamStatus
	for _, s := range in.up.slots {
		if s.gone {
			continue
		}
		out = append(out, UpstreamStatus{Address: s.addr, Default: s.deflt, State: s.state,
			Attempts: s.attempts, LastCheck: s.lastCheck, Error: s.err})
	}
	return out
}

// followUpstreams starts the check when a step made the instance master or
// had it announce again (EventAnnounce: VIPs restored, a new MAC), and stops
// it when the instance left master.
func (n *Node) followUpstreams(in *instance, out Output, ev Event, now time.Time) {
	switch {
	case out.Transition && out.From == StateMaster:
		n.stopUpstreams(in)
	case out.Transition && out.To == StateMaster,
		ev.Kind == EventAnnounce && out.Actions.Has(ActAnnounce) && in.m.State() == StateMaster:
		n.startUpstreams(in, now)
	}
}
