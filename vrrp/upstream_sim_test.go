package vrrp

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// The upstream check on the simulated segment: a fake upstream on eth0
// that keeps an ARP cache (VIP -> MAC), may ignore gratuitous ARP (sender
// and target the same address), may ignore the first targeted requests,
// and answers an echo to the MAC it has for the VIP, so an attempt is
// answered only once that MAC is the prober's.

type simUpstream struct {
	addr       netip.Addr
	ignoreGARP bool
	deaf       int  // targeted requests ignored before it learns from one
	silent     bool // drops ICMP echo: never answers
	requests   int
	cache      map[netip.Addr]string // VIP -> MAC
}

// simProbe is one attempt a host started, with what had happened on the
// host by then.
type simProbe struct {
	at        time.Time
	h         *simNode
	req       probeReq
	ctx       context.Context
	announced int    // announcements the host made at this instant or before
	flushed   bool   // no advert waiting in the link's queue
	adverts   uint64 // adverts the instance had sent
}

func (s *simNet) addUpstream(addr string, ignoreGARP bool) *simUpstream {
	u := &simUpstream{addr: netip.MustParseAddr(addr), ignoreGARP: ignoreGARP, cache: map[netip.Addr]string{}}
	s.upstreams = append(s.upstreams, u)
	return u
}

// upstreamsHearGARP is the upstreams' side of an announcement on eth0.
func (s *simNet) upstreamsHearGARP(l *simLink, addrs []netip.Addr) {
	if l.name != "eth0" || s.cut || !l.h.links[l.name].Up {
		return
	}
	for _, u := range s.upstreams {
		if !u.ignoreGARP {
			for _, a := range addrs {
				u.cache[a] = l.mac.String()
			}
		}
	}
}

// startProbe is the host's prober: the upstream learns from the targeted
// request (unless deaf), and the result comes back one round trip later
// when every VIP's echo is answered to this host, else after the timeout.
func (h *simNode) startProbe(n *Node, ctx context.Context, req probeReq) {
	s := h.net
	rec := simProbe{at: s.now, h: h, req: req, ctx: ctx, flushed: true}
	for _, an := range s.anns {
		if an.node == h.name && !an.at.After(s.now) {
			rec.announced++
		}
	}
	if l := h.open[req.Link]; l != nil {
		rec.flushed = len(l.queue) == 0
	}
	for _, in := range n.insts {
		if in.cfg.Name == req.Instance {
			rec.adverts = in.count.AdvertsSent
		}
	}
	s.probes = append(s.probes, rec)

	r := probeResult{Instance: req.Instance, Term: req.Term, Slot: req.Slot, Upstream: req.Upstream, Err: errNoReply}
	delay := req.Timeout
	if !r.Upstream.IsValid() {
		r.Upstream = s.gateway
	}
	var u *simUpstream
	for _, x := range s.upstreams {
		if x.addr == r.Upstream {
			u = x
		}
	}
	switch {
	case !r.Upstream.IsValid():
		r.NoUpstream, r.Err, delay = true, "", simDelay
	case u != nil && !s.cut && h.links[req.Link].Up:
		u.requests++
		if u.requests > u.deaf {
			for _, v := range req.VIPs {
				u.cache[v] = req.MAC.String()
			}
		}
		moved := !u.silent
		for _, v := range req.VIPs {
			moved = moved && u.cache[v] == req.MAC.String()
		}
		if moved {
			r.Moved, r.Err, delay = true, "", 2*simDelay
		}
	}
	s.later = append(s.later, simLater{at: s.now.Add(delay), h: h, fn: func() {
		if h.running && h.n == n {
			n.onProbeResult(r, s.now)
			h.after()
		}
	}})
}

// probesBy lists host h's attempts.
func (s *simNet) probesBy(h *simNode) []simProbe {
	var ps []simProbe
	for _, p := range s.probes {
		if p.h == h {
			ps = append(ps, p)
		}
	}
	return ps
}

