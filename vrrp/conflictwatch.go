package vrrp

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vipd/vipd/arp"
)

// The conflict watcher runs conflictDetector off the loop. It costs the
// protocol loop a non-blocking send on a 1-slot channel when something the
// watcher follows changes (conflictKick), one status snapshot after each
// such signal, and one channel receive per change of a VIP's conflicts; the
// ARP sockets, their readers and the probes are its own. Its probe rounds
// ride on the loop's own wake-ups: the loop signals a round on
// conflictTick when one is due and it is awake anyway (probeClock), and
// wakes for one only when nothing else woke it for half a round. Idle, the
// watcher sleeps on one timer set for what is rarer: a MAC's settle time,
// a conflict's clearing, a master's unknown MAC, a socket to reopen. The
// kernel filter keeps from its readers every frame that changes nothing:
// other hosts' ARP, this node's own announcements, the master's known MAC
// answering the probes.

// Conflict detection's timing.
const (
	// conflictProbeRate bounds the probes a node sends: a round of n
	// addresses lasts at least n / conflictProbeRate seconds (longer than
	// the interval with more than interval × rate addresses), in bursts of
	// at most conflictProbeRate probes spread evenly over it.
	//
	// Each probe costs the segment a broadcast and its holder an answer
	// (in the namespace lab, about 30 µs of the prober's CPU with the
	// answer's delivery); a conflict is a slow misconfiguration, so 2 a
	// second suffice: 250 VIPs are each probed every 125 s.
	conflictProbeRate = 2
	// conflictSettle: a MAC heard for a VIP is judged only with the state
	// of at least this long after, so a new master's gratuitous ARP, which
	// may come before its first advert, is not taken for a conflict.
	conflictSettle = 500 * time.Millisecond
	// conflictClearRounds: a conflict clears when its MAC was not heard for
	// this many rounds.
	conflictClearRounds = 3
	// conflictPassiveClear: without probes, a conflict clears when its MAC
	// was not heard for this long.
	conflictPassiveClear = 10 * time.Minute
	// conflictMasterRetry: a master's address whose MAC is unknown is
	// probed again after this long, doubling up to a round.
	conflictMasterRetry = 250 * time.Millisecond
	// conflictReopen: a link whose socket failed or could not be opened is
	// tried again after this long.
	conflictReopen = 2 * time.Second
)

// arpWatch is one link's ARP socket: arp.Watcher on the host.
type arpWatch interface {
	Read() (arp.Seen, error)
	Probe(ip netip.Addr) error
	// SetFilter keeps, in the kernel, only the frames from these sender
	// addresses (all, above arp.MaxFilterAddrs), except those of the
	// known claims.
	SetFilter(addrs []netip.Addr, known []arp.Claim) error
	Close() error
}

// arpWatchOpener is a Dataplane that can hear ARP. A Dataplane without it
// (the in-memory one of the scenario tests) runs without conflict
// detection.
type arpWatchOpener interface {
	OpenARPWatch(link string) (arpWatch, error)
}

// OpenARPWatch opens an ARP socket on the link.
func (d *hostDataplane) OpenARPWatch(link string) (arpWatch, error) {
	return arp.NewWatcher(link)
}

// conflictReport hands the loop a VIP's conflicts as they are now.
type conflictReport struct {
	instance  string
	vip       netip.Addr
	conflicts []VIPConflict
}

type linkFrame struct {
	link string
	s    arp.Seen
}

type watchedLink struct {
	w      arpWatch
	done   chan struct{} // closed when its reader returned
	filter []netip.Addr  // the sender addresses its kernel filter keeps; nil: not set
	known  []arp.Claim   // the claims its kernel filter drops
}

// conflictWatch owns the ARP sockets, their reader goroutines and the
// detector.
type conflictWatch struct {
	log    *slog.Logger
	open   func(link string) (arpWatch, error)
	status func(ctx context.Context) (Status, error)
	report chan<- conflictReport
	now    func() time.Time
	// kick is the loop's signal that the state changed; interval the
	// probe interval in force (0: no probes), read after each signal.
	kick     <-chan struct{}
	interval func() time.Duration
	// tick is the loop's signal that a probe burst is due; setGap tells
	// the loop the time between bursts (0: none).
	tick   <-chan struct{}
	setGap func(time.Duration)

	det     *conflictDetector
	links   map[string]*watchedLink
	frames  chan linkFrame
	lost    chan struct{}     // a reader returned (1 slot)
	openErr map[string]string // link → the open error last logged
	wg      sync.WaitGroup

	// The probe round: each watched address once, in bursts, one per
	// tick of the loop.
	every time.Duration // the interval in force
	round []probeTarget // this round's addresses not yet probed
	// A master's address with an unknown MAC is probed again at
	// masterAt, the gap doubling from conflictMasterRetry.
	masterAt  time.Time
	masterGap time.Duration
	gap       time.Duration // between bursts, this round
	per       int           // probes per burst, this round
	reopenAt  time.Time     // a link to open again; zero: none
	want      map[string]bool

	wakes conflictWakes
}

