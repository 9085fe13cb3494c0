package vrrp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/vipd/vipd/arp"
	"github.com/vipd/vipd/config"
	"github.com/vipd/vipd/vip"
)

// iface is one interface with its shared socket and the instances on it.
// Owned by the Node's loop goroutine.
type iface struct {
	name    string
	index   int
	primary netip.Addr
	up      bool
	mac     net.HardwareAddr // the source of adverts and gratuitous ARP
	conn    *Conn
	ann     *arp.Announcer
	byVRID  [256]*instance
	insts   []*instance

	unattributed [numDropReasons]uint64 // drops for no configured VRID
	dropLog      [numDropReasons]rateLog
	sendLog      rateLog

	direct  *RecvBatch // for the loop's own reads (drainRx), made on first use
	readLog rateLog
}

// rateLog lets one log line through per period and counts the rest.
type rateLog struct {
	last       time.Time
	suppressed uint64
}

func (r *rateLog) allow(now time.Time, period time.Duration) (bool, uint64) {
	if !r.last.IsZero() && now.Sub(r.last) < period {
		r.suppressed++
		return false, 0
	}
	s := r.suppressed
	r.last, r.suppressed = now, 0
	return true, s
}

// rxBatch is one batch of datagrams from an interface's reader; the loop
// hands the buffer back on free when it is done with it.
type rxBatch struct {
	ifc  *iface
	b    *RecvBatch
	free chan *RecvBatch
}

type linkChange struct {
	name  string
	index int
	up    bool
	mac   net.HardwareAddr // the link's hardware address now
}

// addrOps is what the Node needs of vip.Manager, an interface so that a
// test can make an add fail or count the dumps.
type addrOps interface {
	Add(index int, p netip.Prefix) error
	Remove(index int, p netip.Prefix) error
	List(index int) ([]vip.Addr, error)
	Has(index int, a netip.Addr) (bool, error)
	Close()
}

// Node runs every configured instance: one loop goroutine owns all protocol
// state; one reader goroutine per interface feeds it datagrams; netlink
// watchers feed it address and link changes.
type Node struct {
	log    *slog.Logger
	cfg    *config.Config
	addrs  addrOps
	ifaces []*iface
	insts  []*instance

	// handingOver is set while shutting down: a resigning master keeps
	// its VIPs until a successor advertises (awaitSuccessors).
	handingOver bool

	rx      chan rxBatch
	addrCh  chan vip.Change
	linkCh  chan linkChange
	statusQ chan chan Status
	reloadQ chan reloadReq
	trackCh chan TrackResult
	maintQ  chan maintReq
	wg      sync.WaitGroup
	rxAd    Advert // parse target, reused
	ctx     context.Context
	subs    subscribers
	stopped bool // guarded by subs.mu
	// snap lets concurrent Status calls share one snapshot.
	snap statusShare

	next  time.Time // earliest deadline of any instance (see noteDeadline)
	timer *wakeTimer
	armed time.Time // what the loop's timer is set for
	// loopDone is closed when Run's loop has exited, or by Abort.
	loopDone chan struct{}
	// retired are notifiers the loop stopped without waiting (reload,
	// shutdown) that may still be running their queued hooks; Run waits
	// for them, bounded, once the protocol work is done.
	retired []*notifier
	// maint saves the maintenance state off the loop; its goroutine runs
	// with Run.
	maint *maintWriter

	started      time.Time
	reloadOK     bool
	reloadTime   time.Time
	reloadErrors uint64
}

// NewNode checks the configuration against the host and sets everything up:
// it resolves each interface and its primary address, refuses VIPs that are
// the interface's own addresses, removes configured VIPs that a crashed run
// left behind, and opens the sockets. On any error it undoes what it did and
// returns the error: vipd never runs half-configured.
func NewNode(cfg *config.Config, log *slog.Logger) (*Node, error) {
	n := &Node{
		log:     log,
		cfg:     cfg,
		rx:      make(chan rxBatch, 16),
		addrCh:  make(chan vip.Change, 64),
		linkCh:  make(chan linkChange, 16),
		statusQ: make(chan chan Status),
		reloadQ: make(chan reloadReq),
		trackCh: make(chan TrackResult, 64),
		maintQ:  make(chan maintReq),

		loopDone: make(chan struct{}),
	}
	n.maint = newMaintWriter(log)
	addrs, err := vip.NewManager()
	if err != nil {
		return nil, err
	}
	n.addrs = addrs
	if err := n.setup(); err != nil {
		n.closeIfaces()
		n.addrs.Close()
		return nil, err
	}
	if err := n.loadMaintenance(); err != nil {
		n.closeIfaces()
		n.addrs.Close()
		return nil, err
	}
	return n, nil
}

func (n *Node) where(c config.Instance) string {
	return fmt.Sprintf("instance %s (%s:%d)", c.Name, n.cfg.File, c.Line)
}