// status is the host's status of instance name.
func (h *simNode) status(name string) InstanceStatus {
	h.net.t.Helper()
	for _, is := range h.n.status().Instances {
		if is.Name == name {
			return is
		}
	}
	h.net.t.Fatalf("%s: no instance %s in status", h.name, name)
	return InstanceStatus{}
}

func (l *simLog) count(sub string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := 0
	for _, s := range l.lines {
		if strings.Contains(s, sub) {
			c++
		}
	}
	return c
}

const scnUpstream = "10.0.0.254"

// upstreamKill runs a (150) and b (100) with the instance lines extra,
// kills a once the start-up is over, and returns b's takeover time.
func upstreamKill(t *testing.T, s *simNet, extra ...string) (a, b *simNode, takeover time.Time) {
	a = s.host("a", "10.0.0.1")
	b = s.host("b", "10.0.0.2")
	a.start(s.config(scnConfig(scnInstance("web", 51, 150, extra...))))
	b.start(s.config(scnConfig(scnInstance("web", 51, 100, extra...))))
	s.run(4 * time.Second)
	a.expect("web", StateMaster)
	takeover = a.inst("web").m.Deadline().Add(-100 * time.Millisecond).Add(simDelay).Add(MasterDownInterval(3, 100, 100*time.Millisecond))
	for _, u := range s.upstreams {
		u.requests = 0
		// It resolved the VIP itself by now, as a router does: to a.
		u.cache[netip.MustParseAddr(scnVIP)] = simMAC(1).String()
	}
	a.kill()
	return a, b, takeover
}

// An upstream that ignores gratuitous ARP learns the new master from the
// targeted request, and the check reports it moved after one attempt.
func TestScenarioUpstreamMovedByTargetedRequest(t *testing.T) {
	s := newSimNet(t)
	u := s.addUpstream(scnUpstream, true)
	s.gateway = u.addr // the default: eth0's default gateway
	a, b, takeover := upstreamKill(t, s)
	vip := netip.MustParseAddr(scnVIP)
	if got := u.cache[vip]; got != simMAC(1).String() {
		t.Fatalf("before the kill the upstream has %s at %q, want a's MAC", vip, got)
	}
	if st := a.status("web").Upstreams; len(st) != 1 || st[0].State != UpstreamMoved {
		t.Fatalf("a's upstream check: %+v, want moved", st)
	}
	s.run(2 * time.Second)
	b.expect("web", StateMaster)
	if got := b.became("web", StateMaster); !got.Equal(takeover) {
		t.Fatalf("b took over at %v, want %v", got.Sub(simT0), takeover.Sub(simT0))
	}
	ps := s.probesBy(b)
	if len(ps) != 1 {
		t.Fatalf("b made %d attempts, want 1", len(ps))
	}
	p := ps[0]
	if !p.at.Equal(takeover.Add(upstreamStartDelay)) || p.req.Upstream.IsValid() || !slices.Equal(p.req.VIPs, []netip.Addr{vip}) ||
		p.req.MAC.String() != simMAC(2).String() || p.req.Link != "eth0" {
		t.Errorf("b's attempt: %+v at %v; want the default gateway from %s at b's MAC at the takeover", p.req, p.at.Sub(simT0), vip)
	}
	if got := u.cache[vip]; got != simMAC(2).String() {
		t.Errorf("the upstream has %s at %q after the takeover, want b's MAC %s", vip, got, simMAC(2))
	}
	want := []UpstreamStatus{{Address: u.addr, Default: true, State: UpstreamMoved, Attempts: 1, LastCheck: takeover.Add(upstreamStartDelay + 2*simDelay)}}
	if got := b.status("web").Upstreams; !slices.Equal(got, want) {
		t.Errorf("b's upstreams in status: %+v, want %+v", got, want)
	}
	if got := b.status("web").UpstreamCounts; !slices.Equal(got, []UpstreamCount{{Upstream: u.addr, Moved: 1}}) {
		t.Errorf("b's upstream counts: %+v", got)
	}
	if c := b.logs.count("upstream moved"); c != 1 {
		t.Errorf("%d 'upstream moved' lines, want 1:\n%s", c, b.logs)
	}
	if b.n.probesInFlight != 0 {
		t.Errorf("%d attempts in flight after the result", b.n.probesInFlight)
	}
}

