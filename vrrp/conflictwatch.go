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
// protocol loop one status snapshot per probe round (and one per 250 ms
// while a MAC heard for a VIP waits to be judged) and one channel receive
// per change of a VIP's conflicts; the ARP sockets, their readers and the
// probes are its own.

// Conflict detection's timing.
const (
	conflictTick = 250 * time.Millisecond
	// conflictRound is the shortest probe round: every watched VIP (and,
	// from a backup, the master's address) is probed once a round.
	conflictRound = 2 * time.Second
	// conflictProbeGap spreads the probes: a round lasts at least this
	// long per probe, so that many VIPs do not flood the segment.
	conflictProbeGap = 20 * time.Millisecond
	// conflictSettle: a MAC heard for a VIP is judged only with the state
	// of at least this long after, so a new master's gratuitous ARP, which
	// may come before its first advert, is not taken for a conflict.
	conflictSettle = 500 * time.Millisecond
	// conflictClearRounds: a conflict clears when its MAC was not heard for
	// this many rounds.
	conflictClearRounds = 3
)

// arpWatch is one link's ARP socket: arp.Watcher on the host.
type arpWatch interface {
	Read() (arp.Seen, error)
	Probe(ip netip.Addr) error
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
	w    arpWatch
	done chan struct{} // closed when its reader returned
}

// conflictWatch owns the ARP sockets, their reader goroutines and the
// detector.
type conflictWatch struct {
	log    *slog.Logger
	open   func(link string) (arpWatch, error)
	status func(ctx context.Context) (Status, error)
	report chan<- conflictReport
	now    func() time.Time
	tick   time.Duration
	round  time.Duration // shortest round; see conflictRound

	det     *conflictDetector
	links   map[string]*watchedLink
	frames  chan linkFrame
	openErr map[string]string // link → the open error last logged
	wg      sync.WaitGroup
}

func newConflictWatch(log *slog.Logger, open func(string) (arpWatch, error), status func(context.Context) (Status, error),
	report chan<- conflictReport, now func() time.Time, tick, round time.Duration) *conflictWatch {
	return &conflictWatch{
		log: log, open: open, status: status, report: report, now: now, tick: tick, round: round,
		det:     newConflictDetector(conflictSettle, conflictClearRounds*round),
		links:   map[string]*watchedLink{},
		frames:  make(chan linkFrame, 256),
		openErr: map[string]string{},
	}
}

// startConflictWatch starts the watcher with the Node's goroutines, if the
// dataplane can hear ARP.
func (n *Node) startConflictWatch(ctx context.Context) {
	o, ok := n.dp.(arpWatchOpener)
	if !ok {
		return
	}
	cw := newConflictWatch(n.log, o.OpenARPWatch, n.Status, n.conflictCh, time.Now, conflictTick, conflictRound)
	n.wg.Add(1)
	go func() { defer n.wg.Done(); cw.run(ctx) }()
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
	t := time.NewTicker(c.tick)
	defer func() {
		t.Stop()
		for l := range c.links {
			c.closeLink(l)
		}
		c.wg.Wait()
	}()
	var next time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case f := <-c.frames:
			c.det.observe(f.link, f.s, c.now())
		case <-t.C:
			now := c.now()
			round := !now.Before(next)
			if round || c.det.pending(now) {
				s, err := c.status(ctx)
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					continue
				}
				if !c.apply(ctx, s, c.now()) {
					return
				}
			}
			if round {
				ps := c.det.probes()
				c.probe(ps)
				next = now.Add(max(c.round, time.Duration(len(ps))*conflictProbeGap))
				c.det.clearAfter = conflictClearRounds * next.Sub(now)
			} else {
				c.probe(c.det.unknownMasters())
			}
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
			t := conflictTarget{instance: in.Name, vip: v.Address.Addr(), link: v.Interface, master: in.State == StateMaster}
			if in.State == StateBackup && v.Interface == in.Interface && in.MasterAddr.IsValid() {
				t.masterIP = in.MasterAddr
			}
			ts = append(ts, t)
		}
	}
	return ts, own
}

// apply brings the detector and the sockets to status s, taken just before
// now, judges the VIPs and reports what changed to the loop (and whatever
// the loop's copy lacks, after a reload). It returns false when ctx ended.
func (c *conflictWatch) apply(ctx context.Context, s Status, now time.Time) bool {
	ts, own := conflictTargets(s)
	c.det.set(ts, own)
	need := map[string]bool{}
	for _, t := range ts {
		need[t.link] = true
	}
	for l, wl := range c.links {
		select {
		case <-wl.done: // its socket failed (the link went away): open it again
			c.closeLink(l)
			continue
		default:
		}
		if !need[l] {
			c.closeLink(l)
		}
	}
	for l := range need {
		if c.links[l] == nil {
			c.openLink(ctx, l)
		}
	}
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
	// The loop's copy differs (a reload made the VIP's state anew):
	// hand it over again.
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
			c.log.Warn("conflict detection: cannot hear ARP on the interface; retrying each round", "interface", l, "error", err)
		}
		return
	}
	delete(c.openErr, l)
	wl := &watchedLink{w: w, done: make(chan struct{})}
	c.links[l] = wl
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer close(wl.done)
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
	}
}