// conflictWakes counts what woke the watcher (tests and benchmarks).
type conflictWakes struct{ timer, ticks, frames, kicks, snapshots, probes int }

func newConflictWatch(log *slog.Logger, open func(string) (arpWatch, error), status func(context.Context) (Status, error),
	report chan<- conflictReport, kick, tick <-chan struct{}, setGap func(time.Duration), interval func() time.Duration, now func() time.Time) *conflictWatch {
	c := &conflictWatch{
		log: log, open: open, status: status, report: report, kick: kick, tick: tick, setGap: setGap, interval: interval, now: now,
		det:     newConflictDetector(conflictSettle, conflictPassiveClear),
		links:   map[string]*watchedLink{},
		frames:  make(chan linkFrame, 256),
		lost:    make(chan struct{}, 1),
		openErr: map[string]string{},
		want:    map[string]bool{},
	}
	return c
}

// startConflictWatch starts the watcher with the Node's goroutines, if the
// dataplane can hear ARP.
func (n *Node) startConflictWatch(ctx context.Context) {
	o, ok := n.dp.(arpWatchOpener)
	if !ok {
		return
	}
	interval := func() time.Duration { return time.Duration(n.conflictEvery.Load()) }
	setGap := func(d time.Duration) { n.conflictGap.Store(int64(d)) }
	cw := newConflictWatch(n.log, o.OpenARPWatch, n.Status, n.conflictCh, n.conflictKick, n.conflictTick, setGap, interval, time.Now)
	n.wg.Add(1)
	go func() { defer n.wg.Done(); cw.run(ctx) }()
}

// kickConflict tells the conflict watcher that something it follows
// changed (an instance's state or master, the VIPs, a link's MAC, the
// configuration). It never waits: one pending signal covers any number of
// changes, the watcher takes one snapshot for them.
func (n *Node) kickConflict() {
	select {
	case n.conflictKick <- struct{}{}:
	default:
	}
}

// noteConflictState signals the watcher when in's state or the master it
// knows changed since the last signal: called once per step (handle).
func (n *Node) noteConflictState(in *instance) {
	st, m := in.m.State(), in.m.MasterAddr()
	if st == in.cwState && m == in.cwMaster {
		return
	}
	in.cwState, in.cwMaster = st, m
	n.kickConflict()
}

// onConflict stores what the watcher reports, for status and metrics.
func (n *Node) onConflict(r conflictReport) {
	for _, in := range n.insts {
		if in.cfg.Name != r.instance {
			continue
		}
		for i := range in.vs {
			if in.vs[i].prefix.Addr() == r.vip {
				in.vs[i].conflicts = r.conflicts
			}
		}
	}
}

func (c *conflictWatch) run(ctx context.Context) {
	t := time.NewTimer(time.Hour)
	t.Stop()
	var armed time.Time
	defer func() {
		t.Stop()
		for l := range c.links {
			c.closeLink(l)
		}
		c.wg.Wait()
	}()
	if !c.refresh(ctx) {
		return
	}
	for {
		if next := c.next(); !next.Equal(armed) {
			t.Stop()
			armed = next
			if !next.IsZero() {
				t.Reset(max(0, next.Sub(c.now())))
			}
		}
		select {
		case <-ctx.Done():
			return
		case f := <-c.frames:
			c.onFrame(f, c.now())
		case <-c.kick:
			c.wakes.kicks++
			if !c.refresh(ctx) {
				return
			}
		case <-c.lost:
			c.reap(c.now())
		case <-c.tick:
			c.onTick(c.now())
		case <-t.C:
			armed = time.Time{}
			c.wakes.timer++
			if !c.onTimer(ctx, c.now()) {
				return
			}
		}
	}
}

// onTick sends the probe burst the loop found due.
func (c *conflictWatch) onTick(now time.Time) {
	c.wakes.ticks++
	if c.every > 0 {
		c.burst(now)
	}
}

