package vrrp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vipd/vipd/config"
	"github.com/vipd/vipd/vip"
)

// iface is one link with its opened dataplane link and the instances that
// advertise on it, in one address family. Owned by the Node's loop
// goroutine.
type iface struct {
	name    string
	index   int
	family  Family     // of the adverts on the link: IPv4, IPv6 or both
	primary netip.Addr // the primary IPv4 address
	// primary6 is the usable IPv6 link-local adverts over IPv6 come from;
	// invalid without one.
	primary6 netip.Addr
	// global6 is the first usable IPv6 address of the interface that is
	// not a link-local: the source of IPv6 unicast adverts to peers that
	// are not link-locals (instance.source); invalid without one.
	global6 netip.Addr
	up      bool
	mac     net.HardwareAddr // the source of adverts and gratuitous ARP
	link    Link
	// noLinkLocalLogged: the missing IPv6 link-local was logged.
	noLinkLocalLogged bool
	// noGlobal6Logged: the missing global IPv6 address was logged.
	noGlobal6Logged bool
	byVRID          [256]*instance
	insts           []*instance
	// vipOnly: no instance advertises here; the link carries VIPs of
	// instances that advertise on another one (guests), and is opened for
	// gratuitous ARP only.
	vipOnly bool
	guests  []*instance
	// vmac: the link is an instance's virtual MAC macvlan (vmac.go), up
	// only while the instance wants its VIPs.
	vmac bool

	unattributed [numDropReasons]uint64 // drops for no configured VRID
	dropLog      [numDropReasons]rateLog
	sendLog      rateLog

	direct  *RecvBatch // for the loop's own reads (hostReceiver.drain), made on first use
	readLog rateLog

	// Held-back adverts (holdback.go): the set changed since it was last
	// given to the receive path; the datagrams handled last, by kernel
	// receive stamp, so that one that reached both sockets counts once.
	heldDirty bool
	recent    [8]recentDatagram
	recentAt  int
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

// Node runs every configured instance: one loop goroutine owns all protocol
// state; the receiver feeds it datagrams; the dataplane's watchers feed it
// address and link changes. The host is changed only by the reconciler
// (reconcile.go), through the dataplane.
type Node struct {
	log    *slog.Logger
	cfg    *config.Config
	dp     Dataplane
	rcv    receiver
	clk    clock
	ifaces []*iface
	insts  []*instance

	addrCh  chan vip.Change
	linkCh  chan LinkInfo
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
	// groups are the sync groups; groupsFrozen holds their hooks while
	// the loop starts, stops or reloads (freezeGroups).
	groups       []*syncGroup
	groupsFrozen bool
	// hookRun, if set, runs hooks instead of runCommand (tests).
	hookRun func(argv, vars []string, timeout time.Duration, cred *config.Credential) commandRun
	// maint saves the maintenance state off the loop; its goroutine runs
	// with Run.
	maint *maintWriter

	// trace, if set, sees every event the machines are stepped with and
	// what they answered: a recorded trace replays what happened.
	trace func(instance string, ev Event, now time.Time, out Output)

	// procRoot is where process trackers read the process list: /proc.
	procRoot string

	// static are the static routes and rules (routes.go), installed
	// once staticOn, from start to stop; routeCh signals route and rule
	// deletions (Dataplane.WatchRoutes); resolved holds the route sets
	// of a configuration being applied, by instance name ("" static).
	static   routeSet
	staticOn bool
	routeCh  chan struct{}
	resolved map[string]routeSet
	// routeLinks: whether each link a route names was last seen up.
	routeLinks map[string]bool
	// conflictCh brings the conflict watcher's reports (conflictwatch.go);
	// conflictKick (1 slot) tells it that what it follows changed
	// (kickConflict); conflictEvery is conflict_probe_interval in force.
	conflictCh    chan conflictReport
	conflictKick  chan struct{}
	conflictEvery atomic.Int64
	// conflictTick (1 slot) signals the watcher a probe burst, when
	// probes (the loop's) finds one due; conflictGap is the time between
	// bursts, set by the watcher (0: no probes).
	conflictTick chan struct{}
	conflictGap  atomic.Int64
	probes       probeClock

	started      time.Time
	reloadOK     bool
	reloadTime   time.Time
	reloadErrors uint64

	// upCh brings the upstream check's results (upstream.go); prober
	// starts its attempts (nil: the dataplane has no check).
	upCh           chan probeResult
	prober         upstreamProber
	probesInFlight int

	// vmacRec is what virtual_mac changed on the host (vmac.go).
	// vmacOwned once the stale clean-up is done: teardownVMACs may then
	// drop the record.
	vmacRec   vmacRecord
	vmacOwned bool

	// healCh brings the new master's MAC after a yield (heal.go); learner
	// is the host's part, nil where there is none.
	healCh  chan senderMAC
	learner senderLearner
}

// NewNode checks the configuration against the host and sets everything up:
// it resolves each interface and its primary address, refuses VIPs that are
// the interface's own addresses, removes configured VIPs that a crashed run
// left behind, and opens the sockets. On any error it undoes what it did and
// returns the error: vipd never runs half-configured.
func NewNode(cfg *config.Config, log *slog.Logger) (*Node, error) {
	dp, err := newHostDataplane()
	if err != nil {
		return nil, err
	}
	return newNode(cfg, log, dp, newHostReceiver(), hostClock{})
}

// newNode is NewNode on any dataplane, receive path and clock.
func newNode(cfg *config.Config, log *slog.Logger, dp Dataplane, rcv receiver, clk clock) (*Node, error) {
	n := &Node{
		log:     log,
		cfg:     cfg,
		dp:      dp,
		rcv:     rcv,
		clk:     clk,
		addrCh:  make(chan vip.Change, 64),
		linkCh:  make(chan LinkInfo, 16),
		statusQ: make(chan chan Status),
		reloadQ: make(chan reloadReq),
		trackCh: make(chan TrackResult, 64),
		maintQ:  make(chan maintReq),
		routeCh: make(chan struct{}, 1),

		procRoot: "/proc",
		loopDone: make(chan struct{}),

		conflictCh:   make(chan conflictReport, 16),
		conflictKick: make(chan struct{}, 1),
		conflictTick: make(chan struct{}, 1),
	}
	n.conflictEvery.Store(int64(cfg.ConflictProbes()))
	n.upCh = make(chan probeResult, 16)
	n.maint = newMaintWriter(log)
	n.prober, _ = dp.(upstreamProber)
	n.healCh = make(chan senderMAC, 16)
	n.learner, _ = dp.(senderLearner)
	if err := n.setup(); err != nil {
		n.closeIfaces()
		n.teardownVMACs()
		n.dp.Close()
		return nil, err
	}
	if err := n.loadMaintenance(); err != nil {
		n.closeIfaces()
		n.teardownVMACs()
		n.dp.Close()
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
			li, err := n.dp.LookupLink(c.Interface)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: interface %s: %w", n.where(c), c.Interface, err))
				continue
			}
			ifc = newIface(li)
			byName[c.Interface] = ifc
			n.ifaces = append(n.ifaces, ifc)
		}
		in := newInstance(c, ifc)
		ifc.byVRID[c.VRID] = in
		ifc.insts = append(ifc.insts, in)
		n.insts = append(n.insts, in)
	}
	fams := ifaceFamilies(n.cfg)
	for _, ifc := range n.ifaces {
		ifc.family = fams[ifc.name]
	}
	if len(errs) == 0 {
		if err := n.setupVMACs(); err != nil {
			return err
		}
	}
	errs = append(errs, n.addVIPLinks(n.cfg, byName, func(ifc *iface) { n.ifaces = append(n.ifaces, ifc) })...)
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	linkOf := func(name string) *iface { return byName[name] }
	for _, in := range n.insts {
		in.setVIPs(linkOf)
		if in.vmac != nil {
			in.vmac.ifc = byName[in.vmac.name]
			in.vmac.ifc.vmac = true
		}
	}
	n.indexGuests()
	// Check every interface before removing anything: a refused VIP stops
	// vipd with the host as it found it.
	for _, ifc := range n.ifaces {
		if err := n.checkOwnAddresses(n.cfg.File, ifc, n.cfg.Instances); err != nil {
			errs = append(errs, err)
		}
	}
	sets, err := n.resolveAll(n.cfg)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	// Every link is listed before the stale clean-up, which removes an
	// instance's VIPs on all its links at once.
	for _, ifc := range n.ifaces {
		if err := n.observe(ifc); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	n.static = sets[""]
	for _, in := range n.insts {
		in.rs = sets[in.cfg.Name]
	}
	// Stale rules and routes go before stale addresses.
	if err := n.removeStaleRoutes(); err != nil {
		return err
	}
	for _, ifc := range n.ifaces {
		if err := n.prepareIface(ifc); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func newIface(li LinkInfo) *iface {
	return &iface{name: li.Name, index: li.Index, family: FamilyIPv4, up: li.Up, mac: li.MAC}
}

// checkOwnAddresses refuses a VIP placed on ifc (by any of the instances
// cs) that is one of the interface's own addresses: present with another
// prefix length, or present without vipd's mark (the host's or another
// program's address; vipd never removes, nor takes over, what it did not
// add). It also refuses a source_address of an instance advertising on ifc
// that is not one of its addresses.
func (n *Node) checkOwnAddresses(file string, ifc *iface, cs []config.Instance) error {
	as, err := n.dp.ListAddrs(ifc.index)
	if err != nil {
		return err
	}
	var errs []error
	errs = append(errs, checkSources(file, ifc.name, as, cs)...)
	for _, c := range cs {
		for _, v := range c.VIPs {
			if vipIfname(c, v) != ifc.name {
				continue
			}
			for _, a := range as {
				if a.Prefix.Addr() != v.Address.Addr() {
					continue
				}
				switch {
				case a.Prefix.Bits() != v.Address.Bits():
					errs = append(errs, fmt.Errorf("%s:%d: VIP %s is %s's own address %s", file, v.Line, v.Address.Addr(), ifc.name, a.Prefix))
				case !a.Owned:
					errs = append(errs, foreignVIPError(file, v, ifc.name))
				}
			}
		}
	}
	return errors.Join(errs...)
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

// prepareIface has the reconciler remove the stale VIPs (left marked as
// vipd's by a run that did not stop cleanly) of the instances advertising
// on ifc, on every link, finds the primary address and opens the link.
// Every link must have been observed.
func (n *Node) prepareIface(ifc *iface) error {
	for _, in := range ifc.insts {
		if err := n.reconcile(in, reconcileStale, n.now()); err != nil {
			return err
		}
	}
	if !ifc.vipOnly {
		if err := n.refreshPrimary(ifc); err != nil {
			return err
		}
	}
	return n.openLink(ifc)
}

// openLink opens (again) the interface's link for adverts and announcements.
func (n *Node) openLink(ifc *iface) error {
	li, err := n.dp.LookupLink(ifc.name)
	if err != nil {
		return fmt.Errorf("interface %s: %w", ifc.name, err)
	}
	ifc.index = li.Index
	var l Link
	if ifc.vipOnly {
		l, err = n.dp.OpenAnnouncer(li, ifc.family)
	} else {
		l, err = n.dp.OpenLink(li, ifc.family)
	}
	if err != nil {
		return err
	}
	if ifc.link != nil {
		ifc.link.Close()
	}
	ifc.link = l
	return nil
}

// ifaceFamilies is the family of the adverts on each interface an
// instance of cfg advertises on: IPv4, IPv6, or both (IPv4 and IPv6
// instances on one interface: the link opens an advert socket for each).
func ifaceFamilies(cfg *config.Config) map[string]Family {
	fams := map[string]Family{}
	for _, c := range cfg.Instances {
		fams[c.Interface] = fams[c.Interface].with(Family(c.Family()))
	}
	return fams
}

// primaryFor is the address adverts of family fam go out from by default:
// the primary IPv4 address, or the link-local.
func (ifc *iface) primaryFor(fam Family) netip.Addr {
	if fam == FamilyIPv6 {
		return ifc.primary6
	}
	return ifc.primary
}

// refreshPrimary finds the interface's primary addresses, skipping VIPs:
// for IPv4 adverts the primary IPv4 address (an error without one); for
// IPv6 adverts the link-local (RFC 5798 §5.1.2), left invalid without a
// usable one, so that the instances advertising over IPv6 go to fault
// (ReasonNoLinkLocal) until one appears.
func (n *Node) refreshPrimary(ifc *iface) error {
	as, err := n.dp.ListAddrs(ifc.index)
	if err != nil {
		return err
	}
	skip := func(a netip.Addr) bool { return ifc.isVIP(a) }
	if ifc.family.has(FamilyIPv6) {
		p, ok := vip.LinkLocal(as, skip)
		if !ok && (ifc.primary6.IsValid() || !ifc.noLinkLocalLogged) {
			ifc.noLinkLocalLogged = true
			n.log.Warn("interface has no usable IPv6 link-local address: its IPv6 instances stay in fault until one appears (VRRP over IPv6 advertises from the link-local, RFC 5798 §5.1.2; is IPv6 disabled, addr_gen_mode none, or duplicate address detection still running?)",
				"interface", ifc.name)
		}
		ifc.primary6 = p
		g, ok := vip.Global6(as, skip)
		if !ok && ifc.needsGlobal6() && (ifc.global6.IsValid() || !ifc.noGlobal6Logged) {
			ifc.noGlobal6Logged = true
			n.log.Warn("interface has no usable global IPv6 address: its IPv6 instances with unicast_peers and no source_address stay in fault until one appears (their adverts come from the interface's first global address, the one the peers list; or set source_address)",
				"interface", ifc.name)
		}
		ifc.global6 = g
	}
	if !ifc.family.has(FamilyIPv4) {
		return nil
	}
	p, ok := vip.Primary(as, skip)
	if !ok {
		return fmt.Errorf("interface %s has no IPv4 address of its own to send adverts from", ifc.name)
	}
	ifc.primary = p
	return nil
}

// needsGlobal6 reports whether an instance advertising on ifc sends its
// adverts from ifc.global6.
func (ifc *iface) needsGlobal6() bool {
	return slices.ContainsFunc(ifc.insts, (*instance).fromGlobal6)
}

// isVIP reports whether a is a VIP of an instance that advertises on ifc
// or has VIPs on it.
func (ifc *iface) isVIP(a netip.Addr) bool {
	for _, ins := range [2][]*instance{ifc.insts, ifc.guests} {
		for _, in := range ins {
			if slices.Contains(in.vips, a) {
				return true
			}
		}
	}
	return false
}

func (n *Node) closeIfaces() {
	for _, ifc := range n.ifaces {
		if ifc.link != nil {
			ifc.link.Close()
			ifc.link = nil
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

// Abort releases what NewNode set up, for a Node that will not Run.
func (n *Node) Abort() {
	close(n.loopDone) // requests waiting for the loop give up
	n.closeIfaces()
	n.teardownVMACs()
	n.dp.Close()
}
