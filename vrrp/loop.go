package vrrp

import (
	"context"
	"net/netip"
	"time"
)

// Run runs the protocol until ctx is cancelled, then resigns every master
// (priority-0 advert), hands its VIPs over (make before break) and returns
// once all of its goroutines have finished. ready, if not nil, is called
// once the instances have started.
func (n *Node) Run(ctx context.Context, ready func()) error {
	timer, err := newWakeTimer()
	if err != nil {
		return err
	}
	n.timer = timer
	defer timer.Stop()
	inner, cancel := context.WithCancel(context.Background())
	n.ctx = inner
	defer func() {
		close(n.loopDone)
		n.subs.mu.Lock()
		n.stopped = true
		n.subs.mu.Unlock()
		n.subs.closeAll()
		cancel()
		n.closeIfaces()
		n.wg.Wait()
		n.teardownVMACs()
		n.dp.Close()
		n.awaitHooks(hookDrainMax)
	}()
	n.wg.Add(3)
	go func() { defer n.wg.Done(); n.maint.run(inner) }()
	go func() { defer n.wg.Done(); n.dp.Watch(inner, n.addrCh, n.linkCh) }()
	go func() { defer n.wg.Done(); n.dp.WatchRoutes(inner, n.routeCh) }()
	n.startConflictWatch(inner)
	for _, ifc := range n.ifaces {
		n.rcv.attach(n, ifc)
	}
	n.start(n.now())
	if ready != nil {
		ready()
	}

	rx := n.rcv.batches()
	n.rescan()
	for {
		n.tickConflict()
		n.syncHeld()
		n.flush()
		n.armTimer()
		select {
		case <-ctx.Done():
			n.beginStop(n.now())
			n.awaitSuccessors()
			n.endStop()
			return nil
		case <-n.timer.C:
			n.armed = time.Time{}
			n.onTimer(n.now())
			n.rescan()
		case rb := <-rx:
			n.handleBatch(rb)
			if len(n.insts) <= rescanAfterBatch {
				n.rescan()
			}
		case ch := <-n.addrCh:
			n.onAddrChange(ch, n.now())
		case lc := <-n.linkCh:
			n.onLinkChange(lc, n.now())
		case <-n.routeCh:
			n.checkRoutes(n.now())
		case reply := <-n.statusQ:
			reply <- n.status()
		case req := <-n.reloadQ:
			req.done <- n.reload(req.cfg, n.now())
			n.rescan()
		case r := <-n.trackCh:
			n.onTrackResult(r, n.now())
		case req := <-n.maintQ:
			req.done <- n.setMaintenance(req, n.now())
		case r := <-n.upCh:
			n.onProbeResult(r, n.now())
		case r := <-n.healCh:
			n.onSenderMAC(r)
		case r := <-n.conflictCh:
			n.onConflict(r)
		}
	}
}

// start starts every instance: machines, hooks, trackers, sync groups and
// holds, then each machine in backup (or fault without carrier).
func (n *Node) start(now time.Time) {
	n.started, n.reloadOK, n.reloadTime = now, true, now
	n.freezeGroups()
	defer n.settleGroups()
	for _, in := range n.insts {
		// The primary address is known only now that setup is done.
		in.m = NewMachine(in.machineConfig())
		in.notify = n.newNotifierFor(in.cfg)
		n.startTrackers(in)
	}
	n.buildGroups()
	n.updateHolds(n.insts, now)
	n.staticOn = true
	n.reconcileStatic(true, reconcileTransition, now)
	for _, in := range n.insts {
		n.startInstance(in, now)
	}
}

func (n *Node) startInstance(in *instance, now time.Time) {
	switch {
	case !in.ifc.up:
		n.step(in, Event{Kind: EventLinkDown}, now)
	case !in.source().IsValid():
		n.step(in, Event{Kind: EventLinkDown, Reason: in.noSourceReason()}, now)
	default:
		n.step(in, Event{Kind: EventStartup}, now)
	}
	n.reevaluate(in, now)
}