// An upstream that ignores the first targeted requests: the attempts are
// retried 100 ms, 200 ms, 400 ms after each timeout, the state is
// not-moved in between (logged once), and moved once it learns.
func TestScenarioUpstreamRetriedWithBackoff(t *testing.T) {
	s := newSimNet(t)
	u := s.addUpstream(scnUpstream, true)
	_, b, takeover := upstreamKill(t, s, "upstreams: ["+scnUpstream+"]")
	u.deaf = 3
	s.runUntil(takeover.Add(700 * time.Millisecond))
	b.expect("web", StateMaster)
	st := b.status("web").Upstreams
	if len(st) != 1 || st[0].State != UpstreamNotMoved || st[0].Attempts != 2 || st[0].Error != errNoReply || st[0].Default {
		t.Fatalf("b's upstream 700 ms after the takeover: %+v, want not-moved after 2 attempts", st)
	}
	s.run(5 * time.Second)
	var at []time.Duration
	for _, p := range s.probesBy(b) {
		at = append(at, p.at.Sub(takeover.Add(upstreamStartDelay)))
	}
	to := upstreamTimeout
	want := []time.Duration{0, to + 100*time.Millisecond, 2*to + 300*time.Millisecond, 3*to + 700*time.Millisecond}
	if !slices.Equal(at, want) {
		t.Errorf("b's attempts at %v after the takeover, want %v", at, want)
	}
	st = b.status("web").Upstreams
	if len(st) != 1 || st[0].State != UpstreamMoved || st[0].Attempts != 4 || st[0].Error != "" {
		t.Errorf("b's upstream at the end: %+v, want moved after 4 attempts", st)
	}
	if got := b.status("web").UpstreamCounts; !slices.Equal(got, []UpstreamCount{{Upstream: u.addr, Moved: 1, NotMoved: 3}}) {
		t.Errorf("b's upstream counts: %+v, want 3 not moved, 1 moved", got)
	}
	if c := b.logs.count("upstream has not moved yet"); c != 1 {
		t.Errorf("%d 'not moved yet' lines, want 1 (once per change):\n%s", c, b.logs)
	}
	if c := b.logs.count("upstream moved"); c != 1 {
		t.Errorf("%d 'upstream moved' lines, want 1", c)
	}
}

// An upstream that never answers: the waits double to upstreamRetryMax,
// the check stops after upstreamMaxAttempts and says so once; the
// instance stays master throughout.
func TestScenarioUpstreamGivesUp(t *testing.T) {
	s := newSimNet(t)
	u := s.addUpstream(scnUpstream, false)
	u.silent = true
	_, b, takeover := upstreamKill(t, s, "upstreams: ["+scnUpstream+"]")
	s.run(2 * time.Minute)
	b.expect("web", StateMaster)
	ps := s.probesBy(b)
	if len(ps) != upstreamMaxAttempts {
		t.Fatalf("b made %d attempts, want %d", len(ps), upstreamMaxAttempts)
	}
	wait := upstreamRetryMin
	for i := 1; i < len(ps); i++ {
		if gap := ps[i].at.Sub(ps[i-1].at); gap != upstreamTimeout+wait {
			t.Errorf("attempt %d came %v after the one before, want %v", i+1, gap, upstreamTimeout+wait)
		}
		wait = min(2*wait, upstreamRetryMax)
	}
	if !ps[0].at.Equal(takeover.Add(upstreamStartDelay)) {
		t.Errorf("first attempt %v after the takeover", ps[0].at.Sub(takeover))
	}
	st := b.status("web").Upstreams
	if len(st) != 1 || st[0].State != UpstreamNotMoved || st[0].Attempts != upstreamMaxAttempts {
		t.Errorf("b's upstream: %+v, want not-moved after %d attempts", st, upstreamMaxAttempts)
	}
	if c := b.logs.count("no more checks until the next takeover"); c != 1 {
		t.Errorf("%d give-up lines, want 1:\n%s", c, b.logs)
	}
	if c := b.logs.count("upstream has not moved yet"); c != 1 {
		t.Errorf("%d 'not moved yet' lines, want 1", c)
	}
}