// onFrame records a frame heard on a link.
func (c *conflictWatch) onFrame(f linkFrame, now time.Time) {
	c.wakes.frames++
	c.det.observe(f.link, f.s, now)
	if !c.det.learned {
		return
	}
	if !c.masterAt.IsZero() && len(c.det.unknownMasters()) == 0 {
		c.masterAt = time.Time{} // the masters answered: no retry
	}
	// A master's MAC learned: its answers need not wake the watcher again.
	if wl := c.links[f.link]; wl != nil {
		c.setFilter(f.link, wl)
	}
}

// next is when the watcher must wake next; zero: only for a frame, a
// signal or a lost reader.
func (c *conflictWatch) next() time.Time {
	var at time.Time
	for _, t := range []time.Time{c.det.due(), c.masterAt, c.reopenAt} {
		if !t.IsZero() && (at.IsZero() || t.Before(at)) {
			at = t
		}
	}
	return at
}

// onTimer does what is due at now. A signal that is pending is taken
// first, so a MAC is never judged against a state the loop has already
// changed.
func (c *conflictWatch) onTimer(ctx context.Context, now time.Time) bool {
	select {
	case <-c.kick:
		c.wakes.kicks++
		if !c.refresh(ctx) {
			return false
		}
		now = c.now()
	default:
	}
	if !c.reopenAt.IsZero() && !now.Before(c.reopenAt) {
		c.reopenAt = time.Time{}
		c.syncLinks(ctx)
	}
	if !c.masterAt.IsZero() && !now.Before(c.masterAt) {
		c.probeMasters(now)
	}
	if due := c.det.due(); !due.IsZero() && !now.Before(due) {
		return c.judge(ctx, now, nil)
	}
	return true
}

// refresh takes a snapshot of the loop's state, brings the detector, the
// sockets and their filters to it, judges and reports.
func (c *conflictWatch) refresh(ctx context.Context) bool {
	s, err := c.status(ctx)
	if err != nil {
		return ctx.Err() == nil // the loop stopped: the context ends next
	}
	c.wakes.snapshots++
	now := c.now()
	ts, own := conflictTargets(s)
	c.det.set(ts, own)
	clear(c.want)
	for _, t := range ts {
		c.want[t.link] = true
	}
	c.syncLinks(ctx)
	c.setInterval(now)
	c.masterAt, c.masterGap = time.Time{}, 0
	c.probeMasters(now)
	return c.judge(ctx, now, &s)
}

// setInterval follows the probe interval in force: a changed one starts a
// round now.
func (c *conflictWatch) setInterval(now time.Time) {
	every := c.interval()
	if every == c.every {
		return
	}
	c.every, c.round = every, nil
	if every == 0 {
		c.gap = 0
		c.setGap(0)
		c.det.clearAfter = conflictPassiveClear
		return
	}
	c.burst(now)
}

// burst sends the round's next probes, starting a round when the last one
// is done: each watched address once a round, in bursts of at most
// conflictProbeRate spread evenly over the round. A round lasts the
// interval, or n / conflictProbeRate seconds if that is longer: one burst
// a round for up to conflictProbeRate addresses. The loop times the
// bursts (probeClock): a gap apart, up to half a gap later so that a burst
// rides on a wake-up the loop has anyway; a conflict clears only after
// conflictClearRounds of the longest such rounds.
func (c *conflictWatch) burst(now time.Time) {
	if len(c.round) == 0 {
		c.round = c.det.probes()
		bursts := max(1, (len(c.round)+conflictProbeRate-1)/conflictProbeRate)
		roundLen := max(c.every, time.Duration(len(c.round))*time.Second/conflictProbeRate)
		c.det.clearAfter = conflictClearRounds * (roundLen + roundLen/2)
		if gap := roundLen / time.Duration(bursts); gap != c.gap {
			c.gap = gap
			c.setGap(gap)
		}
		c.per = (len(c.round) + bursts - 1) / bursts
	}
	k := min(c.per, len(c.round))
	c.probe(c.round[:k])
	c.round = c.round[k:]
}

// probeClock is the loop's side of the probe schedule: it signals a burst
// when one is due and the loop is awake anyway, and names the time by
// which the loop must wake for one if nothing else woke it.
type probeClock struct{ last time.Time }

// due reports whether a burst is due at now, with gap between bursts (0:
// no probes), and if so counts it as sent. A burst an eighth of a gap
// early is due: a master wakes for each advert, and a round of 2 s at 1 s
// adverts should not wait for the third.
func (p *probeClock) due(now time.Time, gap time.Duration) bool {
	switch {
	case gap <= 0:
		p.last = time.Time{}
		return false
	case p.last.IsZero():
		p.last = now // the watcher sent the first burst itself
		return false
	case now.Sub(p.last) < gap-gap/8:
		return false
	}
	p.last = now
	return true
}