// beginStop stops every instance: a master resigns and hands its VIPs
// over (Machine.HandingOver) until a successor advertises.
func (n *Node) beginStop(now time.Time) {
	n.freezeGroups()
	for _, in := range n.insts {
		in.stopTrackers()
		n.stepForced(in, Event{Kind: EventShutdown, HandOver: true}, now)
	}
	n.settleGroups() // every group stopped
	n.flush()
	n.rescan()
}

// handingOver reports whether an instance still holds VIPs for a successor.
func (n *Node) handingOver() bool {
	for _, in := range n.insts {
		if in.m.HandingOver() {
			return true
		}
	}
	return false
}

// awaitSuccessors finishes a shutdown: make before break. Until every
// master that resigned has seen its successor advertise, or its hand-over
// timed out (Machine.shutdown), the loop goes on receiving, and nothing
// else.
func (n *Node) awaitSuccessors() {
	rx := n.rcv.batches()
	for n.handingOver() {
		n.flush()
		n.armTimer()
		select {
		case <-n.timer.C:
			n.armed = time.Time{}
			n.onTimer(n.now())
			n.rescan()
		case rb := <-rx:
			n.handleBatch(rb)
		}
	}
}

// endStop retires the hooks once the protocol work is done.
func (n *Node) endStop() {
	// The instances' routes went with their VIPs; the static ones last.
	n.staticOn = false
	n.reconcileStatic(false, reconcileTransition, n.now())
	for _, in := range n.insts {
		n.retireNotifier(in.notify)
	}
	for _, g := range n.groups {
		n.retireNotifier(g.notify)
	}
}

// The loop's single timer is armed for next, the earliest deadline of all
// instances. A step can only bring a deadline earlier than next by way of
// noteDeadline; a deadline that moves later (every advert a backup hears
// does that) leaves next early, which costs one wake-up that rescans all
// instances. So the common case, a burst of adverts, costs O(1) per advert
// rather than a scan of every instance after every batch.

// noteDeadline lowers next to in's deadline if that is earlier.
func (n *Node) noteDeadline(in *instance) {
	if d := in.deadline(); !d.IsZero() && (n.next.IsZero() || d.Before(n.next)) {
		n.next = d
	}
}

// rescan computes next exactly.
func (n *Node) rescan() {
	n.next = time.Time{}
	for _, in := range n.insts {
		n.noteDeadline(in)
	}
	n.noteStaticDeadline()
	n.noteConflictDeadline()
}

// rescanAfterBatch: a node with at most this many instances rescans its
// deadlines after each batch of datagrams, which costs less than the
// timer's wake-up that a deadline left early would cost later (each advert
// a backup hears moves its deadline later).
const rescanAfterBatch = 32

// armTimer sets the timer for next, if it is not already set for it. A
// timer set for a deadline that has since moved later, and still at least
// half the time to it away, is left as it is: the next advert will come
// before it fires and move the deadline again (a Master_Down_Interval is
// more than three advert intervals), and if none comes, the early wake-up
// rescans and sets it then. So a backup sets its timer every other advert,
// not on every one.
func (n *Node) armTimer() {
	if n.next.Equal(n.armed) && !n.armed.IsZero() {
		return
	}
	now := n.now()
	if !n.armed.IsZero() && !n.next.IsZero() && n.armed.Before(n.next) && n.armed.Sub(now) >= n.next.Sub(now)/2 {
		return
	}
	n.armed = n.next
	var err error
	if n.next.IsZero() {
		err = n.timer.Disarm()
	} else {
		err = n.timer.Set(n.next.Sub(now))
	}
	if err != nil {
		n.log.Error("setting the protocol timer failed", "err", err)
	}
}

// handleBatch processes one batch of received datagrams.
func (n *Node) handleBatch(rb rxBatch) {
	n.takeHeld()
	n.handleDatagrams(rb.ifc, rb.b, rb.six)
	rb.free <- rb.b
}

func (n *Node) handleDatagrams(ifc *iface, b *RecvBatch, six bool) {
	now := n.now()
	if six {
		for i := 0; i < b.N; i++ {
			n.onDatagram6(ifc, b.Datagram(i), b.Source(i), b.Control(i), b.Received(i, now))
		}
		return
	}
	for i := 0; i < b.N; i++ {
		d := b.Datagram(i)
		if ifc.seenRecently(b.Stamp(i), datagramSource(d)) {
			continue // also held back, and handled then
		}
		n.onDatagram(ifc, d, b.Received(i, now))
	}
}