// Leaving master stops the check: the attempt in flight is cancelled, its
// result ignored, no attempt follows and status shows none.
func TestScenarioUpstreamStopsWhenLeavingMaster(t *testing.T) {
	s := newSimNet(t)
	u := s.addUpstream(scnUpstream, false)
	u.silent = true
	s.gateway = u.addr
	a := s.host("a", "10.0.0.1")
	b := s.host("b", "10.0.0.2")
	b.start(s.config(scnConfig(scnInstance("web", 51, 100))))
	s.run(time.Second)
	b.expect("web", StateMaster)
	// An attempt is in flight: started, its timeout not yet over.
	for {
		ps := s.probesBy(b)
		if last := ps[len(ps)-1]; s.now.Sub(last.at) < upstreamTimeout && len(b.inst("web").up.slots) == 1 && b.inst("web").up.slots[0].inflight {
			break
		}
		s.run(10 * time.Millisecond)
	}
	before := len(s.probesBy(b))
	a.start(s.config(scnConfig(scnInstance("web", 51, 150))))
	s.run(30 * time.Second)
	a.expect("web", StateMaster)
	b.expect("web", StateBackup)
	ps := s.probesBy(b)
	if len(ps) != before {
		t.Errorf("b made %d attempts after it left master", len(ps)-before)
	}
	left := b.became("web", StateBackup)
	for _, p := range ps {
		if !p.at.Before(left) {
			t.Errorf("attempt at %v, after b left master at %v", p.at.Sub(simT0), left.Sub(simT0))
		}
	}
	if err := ps[len(ps)-1].ctx.Err(); err == nil {
		t.Error("the attempt in flight when b left master was not cancelled")
	}
	if st := b.status("web").Upstreams; len(st) != 0 {
		t.Errorf("b's status shows upstreams as backup: %+v", st)
	}
	if b.n.probesInFlight != 0 {
		t.Errorf("%d attempts counted in flight after their results came", b.n.probesInFlight)
	}
	if b.logs.has("upstream moved") || b.logs.count("upstream has not moved yet") > 1 {
		t.Errorf("a stale result was taken:\n%s", b.logs)
	}
}