// late is when the loop wakes for the next burst if nothing else wakes
// it: half a gap after it is due. Zero: no probes.
func (p *probeClock) late(gap time.Duration) time.Time {
	if gap <= 0 || p.last.IsZero() {
		return time.Time{}
	}
	return p.last.Add(gap + gap/2)
}

// tickConflict signals the conflict watcher when a probe burst is due.
func (n *Node) tickConflict() {
	gap := time.Duration(n.conflictGap.Load())
	if gap == 0 && n.probes.last.IsZero() {
		return
	}
	if n.probes.due(n.now(), gap) {
		select {
		case n.conflictTick <- struct{}{}:
		default:
		}
		n.rescan() // the deadline for this burst is past
		return
	}
	n.noteConflictDeadline()
}

// noteConflictDeadline lowers next to when the loop must wake for the next
// probe burst.
func (n *Node) noteConflictDeadline() {
	if l := n.probes.late(time.Duration(n.conflictGap.Load())); !l.IsZero() && (n.next.IsZero() || l.Before(n.next)) {
		n.next = l
	}
}

// probeMasters probes the masters' addresses whose MAC is unknown, again
// and again with a doubling gap until a round would do it anyway.
func (c *conflictWatch) probeMasters(now time.Time) {
	c.masterAt = time.Time{}
	if c.every == 0 {
		return
	}
	ps := c.det.unknownMasters()
	if len(ps) == 0 {
		return
	}
	c.probe(ps)
	c.masterGap = max(conflictMasterRetry, 2*c.masterGap)
	if c.masterGap < c.every {
		c.masterAt = now.Add(c.masterGap)
	}
}

// judge evaluates the VIPs at now and reports what changed; with s, a
// snapshot taken just before, also what the loop's copy lacks (a reload
// made a VIP's state anew). It returns false when ctx ended.
func (c *conflictWatch) judge(ctx context.Context, now time.Time, s *Status) bool {
	type instVIP struct {
		instance string
		vip      netip.Addr
	}
	sent := map[instVIP]bool{}
	for _, ch := range c.det.evaluate(now) {
		c.logChange(ch)
		sent[instVIP{ch.instance, ch.vip}] = true
		if !c.send(ctx, conflictReport{ch.instance, ch.vip, ch.conflicts}) {
			return false
		}
	}
	if s == nil {
		return true
	}
	for _, in := range s.Instances {
		for _, v := range in.VIPs {
			w := c.det.vips[vipKey{v.Interface, v.Address.Addr()}]
			if w == nil || sent[instVIP{in.Name, v.Address.Addr()}] {
				continue
			}
			if cs := w.conflicts(); !sameConflicts(cs, v.Conflicts) {
				if !c.send(ctx, conflictReport{in.Name, v.Address.Addr(), cs}) {
					return false
				}
			}
		}
	}
	return true
}

// syncLinks opens the sockets of the links with watched VIPs, closes the
// others and those whose reader returned, and sets each one's filter to
// the addresses watched there. A link that cannot be opened is tried again
// after conflictReopen.
func (c *conflictWatch) syncLinks(ctx context.Context) {
	for l, wl := range c.links {
		select {
		case <-wl.done: // its socket failed (the link went away): open it again
			c.closeLink(l)
			continue
		default:
		}
		if !c.want[l] {
			c.closeLink(l)
		}
	}
	for l := range c.want {
		if c.links[l] == nil {
			c.openLink(ctx, l)
		}
		if c.links[l] == nil {
			c.reopenAt = c.now().Add(conflictReopen)
			continue
		}
		c.setFilter(l, c.links[l])
	}
}

// setFilter gives a link's socket the kernel filter for the addresses
// watched there, without the claims already known, when they changed. On
// failure the socket keeps the broad filter (it hears more, misses
// nothing).
func (c *conflictWatch) setFilter(l string, wl *watchedLink) {
	as, known := c.det.watched(l), c.det.known(l)
	if wl.filter != nil && slices.Equal(as, wl.filter) && slices.Equal(known, wl.known) {
		return
	}
	if err := wl.w.SetFilter(as, known); err != nil {
		c.log.Warn("conflict detection: cannot narrow the ARP filter; hearing every ARP frame on the interface", "interface", l, "error", err)
		if err := wl.w.SetFilter(nil, nil); err != nil {
			c.log.Warn("conflict detection: cannot set the broad ARP filter", "interface", l, "error", err)
		}
	}
	wl.filter, wl.known = as, known
}