func (n *Node) setup() error {
	byName := map[string]*iface{}
	var errs []error
	for _, c := range n.cfg.Instances {
		ifc := byName[c.Interface]
		if ifc == nil {
			ifi, err := net.InterfaceByName(c.Interface)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: interface %s: %w", n.where(c), c.Interface, err))
				continue
			}
			ifc = &iface{name: c.Interface, index: ifi.Index, up: linkUp(ifi.Flags), mac: ifi.HardwareAddr}
			byName[c.Interface] = ifc
			n.ifaces = append(n.ifaces, ifc)
		}
		in := newInstance(c, ifc)
		ifc.byVRID[c.VRID] = in
		ifc.insts = append(ifc.insts, in)
		n.insts = append(n.insts, in)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	// Check every interface before removing anything: a refused VIP stops
	// vipd with the host as it found it.
	stale := map[*iface][]staleVIP{}
	for _, ifc := range n.ifaces {
		s, err := n.checkVIPs(ifc)
		if err != nil {
			errs = append(errs, err)
		}
		stale[ifc] = s
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	for _, ifc := range n.ifaces {
		if err := n.prepareIface(ifc, stale[ifc]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func linkUp(f net.Flags) bool { return f&net.FlagUp != 0 && f&net.FlagRunning != 0 }

// checkVIPs checks the VIPs against the interface's addresses. It returns
// the stale ones, left marked as vipd's by a run that did not stop cleanly,
// and refuses a VIP that is one of the interface's own addresses: present
// with another prefix length, or present without vipd's mark (the host's
// or another program's address; vipd never removes what it did not add).
func (n *Node) checkVIPs(ifc *iface) ([]staleVIP, error) {
	as, err := n.addrs.List(ifc.index)
	if err != nil {
		return nil, err
	}
	var (
		stale []staleVIP
		errs  []error
	)
	for _, in := range ifc.insts {
		for _, v := range in.cfg.VIPs {
			for _, a := range as {
				if a.Prefix.Addr() != v.Address.Addr() {
					continue
				}
				switch {
				case a.Prefix.Bits() != v.Address.Bits():
					errs = append(errs, fmt.Errorf("%s:%d: VIP %s is %s's own address %s", n.cfg.File, v.Line, v.Address.Addr(), ifc.name, a.Prefix))
				case !a.Owned:
					errs = append(errs, foreignVIPError(n.cfg.File, v, ifc.name))
				default:
					stale = append(stale, staleVIP{in.cfg.Name, v.Address})
				}
			}
		}
	}
	return stale, errors.Join(errs...)
}

// staleVIP is a VIP of an instance that a run which did not stop cleanly
// left on the interface.
type staleVIP struct {
	instance string
	p        netip.Prefix
}

// foreignVIPError refuses VIP v, present on the interface without vipd's
// mark.
func foreignVIPError(file string, v config.VIP, ifname string) error {
	why := "it is one of the host's own addresses or another program's, and vipd never removes an address it did not add"
	if !vip.KernelKeepsProto() {
		why += "; this kernel does not keep address protocols (IFA_PROTO needs Linux 5.18), so vipd cannot tell a VIP that a crashed run left from the host's own address: remove it by hand if it is one"
	}
	return fmt.Errorf("%s:%d: VIP %s is already on %s without vipd's mark (address protocol %#x): %s", file, v.Line, v.Address, ifname, vip.Proto, why)
}

// prepareIface removes the interface's stale VIPs (checkVIPs found them),
// finds the primary address and opens the sockets.
func (n *Node) prepareIface(ifc *iface, stale []staleVIP) error {
	for _, s := range stale {
		n.log.Warn("removing stale VIP left on the interface", "instance", s.instance, "interface", ifc.name, "vip", s.p)
		if err := n.addrs.Remove(ifc.index, s.p); err != nil {
			return err
		}
	}
	if err := n.refreshPrimary(ifc); err != nil {
		return err
	}
	return n.openSockets(ifc)
}

func (n *Node) openSockets(ifc *iface) error {
	ifi, err := net.InterfaceByName(ifc.name)
	if err != nil {
		return fmt.Errorf("interface %s: %w", ifc.name, err)
	}
	ifc.index = ifi.Index
	conn, err := ListenConn(ifi)
	if err != nil {
		return err
	}
	ann, err := arp.NewAnnouncer(ifc.name)
	if err != nil {
		conn.Close()
		return err
	}
	if ifc.conn != nil {
		ifc.conn.Close()
	}
	if ifc.ann != nil {
		ifc.ann.Close()
	}
	ifc.conn, ifc.ann = conn, ann
	return nil
}

// refreshPrimary finds the interface's primary IPv4 address, skipping VIPs.
func (n *Node) refreshPrimary(ifc *iface) error {
	as, err := n.addrs.List(ifc.index)
	if err != nil {
		return err
	}
	p, ok := vip.Primary(as, func(a netip.Addr) bool { return ifc.isVIP(a) })
	if !ok {
		return fmt.Errorf("interface %s has no IPv4 address of its own to send adverts from", ifc.name)
	}
	ifc.primary = p
	return nil
}

func (ifc *iface) isVIP(a netip.Addr) bool {
	for _, in := range ifc.insts {
		for _, v := range in.vips {
			if v == a {
				return true
			}
		}
	}
	return false
}

func (n *Node) closeIfaces() {
	for _, ifc := range n.ifaces {
		if ifc.conn != nil {
			ifc.conn.Close()
			ifc.conn = nil
		}
		if ifc.ann != nil {
			ifc.ann.Close()
			ifc.ann = nil
		}
	}
}

// Run runs the protocol until ctx is cancelled, then resigns every master
// (priority-0 advert), removes every VIP and returns once all of its
// goroutines have finished. ready, if not nil, is called once the instances
// have started.
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
		n.addrs.Close()
		n.awaitHooks(hookDrainMax)
	}()
	n.wg.Add(3)
	go func() { defer n.wg.Done(); n.maint.run(inner) }()
	go func() { defer n.wg.Done(); _ = vip.Watch(inner, n.addrCh) }()
	go func() { defer n.wg.Done(); watchLinks(inner, n.linkCh) }()
	for _, ifc := range n.ifaces {
		n.startReader(ifc)
	}
	now := time.Now()
	n.started, n.reloadOK, n.reloadTime = now, true, now
	for _, in := range n.insts {
		// The primary address is known only now that setup is done.
		in.m = NewMachine(in.machineConfig())
		in.notify = n.newNotifierFor(in.cfg)
		n.startTrackers(in)
	}
	n.buildGroups()
	n.updateHolds(n.insts, now)
	for _, in := range n.insts {
		if in.ifc.up {
			n.step(in, Event{Kind: EventStartup}, now)
		} else {
			n.step(in, Event{Kind: EventLinkDown}, now)
		}
		n.reevaluate(in, now)
	}
	if ready != nil {
		ready()
	}

	n.rescan()
	for {
		n.flush()
		n.armTimer()
		select {
		case <-ctx.Done():
			now := time.Now()
			n.handingOver = true
			for _, in := range n.insts {
				in.stopTrackers()
				n.stepForced(in, Event{Kind: EventShutdown}, now)
			}
			n.handingOver = false
			n.flush()
			n.awaitSuccessors(now)
			for _, in := range n.insts {
				n.retireNotifier(in.notify)
			}
			return nil
		case <-n.timer.C:
			n.armed = time.Time{}
			n.onTimer(time.Now())
			n.rescan()
		case rb := <-n.rx:
			n.handleBatch(rb)
		case ch := <-n.addrCh:
			n.onAddrChange(ch, time.Now())
		case lc := <-n.linkCh:
			n.onLinkChange(lc, time.Now())
		case reply := <-n.statusQ:
			reply <- n.status()
		case req := <-n.reloadQ:
			req.done <- n.reload(req.cfg, time.Now())
			n.rescan()
		case r := <-n.trackCh:
			n.onTrackResult(r, time.Now())
		case req := <-n.maintQ:
			req.done <- n.setMaintenance(req, time.Now())
		}
	}
}

func (n *Node) startReader(ifc *iface) {
	conn := ifc.conn
	// Three batches: one being read, one being handled, one spare.
	free := make(chan *RecvBatch, 3)
	for i := 0; i < cap(free); i++ {
		free <- NewRecvBatch()
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		var errLog rateLog
		for {
			var b *RecvBatch
			select {
			case b = <-free:
			case <-n.ctx.Done():
				return
			}
			if err := conn.ReadBatch(b); err != nil {
				free <- b
				if errors.Is(err, net.ErrClosed) || n.ctx.Err() != nil {
					return
				}
				if ok, _ := errLog.allow(time.Now(), 10*time.Second); ok {
					n.log.Error("read failed", "interface", ifc.name, "err", err)
				}
				continue
			}
			select {
			case n.rx <- rxBatch{ifc: ifc, b: b, free: free}:
			case <-n.ctx.Done():
				return
			}
		}
	}()
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
}

// armTimer sets the timer for next, if it is not already set for it.
func (n *Node) armTimer() {
	if n.next.Equal(n.armed) && !n.armed.IsZero() {
		return
	}
	n.armed = n.next
	var err error
	if n.next.IsZero() {
		err = n.timer.Disarm()
	} else {
		err = n.timer.Set(time.Until(n.next))
	}
	if err != nil {
		n.log.Error("setting the protocol timer failed", "err", err)
	}
}

// handleBatch processes one batch of received datagrams.
func (n *Node) handleBatch(rb rxBatch) {
	n.handleDatagrams(rb.ifc, rb.b)
	rb.free <- rb.b
}

func (n *Node) handleDatagrams(ifc *iface, b *RecvBatch) {
	now := time.Now()
	for i := 0; i < b.N; i++ {
		n.onDatagram(ifc, b.Datagram(i), b.Received(i, now))
	}
}

// drainRx handles every datagram that has reached a socket by now: the
// batches the readers have passed on, then, read straight from each
// socket, those still queued in the kernel. A reader alone is not enough:
// with one P (vipd runs with GOMAXPROCS=1) a reader whose datagram arrived
// while the loop spun in awaitTakeover is runnable only once the runtime
// polls the network, which a Gosched does not make it do, so an advert
// that came before the deadline would go unseen until after the takeover.
func (n *Node) drainRx() {
	runtime.Gosched()
	for {
		select {
		case rb := <-n.rx:
			n.handleBatch(rb)
			continue
		default:
		}
		break
	}
	for _, ifc := range n.ifaces {
		n.readNow(ifc)
	}
}

// readNowBatches bounds how many batches readNow takes in one go, so that
// a flood cannot hold the loop there.
const readNowBatches = 4

// readNow handles the datagrams queued on ifc's socket, without waiting.
func (n *Node) readNow(ifc *iface) {
	if ifc.conn == nil {
		return
	}
	if ifc.direct == nil {
		ifc.direct = NewRecvBatch()
	}
	for range readNowBatches {
		if err := ifc.conn.ReadNow(ifc.direct); err != nil {
			if ok, _ := ifc.readLog.allow(time.Now(), 10*time.Second); ok {
				n.log.Error("read failed", "interface", ifc.name, "err", err)
			}
			return
		}
		n.handleDatagrams(ifc, ifc.direct)
		if ifc.direct.N < batchSize {
			return
		}
	}
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
// returns the time then; with none due it returns now at once. The receivers go on meanwhile
// on another CPU, if there is one; either way onTimer's drainRx reads the
// sockets before the takeover, so an advert that arrived before the
// deadline still counts, at its kernel receive time.
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
	for now.Before(due) {
		now = time.Now()
	}
	return now
}

func (n *Node) onTimer(now time.Time) {
	now = n.awaitTakeover(now)
	drained := false
	for _, in := range n.insts {
		d := in.m.Deadline()
		switch {
		case d.IsZero():
		case !now.Before(d):
			if in.m.State() != StateMaster && !drained {
				// A backup about to take over: an advert that arrived
				// before the deadline, and is on its way through the
				// reader, must count first.
				n.drainRx()
				drained = true
				if d = in.m.Deadline(); d.IsZero() || now.Before(d) {
					break
				}
			}
			n.step(in, Event{Kind: EventTimer}, now)
		case in.m.State() == StateMaster && d.Sub(now) <= advertSlack:
			n.step(in, Event{Kind: EventTimer}, d)
		}
		if !in.garpNext.IsZero() && in.garpNext.Sub(now) <= advertSlack {
			n.repeatAnnounce(in, now)
		}
		if !in.retryAt.IsZero() && in.retryAt.Sub(now) <= advertSlack {
			n.retryVIPs(in, now)
		}
	}
}

// drop counts a refused datagram and logs it at a bounded rate.
func (n *Node) drop(ifc *iface, in *instance, r DropReason, src netip.Addr, now time.Time) {
	if in != nil {
		in.count.Dropped[r]++
	} else {
		ifc.unattributed[r]++
	}
	if r == DropVRID {
		return // other routers' VRIDs on a shared segment are normal
	}
	if ok, suppressed := ifc.dropLog[r].allow(now, 10*time.Second); ok {
		n.log.Warn("dropped VRRP packet", "interface", ifc.name, "from", src, "reason", r.String(), "detail", r.Error(), "suppressed_since_last", suppressed)
	}
}

// onDatagram handles one received datagram, IP header included.
func (n *Node) onDatagram(ifc *iface, dgram []byte, now time.Time) {
	b, src, dst, ttl, ok := ParseIPv4(dgram)
	if !ok {
		n.drop(ifc, nil, DropTooShort, src, now)
		return
	}
	var in *instance
	if len(b) >= 2 {
		in = ifc.byVRID[b[1]]
	}
	a := &n.rxAd
	mode, err := a.Unmarshal(b, src, dst)
	if err != nil {
		r, ok := err.(DropReason)
		if !ok {
			r = DropTooShort
		}
		n.drop(ifc, in, r, src, now)
		return
	}
	if ttl != TTL {
		n.drop(ifc, in, DropTTL, src, now)
		return
	}
	if in == nil {
		n.drop(ifc, nil, DropVRID, src, now)
		return
	}
	if src == ifc.primary {
		n.drop(ifc, in, DropOwnAddress, src, now)
		return
	}
	if len(in.cfg.UnicastPeers) > 0 && !slices.Contains(in.cfg.UnicastPeers, src) {
		n.drop(ifc, in, DropNotPeer, src, now)
		return
	}
	if r := in.validate(a); r != DropNone {
		n.drop(ifc, in, r, src, now)
		return
	}
	in.count.AdvertsReceived++
	in.count.ChecksumSeen[mode]++
	if a.Priority == 0 {
		in.count.PriorityZeroReceived++
	}
	if !in.sameAddresses(a.Addresses) {
		in.count.AddressListMismatch++
		if now.Sub(in.mismatchLogged) > time.Minute {
			in.mismatchLogged = now
			n.log.Warn("peer advertises a different VIP list: the peers' configurations disagree",
				"instance", in.cfg.Name, "peer", src, "peer_addresses", fmt.Sprint(a.Addresses), "ours", fmt.Sprint(in.vips))
		}
	}
	if in.handover && a.Priority > 0 {
		// Our successor has taken over: the VIPs are its now.
		in.handover = false
		n.removeVIPs(in)
		n.log.Info("VIPs handed over", "instance", in.cfg.Name, "to", src, "priority", a.Priority)
	}
	n.step(in, Event{Kind: EventAdvert, From: src, Priority: a.Priority, Interval: a.Interval}, now)
	n.noteLowerMaster(in, now)
}

// noteLowerMaster logs, once each time, that a lower-ranked router starts
// or stops being one that keeps advertising as master (Machine.LowerMaster);
// status shows it meanwhile.
func (n *Node) noteLowerMaster(in *instance, now time.Time) {
	lm, ok := in.m.LowerMaster(now)
	if ok == in.lowerMasterOn {
		return
	}
	in.lowerMasterOn = ok
	if ok {
		in.lowerMaster = lm
		n.log.Warn("a peer keeps advertising as master at a lower priority: it does not accept our adverts (do version, v3_checksum, auth_pass and advert_interval match?); re-announcing the VIPs with backoff",
			"instance", in.cfg.Name, "interface", in.ifc.name, "vrid", in.cfg.VRID, "peer", lm.Addr, "peer_priority", lm.Priority,
			"priority", in.m.Config().Priority, "since", lm.Since.Format(time.RFC3339Nano))
		return
	}
	n.log.Info("the lower-priority peer no longer advertises as master",
		"instance", in.cfg.Name, "peer", in.lowerMaster.Addr, "last_seen", in.lowerMaster.LastSeen.Format(time.RFC3339Nano))
}

// step feeds an event to an instance's machine and carries out the result;
// a sync group follows the instance's transitions.
func (n *Node) step(in *instance, ev Event, now time.Time) {
	n.handle(in, in.m.Step(ev, now), ev, now, true)
}

// stepForced is step for a transition that the group must not follow
// (one forced by the group itself, or a shutdown).
func (n *Node) stepForced(in *instance, ev Event, now time.Time) {
	n.handle(in, in.m.Step(ev, now), ev, now, false)
}

func (n *Node) handle(in *instance, out Output, ev Event, now time.Time, propagate bool) {
	// The addresses and packets first, the clients are waiting for them;
	// the log, the event stream and the hooks after.
	n.apply(in, out.Actions, now)
	n.noteDeadline(in)
	if out.Transition {
		in.count.Transitions[[2]State{out.From, out.To}]++
		attrs := []any{"instance", in.cfg.Name, "interface", in.ifc.name, "vrid", in.cfg.VRID,
			"from", out.From.String(), "to", out.To.String(), "reason", out.Reason.String(), "priority", in.m.Config().Priority}
		te := TransitionEvent{Time: now, Instance: in.cfg.Name, Interface: in.ifc.name, VRID: in.cfg.VRID,
			From: out.From, To: out.To, Reason: out.Reason, Priority: in.m.Config().Priority}
		if ev.Kind == EventAdvert {
			attrs = append(attrs, "peer", ev.From, "peer_priority", ev.Priority)
			te.Peer, te.PeerPriority = ev.From, ev.Priority
		}
		if in.group != nil {
			attrs = append(attrs, "sync_group", in.group.name)
		}
		n.log.Info("transition", attrs...)
		n.subs.publish(te)
		n.notifyHook(in, out)
		if propagate {
			n.propagate(in, out, now)
		}
	}
}

func (n *Node) apply(in *instance, acts Action, now time.Time) {
	defer n.noteDeadline(in)
	ifc := in.ifc
	if acts.Has(ActStopAnnounce) {
		in.garpLeft, in.garpNext = 0, time.Time{}
	}
	if acts.Has(ActResign) {
		// Resigning: the priority-0 advert leaves first and the VIPs go
		// after it, so the backup's Skew_Time starts before the clients
		// lose this node, and the gap they see is no longer than it.
		n.send(in, 0)
		n.flushIface(ifc)
	}
	if acts.Has(ActRemoveVIPs) || acts.Has(ActAddVIPs) {
		in.retryAt, in.retryWait = time.Time{}, 0
	}
	switch {
	case acts.Has(ActRemoveVIPs) && acts.Has(ActResign) && n.handingOver:
		in.handover = true // awaitSuccessors removes them
	case acts.Has(ActRemoveVIPs):
		n.removeVIPs(in)
	}
	// The VIPs go on before the gratuitous ARP leaves, so that no client
	// is sent here before this node answers for them. On a local segment
	// the frame reaches the clients, and their next request this node,
	// within the write that sends it, sooner than the kernel adds an
	// address; and the burst's second frame would delay the add further.
	// A VIP that cannot be added is retried (retryVIPs) and not
	// announced until it is there.
	if acts.Has(ActAddVIPs) {
		for i := range in.pfx {
			n.addVIP(in, i, now)
		}
	}
	if acts.Has(ActAnnounce) {
		n.announceBurst(in, now)
	}
	if acts.Has(ActSendAdvert) {
		n.send(in, in.m.Config().Priority)
	}
}

// announceBurst sends the first gratuitous ARP of a takeover and schedules
// the repeats.
func (n *Node) announceBurst(in *instance, now time.Time) {
	n.announce(in)
	in.garpLeft = in.cfg.GARP.Repeat
	in.scheduleAnnounce(now)
}

func (in *instance) scheduleAnnounce(now time.Time) {
	switch {
	case in.garpLeft > 0:
		in.garpNext = now.Add(in.cfg.GARP.Interval)
	case in.cfg.GARP.Refresh > 0:
		in.garpNext = now.Add(in.cfg.GARP.Refresh)
	default:
		in.garpNext = time.Time{}
	}
}

func (n *Node) repeatAnnounce(in *instance, now time.Time) {
	if in.m.State() != StateMaster {
		in.garpLeft, in.garpNext = 0, time.Time{}
		return
	}
	n.announce(in)
	if in.garpLeft > 0 {
		in.garpLeft--
	}
	in.scheduleAnnounce(now)
}

// announce sends gratuitous ARP for the VIPs that are on the interface:
// never for one whose add failed, which would draw the clients to an
// address this node does not answer for.
func (n *Node) announce(in *instance) {
	if in.ifc.ann == nil {
		return
	}
	in.annBuf = in.annBuf[:0]
	for i, a := range in.vips {
		if in.vs[i].present {
			in.annBuf = append(in.annBuf, a)
		}
	}
	if len(in.annBuf) == 0 {
		return
	}
	sent, err := in.ifc.ann.Announce(in.annBuf)
	in.count.GARPSent += uint64(sent)
	if err != nil {
		n.log.Error("gratuitous ARP failed", "instance", in.cfg.Name, "err", err)
	}
}

func (n *Node) removeVIPs(in *instance) {
	for i, p := range in.pfx {
		if err := n.addrs.Remove(in.ifc.index, p); err != nil {
			n.log.Error("removing VIP failed", "instance", in.cfg.Name, "err", err)
			continue
		}
		in.vs[i].present = false
	}
}

// The back-off of retryVIPs: the first retry this long after a failed
// add, doubling up to vipRetryMax.
const (
	vipRetryMin = 100 * time.Millisecond
	vipRetryMax = 5 * time.Second
)

// addVIP puts in's VIP i on the interface and records the outcome. A
// failure is logged when it is new (not a retry failing the same way) and
// schedules a retry; it reports whether the VIP is on now.
func (n *Node) addVIP(in *instance, i int, now time.Time) bool {
	v := &in.vs[i]
	err := n.addrs.Add(in.ifc.index, in.pfx[i])
	if err == nil {
		if v.addErr != "" {
			n.log.Info("VIP added after failed attempts", "instance", in.cfg.Name, "interface", in.ifc.name,
				"vip", in.pfx[i], "add_failures", v.failures)
		}
		v.present, v.addErr = true, ""
		return true
	}
	v.present = false
	v.failures++
	if msg := err.Error(); msg != v.addErr {
		v.addErr = msg
		n.log.Error("adding VIP failed; not announcing it, retrying", "instance", in.cfg.Name, "interface", in.ifc.name,
			"vip", in.pfx[i], "err", err)
	}
	if in.retryAt.IsZero() {
		if in.retryWait == 0 {
			in.retryWait = vipRetryMin
		}
		in.retryAt = now.Add(in.retryWait)
	}
	return false
}

// retryVIPs tries again to add the VIPs a master lacks because their add
// failed, and announces them once they are on; while some still fail the
// next try waits twice as long, up to vipRetryMax.
func (n *Node) retryVIPs(in *instance, now time.Time) {
	defer n.noteDeadline(in)
	in.retryAt = time.Time{}
	if in.m.State() != StateMaster {
		in.retryWait = 0
		return
	}
	in.retryWait = min(2*in.retryWait, vipRetryMax)
	added := false
	for i := range in.pfx {
		if !in.vs[i].present && n.addVIP(in, i, now) {
			added = true
		}
	}
	if in.retryAt.IsZero() {
		in.retryWait = 0
	}
	if added {
		n.announceBurst(in, now)
	}
}

// handoverMargin is how much longer than its advert interval a resigning
// master waits for a successor; handoverMax caps the wait, so that a long
// interval (v3 allows 40.95 s, v2 255 s) cannot hold a stop past systemd's
// TimeoutStopSec (10 s in deploy/vipd.service) and get vipd killed with
// its VIPs still on the interface.
const (
	handoverMargin = 10 * time.Millisecond
	handoverMax    = 3 * time.Second
)

// awaitSuccessors finishes a shutdown: make before break. A master that
// resigned keeps its VIPs until another router advertises the VRID with a
// priority above 0 (the backup taking over after its Skew_Time, which is
// less than one advert interval), then removes them at once, as any master
// does when a higher priority one appears. So a planned stop costs the
// clients only the gratuitous ARP's trip instead of Skew_Time without an
// answer, and the VIP is on two nodes no longer than in a preemption. If
// no successor speaks within the advert interval and handoverMargin (at
// most handoverMax), the VIPs go anyway.
func (n *Node) awaitSuccessors(start time.Time) {
	var wait time.Duration
	for _, in := range n.insts {
		if in.handover {
			wait = max(wait, in.cfg.AdvertInterval+handoverMargin)
		}
	}
	if wait == 0 {
		return
	}
	wait = min(wait, handoverMax)
	deadline := time.NewTimer(time.Until(start.Add(wait)))
	defer deadline.Stop()
	for n.handingOverCount() > 0 {
		select {
		case rb := <-n.rx:
			n.handleBatch(rb)
		case <-deadline.C:
			for _, in := range n.insts {
				if in.handover {
					in.handover = false
					n.removeVIPs(in)
					n.log.Warn("no router took over within the advert interval: VIPs removed",
						"instance", in.cfg.Name, "waited", time.Since(start).Round(time.Microsecond).String())
				}
			}
			return
		}
	}
}

func (n *Node) handingOverCount() int {
	c := 0
	for _, in := range n.insts {
		if in.handover {
			c++
		}
	}
	return c
}

// send queues an advert with priority prio; flush sends the queue.
func (n *Node) send(in *instance, prio uint8) {
	if in.ifc.conn == nil {
		return
	}
	var err error
	if len(in.cfg.UnicastPeers) == 0 {
		var b []byte
		if b, err = in.advert(prio, GroupV4); err == nil {
			err = in.ifc.conn.Queue(b, in.ifc.primary, GroupV4)
		}
	} else {
		for _, peer := range in.cfg.UnicastPeers {
			var b []byte
			if b, err = in.advert(prio, peer); err == nil {
				err = in.ifc.conn.Queue(b, in.ifc.primary, peer)
			}
			if err != nil {
				break
			}
		}
	}
	if err != nil {
		n.sendFailed(in.ifc, err)
		return
	}
	in.count.AdvertsSent++
	if prio == 0 {
		in.count.PriorityZeroSent++
	}
}

func (n *Node) sendFailed(ifc *iface, err error) {
	if ok, _ := ifc.sendLog.allow(time.Now(), 10*time.Second); ok {
		n.log.Error("sending adverts failed", "interface", ifc.name, "err", err)
	}
}

// flush sends every interface's queued adverts.
func (n *Node) flush() {
	for _, ifc := range n.ifaces {
		n.flushIface(ifc)
	}
}

// flushIface sends the adverts queued on one interface.
func (n *Node) flushIface(ifc *iface) {
	if ifc.conn != nil && ifc.conn.Pending() {
		if err := ifc.conn.Flush(); err != nil {
			n.sendFailed(ifc, err)
		}
	}
}

func (n *Node) ifaceByIndex(index int) *iface {
	for _, ifc := range n.ifaces {
		if ifc.index == index {
			return ifc
		}
	}
	return nil
}

func (n *Node) onAddrChange(c vip.Change, now time.Time) {
	if c.Resync {
		for _, ifc := range n.ifaces {
			n.restoreVIPs(ifc, now)
			n.updatePrimary(ifc, now)
		}
		return
	}
	ifc := n.ifaceByIndex(c.Index)
	if ifc == nil {
		return
	}
	if !ifc.isVIP(c.Addr) {
		n.updatePrimary(ifc, now)
		return
	}
	if c.Added {
		for _, in := range ifc.insts {
			for i, a := range in.vips {
				if a == c.Addr {
					in.vs[i].present = true
				}
			}
		}
		return
	}
	// A removal is checked against the interface: the event may be
	// vipd's own removal, overtaken by a later add.
	n.restoreVIPs(ifc, now)
}

// restoreVIPs learns which VIPs are on the interface, and puts back those
// that someone removed from a master's interface. A VIP whose add failed is
// left to retryVIPs.
func (n *Node) restoreVIPs(ifc *iface, now time.Time) {
	as, err := n.addrs.List(ifc.index)
	if err != nil {
		n.log.Error("checking VIPs failed", "interface", ifc.name, "err", err)
		return
	}
	for _, in := range ifc.insts {
		for i, p := range in.pfx {
			in.vs[i].present = hasAddr(as, p.Addr())
		}
		if in.m.State() != StateMaster {
			continue
		}
		restored := false
		for i, p := range in.pfx {
			if in.vs[i].present || in.vs[i].addErr != "" {
				continue
			}
			n.log.Warn("VIP was removed from the interface behind vipd's back; restoring it", "instance", in.cfg.Name, "interface", ifc.name, "vip", p)
			if !n.addVIP(in, i, now) {
				continue
			}
			in.count.VIPsRestored++
			restored = true
		}
		if restored {
			n.apply(in, ActAnnounce, now)
		}
		n.noteDeadline(in)
	}
}

func hasAddr(as []vip.Addr, a netip.Addr) bool {
	for _, x := range as {
		if x.Prefix.Addr() == a {
			return true
		}
	}
	return false
}

func (n *Node) updatePrimary(ifc *iface, now time.Time) {
	old := ifc.primary
	if err := n.refreshPrimary(ifc); err != nil {
		n.log.Warn("no primary address", "interface", ifc.name, "err", err)
		return
	}
	if ifc.primary == old {
		return
	}
	n.log.Info("primary address changed", "interface", ifc.name, "from", old, "to", ifc.primary)
	for _, in := range ifc.insts {
		n.reevaluate(in, now)
	}
}

func (n *Node) onLinkChange(lc linkChange, now time.Time) {
	for _, in := range n.insts {
		for _, ti := range in.cfg.Track.Interfaces {
			if ti.Name == lc.name && in.track.ifDown[ti.Name] == lc.up {
				in.track.ifDown[ti.Name] = !lc.up
				n.log.Info("tracked interface changed", "instance", in.cfg.Name, "interface", lc.name, "up", lc.up)
				n.reevaluate(in, now)
			}
		}
	}
	var ifc *iface
	for _, x := range n.ifaces {
		if x.name == lc.name {
			ifc = x
		}
	}
	if ifc == nil {
		return
	}
	if ifc.up == lc.up {
		if lc.up && len(lc.mac) > 0 && !bytes.Equal(lc.mac, ifc.mac) {
			n.onNewMAC(ifc, lc.mac, now)
		}
		return
	}
	ifc.up = lc.up
	if len(lc.mac) > 0 {
		ifc.mac = lc.mac // the sockets, opened afresh below, use it
	}
	if !lc.up {
		n.log.Warn("interface lost carrier", "interface", ifc.name)
		for _, in := range ifc.insts {
			n.reevaluate(in, now)
		}
		return
	}
	n.log.Info("interface has carrier again", "interface", ifc.name)
	// The interface may have been recreated, and sockets on an interface
	// that went down can be stale: open fresh ones first.
	ifc.index = lc.index
	if err := n.openSockets(ifc); err != nil {
		n.log.Error("reopening sockets failed; staying in fault", "interface", ifc.name, "err", err)
		ifc.up = false
		return
	}
	n.startReader(ifc)
	n.updatePrimary(ifc, now)
	for _, in := range ifc.insts {
		n.reevaluate(in, now)
	}
}

// onNewMAC follows a hardware address that changed while the link stayed
// up (bonding with fail_over_mac=active does this): the gratuitous ARP and
// advert frames, built in advance, would go on naming the old one, and
// clients would go on sending to a MAC that this host no longer has. The
// frames are built again for the new address, and every master on the
// interface announces its VIPs from it at once.
func (n *Node) onNewMAC(ifc *iface, mac net.HardwareAddr, now time.Time) {
	n.log.Warn("interface changed its hardware address; announcing the VIPs from the new one",
		"interface", ifc.name, "from", ifc.mac.String(), "to", mac.String())
	ifc.mac = mac
	if ifc.conn != nil {
		ifc.conn.SetHardwareAddr(mac)
	}
	if ifc.ann != nil {
		if err := ifc.ann.Reopen(); err != nil {
			n.log.Error("rebuilding gratuitous ARP for the new hardware address failed", "interface", ifc.name, "err", err)
		}
	}
	for _, in := range ifc.insts {
		if in.m.State() == StateMaster {
			n.apply(in, ActAnnounce, now)
		}
	}
}

// Abort releases what NewNode set up, for a Node that will not Run.
func (n *Node) Abort() {
	close(n.loopDone) // requests waiting for the loop give up
	n.closeIfaces()
	n.addrs.Close()
}