// The check never delays the takeover: with an upstream that never answers
// the takeover, the VIP's add and the announcement come at the same
// instants as with the check off, and the first attempt starts only after
// the announcement and the flushed advert. With the check off, an upstream
// that ignores gratuitous ARP keeps the old master's MAC: the check is what
// moves it.
func TestScenarioUpstreamNeverDelaysTakeover(t *testing.T) {
	type run struct {
		became, added, firstAnn time.Time
		cache                   string
		probes                  []simProbe
		advertsBefore           uint64
	}
	do := func(extra string, silent bool) run {
		s := newSimNet(t)
		u := s.addUpstream(scnUpstream, true)
		u.silent = silent
		_, b, takeover := upstreamKill(t, s, extra)
		r := run{advertsBefore: b.inst("web").count.AdvertsSent}
		s.run(3 * time.Second)
		b.expect("web", StateMaster)
		r.became, r.added = b.became("web", StateMaster), b.lastAddrChange(scnVIP, true)
		for _, an := range s.anns {
			if an.node == "b" && !an.at.Before(takeover) {
				r.firstAnn = an.at
				break
			}
		}
		r.cache = u.cache[netip.MustParseAddr(scnVIP)]
		r.probes = s.probesBy(b)
		return r
	}
	off := do("upstreams: []", false)
	on := do("upstreams: ["+scnUpstream+"]", true)
	if !on.became.Equal(off.became) || !on.added.Equal(off.added) || !on.firstAnn.Equal(off.firstAnn) {
		t.Errorf("with the check: master at %v, VIP added %v, announced %v; without: %v, %v, %v",
			on.became.Sub(simT0), on.added.Sub(simT0), on.firstAnn.Sub(simT0), off.became.Sub(simT0), off.added.Sub(simT0), off.firstAnn.Sub(simT0))
	}
	if len(off.probes) != 0 {
		t.Errorf("upstreams: [] made %d attempts", len(off.probes))
	}
	if len(on.probes) == 0 {
		t.Fatal("no attempt with the check on")
	}
	p := on.probes[0]
	if !p.at.After(on.became) || p.announced == 0 || !p.flushed || p.adverts <= on.advertsBefore {
		t.Errorf("first attempt at %v (takeover %v): %d announcements before, adverts flushed %v, adverts %d (before the takeover %d); want it after the announcement and the advert",
			p.at.Sub(simT0), on.became.Sub(simT0), p.announced, p.flushed, p.adverts, on.advertsBefore)
	}
	if off.cache != simMAC(1).String() {
		t.Errorf("without the check the upstream has the VIP at %q, want the old master's %s (it ignores gratuitous ARP)", off.cache, simMAC(1))
	}
	if on.cache != simMAC(2).String() {
		t.Errorf("with the check the upstream has the VIP at %q, want the new master's %s", on.cache, simMAC(2))
	}
}

// Without a default gateway the check is skipped, said once, and status
// shows no upstream.
func TestScenarioUpstreamNoDefaultGateway(t *testing.T) {
	s := newSimNet(t)
	_, b, _ := upstreamKill(t, s)
	s.run(3 * time.Second)
	b.expect("web", StateMaster)
	if ps := s.probesBy(b); len(ps) != 1 {
		t.Errorf("b made %d attempts, want 1 (the gateway look-up)", len(ps))
	}
	if st := b.status("web").Upstreams; len(st) != 0 {
		t.Errorf("status: %+v, want no upstream", st)
	}
	if c := b.logs.count("no default gateway"); c != 1 {
		t.Errorf("%d 'no default gateway' lines, want 1:\n%s", c, b.logs)
	}
}

// With virtual_mac the VIPs live on the macvlan: the check asks from there,
// at the virtual MAC, and does not poll for VIPs on the parent (it did,
// every 100 ms, for as long as the node was master).
func TestScenarioUpstreamWithVirtualMAC(t *testing.T) {
	s := newSimNet(t)
	u := s.addUpstream(scnUpstream, false)
	s.gateway = u.addr
	_, b, _ := upstreamKill(t, s, "virtual_mac: true")
	s.run(2 * time.Second)
	b.expect("web", StateMaster)
	ps := s.probesBy(b)
	if len(ps) == 0 {
		t.Fatal("b made no attempt")
	}
	p := ps[0]
	if p.req.Link != "vrrp4.51" || p.req.MAC.String() != virtualMAC(51, FamilyIPv4).String() || !slices.Equal(p.req.VIPs, []netip.Addr{netip.MustParseAddr(scnVIP)}) {
		t.Errorf("b's attempt: %+v; want from %s on vrrp4.51 at the virtual MAC", p.req, scnVIP)
	}
	wakes := b.wakes
	s.run(5 * time.Second)
	// A master at 100 ms adverts wakes 10 times a second for them.
	if w := b.wakes - wakes; w > 55 {
		t.Errorf("b woke %d times in 5 s as master, want about 50 (one per advert)", w)
	}
}