// reap notes readers that returned: their links are opened again after
// conflictReopen.
func (c *conflictWatch) reap(now time.Time) {
	for _, wl := range c.links {
		select {
		case <-wl.done:
			if c.reopenAt.IsZero() {
				c.reopenAt = now.Add(conflictReopen)
			}
		default:
		}
	}
}

// targets is what status says each VIP should be answered by.
func conflictTargets(s Status) ([]conflictTarget, map[string]net.HardwareAddr) {
	own := map[string]net.HardwareAddr{}
	for _, i := range s.Interfaces {
		own[i.Name] = i.MAC
	}
	var ts []conflictTarget
	for _, in := range s.Instances {
		for _, v := range in.VIPs {
			if !v.Address.Addr().Is4() {
				continue
			}
			// A VIP on the instance's macvlan (virtual_mac) is heard on
			// the parent: the macvlan is down on a backup, and every
			// frame for it crosses the parent.
			link := v.Interface
			if in.VirtualMACLink != "" && link == in.VirtualMACLink {
				link = in.Interface
			}
			t := conflictTarget{instance: in.Name, vip: v.Address.Addr(), link: link, master: in.State == StateMaster, vrid: in.VRID, six: in.Family == FamilyIPv6}
			if in.State == StateBackup && link == in.Interface && in.MasterAddr.IsValid() {
				t.masterIP = in.MasterAddr
			}
			ts = append(ts, t)
		}
	}
	return ts, own
}

func sameConflicts(a, b []VIPConflict) bool {
	return slices.EqualFunc(a, b, func(x, y VIPConflict) bool { return x.MAC.String() == y.MAC.String() && x.Since.Equal(y.Since) })
}

func (c *conflictWatch) send(ctx context.Context, r conflictReport) bool {
	select {
	case c.report <- r:
		return true
	case <-ctx.Done():
		return false
	}
}

func macList(ms []net.HardwareAddr) string {
	ss := make([]string, len(ms))
	for i, m := range ms {
		ss[i] = m.String()
	}
	return strings.Join(ss, ",")
}

// logChange logs a VIP's conflicts once per change: appeared, changed
// (one MAC gone and another come), or cleared.
func (c *conflictWatch) logChange(ch conflictChange) {
	attrs := []any{"instance", ch.instance, "vip", ch.vip, "interface", ch.link}
	switch {
	case len(ch.appeared) > 0 && len(ch.cleared) > 0:
		c.log.Warn("address conflict: another MAC now answers for the VIP; vipd does not fight over it, find the host and remove its copy",
			append(attrs, "mac", macList(ch.appeared), "was", macList(ch.cleared), "conflicting", len(ch.conflicts))...)
	case len(ch.appeared) > 0:
		c.log.Warn("address conflict: a host that is neither this node nor the master answers for the VIP; vipd does not fight over it, find the host and remove its copy",
			append(attrs, "mac", macList(ch.appeared), "conflicting", len(ch.conflicts))...)
	default:
		c.log.Info("address conflict cleared: the MAC was not heard for the VIP again",
			append(attrs, "mac", macList(ch.cleared), "conflicting", len(ch.conflicts))...)
	}
}

func (c *conflictWatch) openLink(ctx context.Context, l string) {
	w, err := c.open(l)
	if err != nil {
		if c.openErr[l] != err.Error() {
			c.openErr[l] = err.Error()
			c.log.Warn("conflict detection: cannot hear ARP on the interface; retrying", "interface", l, "error", err, "every", conflictReopen.String())
		}
		return
	}
	delete(c.openErr, l)
	wl := &watchedLink{w: w, done: make(chan struct{})}
	c.links[l] = wl
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer func() {
			close(wl.done)
			select {
			case c.lost <- struct{}{}:
			default:
			}
		}()
		for {
			s, err := w.Read()
			if err != nil {
				return // closed, or the link is gone: apply reopens it
			}
			select {
			case c.frames <- linkFrame{l, s}:
			case <-ctx.Done():
				return
			}
		}
	}()
}

// closeLink closes a link's socket and waits for its reader.
func (c *conflictWatch) closeLink(l string) {
	wl := c.links[l]
	if wl == nil {
		return
	}
	delete(c.links, l)
	wl.w.Close()
	for {
		select {
		case <-wl.done:
			return
		case <-c.frames: // the reader may be blocked handing over a frame
		}
	}
}

func (c *conflictWatch) probe(ps []probeTarget) {
	for _, p := range ps {
		wl := c.links[p.link]
		if wl == nil {
			continue
		}
		// A failed probe is seen again next round; the socket's errors
		// surface through its reader.
		_ = wl.w.Probe(p.ip)
		c.wakes.probes++
	}
}