// datagramSource is an IPv4 datagram's source address (invalid when it is
// too short).
func datagramSource(d []byte) netip.Addr {
	if len(d) < 20 {
		return netip.Addr{}
	}
	return netip.AddrFrom4([4]byte(d[12:16]))
}

// advertSlack lets a master's advert go out this much early when the loop
// is awake anyway, so that instances whose timers are a hair apart share
// one wake-up and one sendmmsg instead of one each.
const advertSlack = time.Millisecond

// takeoverLead is how long before a backup's Master_Down timer expires the
// loop wakes for it. The timer's wake-up (timerfd, the poller, a goroutine,
// the loop) comes 0.1 to 0.5 ms late on an idle machine, more on a busy
// one: clients would wait that long for the new master. So the loop wakes
// this much early and waits out the rest on the CPU (awaitTakeover): a
// takeover costs at most this much CPU time, and starts at the deadline.
const takeoverLead = time.Millisecond

// awaitTakeover waits, on the CPU, until the earliest Master_Down timer of
// a backup that may take over and expires within takeoverLead of now, and
// returns the time then; with none due it returns now at once. The
// receivers go on meanwhile on another CPU, if there is one; either way
// onTimer drains the receive path before the takeover, so an advert that
// arrived before the deadline still counts, at its kernel receive time.
func (n *Node) awaitTakeover(now time.Time) time.Time {
	var due time.Time
	for _, in := range n.insts {
		if !in.mayTakeOver() {
			continue
		}
		if d := in.m.Deadline(); now.Before(d) && d.Sub(now) <= takeoverLead && (due.IsZero() || d.Before(due)) {
			due = d
		}
	}
	if due.IsZero() {
		return now
	}
	if n.clk == nil {
		return hostClock{}.SpinUntil(due)
	}
	return n.clk.SpinUntil(due)
}

func (n *Node) onTimer(now time.Time) {
	// The adverts held back first: those of a live master move its
	// backup's deadline, and the backup neither spins nor takes over.
	n.takeHeld()
	now = n.awaitTakeover(now)
	drained := false
	for _, in := range n.insts {
		if in.m.State() == StateMaster {
			n.masterTimers(in, now)
		} else if d := in.m.Deadline(); !d.IsZero() && !now.Before(d) {
			if !drained && n.rcv != nil {
				// A backup about to take over: an advert that arrived
				// before the deadline, and is on its way through the
				// receive path, must count first.
				n.rcv.drain(n)
				drained = true
			}
			if d = in.m.Deadline(); !d.IsZero() && !now.Before(d) {
				n.step(in, Event{Kind: EventTimer}, now)
			}
		}
		if !in.retryAt.IsZero() && in.retryAt.Sub(now) <= advertSlack {
			n.retryVIPs(in, now)
		}
		if d := in.up.next(); !d.IsZero() && !d.After(now) {
			n.upstreamTimers(in, now)
		}
	}
	if n.staticOn && !n.static.retryAt.IsZero() && n.static.retryAt.Sub(now) <= advertSlack {
		n.reconcileStatic(true, reconcileRetry, now)
	}
}

// masterTimers steps a master through its timers (adverts, announcement
// repeats) that are due, or due within advertSlack: those go out now, at
// their own time as far as the machine is concerned.
func (n *Node) masterTimers(in *instance, now time.Time) {
	for range 3 { // an advert and an announcement at most; bounded anyway
		d := in.m.Deadline()
		if a := in.m.AnnounceDue(); !a.IsZero() && (d.IsZero() || a.Before(d)) {
			d = a
		}
		if d.IsZero() || d.Sub(now) > advertSlack {
			return
		}
		if now.After(d) {
			d = now
		}
		n.step(in, Event{Kind: EventTimer}, d)
		if in.m.State() != StateMaster {
			return
		}
	}
}
