package vrrp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/bpf"

	"github.com/vipd/vipd/config"
	"github.com/vipd/vipd/vip"
)

// An in-memory dataplane for runtime scenarios without root: a simulated
// L2 segment that several Nodes share, delivering their adverts to one
// another after a link delay; addresses held per node, as vip.Manager
// holds them on a host (marked as vipd's, foreign ones refused);
// announcements recorded. Time is a value: a discrete-event loop moves it
// from one deadline or delivery to the next, so a scenario of seconds runs
// in microseconds, with no sleeps and no goroutines.

// simDelay is the segment's one-way delay.
const simDelay = 50 * time.Microsecond

var simT0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type simNet struct {
	t      *testing.T
	now    time.Time
	nodes  []*simNode
	frames []simFrame // in flight, by arrival time
	sent   []simFrame // every advert that left a host, as it left
	anns   []simAnnounce
	busy   []*simNode // spinning in awaitTakeover: their events wait
	steps  int
	// cut drops every frame on the segment (a partition).
	cut bool
	// later are callbacks due at a time (the fake upstream's answers).
	later []simLater
	// upstreams are neighbours on eth0, gateway eth0's default gateway,
	// probes the upstream check's attempts (upstream_sim_test.go).
	upstreams []*simUpstream
	gateway   netip.Addr
	probes    []simProbe
}

// simLater is a callback the simulation runs at a time, for one host.
type simLater struct {
	at time.Time
	h  *simNode
	fn func()
}

type simFrame struct {
	at   time.Time
	to   *simNode
	link string
	data []byte
	mac  string // the Ethernet source
	from string // the sending host, in sent
	// six: an IPv6 datagram; data is the VRRP message alone, as a raw
	// IPv6 socket reads it, with its source, destination and hop limit.
	six      bool
	src, dst netip.Addr
	hops     int
}

type simAnnounce struct {
	at    time.Time
	node  string
	link  string
	addrs []netip.Addr
	mac   string
	atMAC bool // AnnounceAt: mac is another host's
}

// simNode is one host: its links, its addresses and the Node on it.
type simNode struct {
	// held is each link's held-back filter (holdback.go); heldQ the
	// datagrams it kept, not yet read; heldFrames counts them.
	held       map[string]*bpf.VM
	heldQ      []simFrame
	heldFrames int
	// wakes counts the loop's wake-ups: a datagram read at once, or
	// its timer.
	wakes int

	net      *simNet
	name     string
	primary  netip.Addr
	links    map[string]*LinkInfo
	addrs    map[int][]vip.Addr
	failAdd  map[netip.Prefix]error
	adds     map[netip.Prefix]int
	labels   map[netip.Prefix]string // of the addresses on, by prefix
	events   []vip.Change            // address changes not yet delivered
	n        *Node
	open     map[string]*simLink
	running  bool
	stopping bool
	logs     *simLog
	trans    <-chan TransitionEvent
	history  []TransitionEvent
	addrLog  []simAddrChange
	// Routes and rules (simroutes_test.go).
	routes      []vip.Route
	rules       []vip.Rule
	routeEvents int      // deletions not yet signalled to the Node
	ops         []string // addresses, routes, rules and announcements changed, in order
	// Macvlans and sysctls (simvmac_test.go).
	vm simVMAC
	// learns are the senderLearner's requests (simheal_test.go).
	learns []simLearn
}

// simAddrChange is an address added or removed on a host, and when.
type simAddrChange struct {
	at    time.Time
	addr  netip.Addr
	added bool
}

func newSimNet(t *testing.T) *simNet {
	return &simNet{t: t, now: simT0}
}

// host adds a host with primary address primary on link eth0.
func (s *simNet) host(name string, primary string) *simNode {
	h := &simNode{
		net: s, name: name, primary: netip.MustParseAddr(primary),
		links: map[string]*LinkInfo{
			"eth0": {Name: "eth0", Index: 2, Up: true, MAC: simMAC(len(s.nodes) + 1)},
			"eth1": {Name: "eth1", Index: 3, Up: true, MAC: simMAC(len(s.nodes) + 101)},
		},
		addrs:   map[int][]vip.Addr{},
		failAdd: map[netip.Prefix]error{}, adds: map[netip.Prefix]int{}, labels: map[netip.Prefix]string{},
		open: map[string]*simLink{}, logs: &simLog{},
	}
	h.addrs[2] = []vip.Addr{{Prefix: netip.PrefixFrom(h.primary, 24)}}
	p1 := h.primary.As4()
	p1[2]++
	h.addrs[3] = []vip.Addr{{Prefix: netip.PrefixFrom(netip.AddrFrom4(p1), 24)}}
	s.nodes = append(s.nodes, h)
	return h
}

func simMAC(i int) net.HardwareAddr { return net.HardwareAddr{0x02, 0, 0, 0, 0, byte(i)} }

// simConfig parses a configuration; state_dir is set to a temporary
// directory unless given.
func (s *simNet) config(yaml string) *config.Config {
	s.t.Helper()
	if !strings.Contains(yaml, "state_dir:") {
		yaml = "state_dir: " + s.t.TempDir() + "\n" + yaml
	}
	c, err := config.Parse("sim.yaml", []byte(yaml))
	if err != nil {
		s.t.Fatalf("config: %v", err)
	}
	return c
}

// create makes the host's Node (NewNode on the fake), without starting it.
func (h *simNode) create(cfg *config.Config) error {
	log := slog.New(h.logs)
	n, err := newNode(cfg, log, h, simReceiver{h}, simClock{h.net, h})
	if err != nil {
		return err
	}
	h.n = n
	h.held, h.heldQ = nil, nil
	return nil
}

// start creates and starts the Node, as Run does.
func (h *simNode) start(cfg *config.Config) {
	h.net.t.Helper()
	if err := h.create(cfg); err != nil {
		h.net.t.Fatalf("%s: %v", h.name, err)
	}
	h.run()
}

func (h *simNode) run() {
	ctx, cancel := context.WithCancel(context.Background())
	h.net.t.Cleanup(cancel)
	h.n.ctx = ctx
	h.trans, _ = h.n.Subscribe(10000)
	h.running, h.stopping = true, false
	h.n.start(h.net.now)
	h.after()
}

// stop stops the Node gracefully: it resigns and hands over, as on SIGTERM.
func (h *simNode) stop() {
	h.n.beginStop(h.net.now)
	h.stopping = true
	h.after()
}

// kill stops the Node dead: no advert, its addresses stay.
func (h *simNode) kill() { h.running = false }

// after is what the loop does after handling an event.
func (h *simNode) after() {
	h.n.syncHeld()
	h.n.flush()
	if h.stopping && !h.n.handingOver() {
		h.n.endStop()
		h.running, h.stopping = false, false
		h.n.closeIfaces()
		h.n.teardownVMACs()
	}
	for {
		select {
		case te, ok := <-h.trans:
			if !ok {
				return
			}
			h.history = append(h.history, te)
			continue
		default:
		}
		return
	}
}

// wake is when the Node wants its timer; zero for never.
func (h *simNode) wake() time.Time {
	if !h.running || h.n == nil {
		return time.Time{}
	}
	if h.stopping && !h.n.handingOver() {
		return time.Time{}
	}
	w := h.n.next
	if !w.IsZero() && w.Before(h.net.now) {
		w = h.net.now
	}
	return w
}

// run runs the simulation for d.
func (s *simNet) run(d time.Duration) { s.runUntil(s.now.Add(d)) }

func (s *simNet) runUntil(end time.Time) {
	for {
		s.steps++
		if s.steps > 5_000_000 {
			s.t.Fatal("simulation does not progress")
		}
		delivered := false
		for _, h := range s.nodes {
			if s.isBusy(h) || !h.running || len(h.events) == 0 {
				continue
			}
			c := h.events[0]
			h.events = h.events[1:]
			h.n.onAddrChange(c, s.now)
			h.after()
			delivered = true
		}
		for _, h := range s.nodes {
			if s.isBusy(h) || !h.running || h.routeEvents == 0 {
				continue
			}
			h.routeEvents = 0
			h.n.checkRoutes(s.now)
			h.after()
			delivered = true
		}
		if delivered {
			continue
		}
		var (
			at    time.Time
			frame = -1
			timer *simNode
		)
		for i, f := range s.frames {
			if !s.isBusy(f.to) {
				at, frame = f.at, i
				break
			}
		}
		for _, h := range s.nodes {
			if s.isBusy(h) {
				continue
			}
			if w := h.wake(); !w.IsZero() && (at.IsZero() || w.Before(at)) {
				at, frame, timer = w, -1, h
			}
		}
		later := -1
		for i, l := range s.later {
			if !s.isBusy(l.h) && (at.IsZero() || l.at.Before(at)) {
				at, frame, timer, later = l.at, -1, nil, i
			}
		}
		if at.IsZero() || at.After(end) {
			if end.After(s.now) {
				s.now = end
			}
			return
		}
		if at.After(s.now) {
			s.now = at
		}
		if later >= 0 {
			l := s.later[later]
			s.later = slices.Delete(s.later, later, later+1)
			l.fn()
			continue
		}
		if frame >= 0 {
			f := s.frames[frame]
			s.frames = slices.Delete(s.frames, frame, frame+1)
			f.to.deliver(f)
			continue
		}
		timer.n.armed = time.Time{}
		timer.wakes++
		timer.n.onTimer(s.now)
		timer.n.rescan()
		timer.after()
	}
}

func (h *simNode) deliver(f simFrame) {
	if !h.running {
		return
	}
	h.learnFrom(f)
	// The kernel's part: a datagram the held-back filter keeps waits
	// (holdback.go); any other wakes the loop, which reads those first.
	if vm := h.held[f.link]; vm != nil {
		if n, err := vm.Run(f.data); err != nil {
			h.net.t.Fatalf("%s: held-back filter on %s: %v", h.name, f.link, err)
		} else if n > 0 {
			h.heldQ = append(h.heldQ, f)
			h.heldFrames++
			return
		}
	}
	h.wakes++
	h.n.takeHeld()
	for _, ifc := range h.n.ifaces {
		if ifc.name == f.link && ifc.link != nil {
			simReceive(h.n, ifc, f)
		}
	}
	h.after()
}

// simClock is the simulation's time. SpinUntil lets the other hosts run
// until t while the spinning one waits: what a CPU spin does.
type simClock struct {
	s *simNet
	h *simNode
}

func (c simClock) Now() time.Time { return c.s.now }

func (c simClock) SpinUntil(t time.Time) time.Time {
	if !t.After(c.s.now) {
		return c.s.now
	}
	c.s.busy = append(c.s.busy, c.h)
	c.s.runUntil(t)
	c.s.busy = c.s.busy[:len(c.s.busy)-1]
	return c.s.now
}

func (s *simNet) isBusy(h *simNode) bool { return slices.Contains(s.busy, h) }

// simReceiver is the receive path on the segment: datagrams arrive as
// events; drain hands over those already there.
type simReceiver struct{ h *simNode }

func (simReceiver) attach(*Node, *iface)    {}
func (simReceiver) batches() <-chan rxBatch { return nil }

// holdBack runs the real filters (x/net/bpf's VM): the held socket's on
// delivery; the advert socket's is its complement.
func (r simReceiver) holdBack(ifc *iface, ads []heldAdvert) error {
	if r.h.held == nil {
		r.h.held = map[string]*bpf.VM{}
	}
	if len(ads) == 0 {
		delete(r.h.held, ifc.name)
		return nil
	}
	vm, err := bpf.NewVM(holdFilter(ads, filterKeep, filterDrop))
	if err != nil {
		return err
	}
	r.h.held[ifc.name] = vm
	return nil
}

func (r simReceiver) takeHeld(n *Node) {
	q := r.h.heldQ
	r.h.heldQ = nil
	for _, f := range q {
		for _, ifc := range n.ifaces {
			if ifc.name == f.link && ifc.link != nil {
				simReceive(n, ifc, f)
			}
		}
	}
}

func (r simReceiver) drain(n *Node) {
	r.takeHeld(n)
	s := r.h.net
	for i := 0; i < len(s.frames); {
		f := s.frames[i]
		if f.to != r.h || f.at.After(s.now) {
			i++
			continue
		}
		s.frames = slices.Delete(s.frames, i, i+1)
		for _, ifc := range n.ifaces {
			if ifc.name == f.link && ifc.link != nil {
				simReceive(n, ifc, f)
			}
		}
	}
}

// The host's Dataplane.

func (h *simNode) LookupLink(name string) (LinkInfo, error) {
	l, ok := h.links[name]
	if !ok {
		return LinkInfo{}, fmt.Errorf("route ip+net: no such network interface %s", name)
	}
	return *l, nil
}

func (h *simNode) OpenLink(l LinkInfo, fam Family) (Link, error) {
	if fam != FamilyIPv4 && fam != FamilyIPv6 && fam != FamilyBoth {
		return nil, fmt.Errorf("family %s", fam)
	}
	sl := &simLink{h: h, name: l.Name, mac: l.MAC}
	h.open[l.Name] = sl
	return sl, nil
}

func (h *simNode) OpenAnnouncer(l LinkInfo, fam Family) (Link, error) {
	if fam != FamilyIPv4 && fam != FamilyIPv6 && fam != FamilyBoth {
		return nil, fmt.Errorf("family %s", fam)
	}
	sl := &simLink{h: h, name: l.Name, mac: l.MAC, announceOnly: true}
	h.open[l.Name] = sl
	return sl, nil
}

func (h *simNode) AddAddr(index int, p netip.Prefix, label string) error {
	h.adds[p]++
	if err := h.failAdd[p]; err != nil {
		return fmt.Errorf("vip: add %s on interface %d: %w", p, index, err)
	}
	for _, a := range h.addrs[index] {
		if a.Prefix.Addr() == p.Addr() {
			if !a.Owned {
				return fmt.Errorf("vip: add %s on interface %d: %w", p, index, vip.ErrNotOurs)
			}
			return nil
		}
	}
	h.addrs[index] = append(h.addrs[index], vip.Addr{Prefix: p, Proto: vip.Proto, Owned: true})
	h.ops = append(h.ops, "addr+ "+p.Addr().String())
	h.labels[p] = label
	h.events = append(h.events, vip.Change{Index: index, Addr: p.Addr(), Added: true})
	h.addrLog = append(h.addrLog, simAddrChange{h.net.now, p.Addr(), true})
	return nil
}

func (h *simNode) RemoveAddr(index int, p netip.Prefix) error {
	for i, a := range h.addrs[index] {
		if a.Prefix != p {
			continue
		}
		if !a.Owned {
			return fmt.Errorf("vip: remove %s on interface %d: %w", p, index, vip.ErrNotOurs)
		}
		h.addrs[index] = slices.Delete(h.addrs[index], i, i+1)
		h.events = append(h.events, vip.Change{Index: index, Addr: p.Addr()})
		h.ops = append(h.ops, "addr- "+p.Addr().String())
		h.flushRoutesFrom(p.Addr())
		h.addrLog = append(h.addrLog, simAddrChange{h.net.now, p.Addr(), false})
		return nil
	}
	return nil
}

func (h *simNode) ListAddrs(index int) ([]vip.Addr, error) {
	return slices.Clone(h.addrs[index]), nil
}

func (h *simNode) Watch(ctx context.Context, _ chan<- vip.Change, _ chan<- LinkInfo) { <-ctx.Done() }
func (h *simNode) Close()                                                            {}

// has reports whether the host has address a on any link.
func (h *simNode) has(a string) bool {
	for _, as := range h.addrs {
		if slices.ContainsFunc(as, func(x vip.Addr) bool { return x.Prefix.Addr() == netip.MustParseAddr(a) }) {
			return true
		}
	}
	return false
}

// removeBehindBack removes address a as an administrator would.
func (h *simNode) removeBehindBack(a string) {
	ip := netip.MustParseAddr(a)
	h.addrs[2] = slices.DeleteFunc(h.addrs[2], func(x vip.Addr) bool { return x.Prefix.Addr() == ip })
	h.events = append(h.events, vip.Change{Index: 2, Addr: ip})
	h.flushRoutesFrom(ip)
}

// setLink changes a link's carrier and MAC and tells the Node.
func (h *simNode) setLink(name string, up bool, mac net.HardwareAddr) {
	l := h.links[name]
	l.Up = up
	if mac != nil {
		l.MAC = mac
	}
	if h.running {
		h.n.onLinkChange(*l, h.net.now)
		h.after()
	}
}

// simLink is a host's link opened on the segment.
type simLink struct {
	h      *simNode
	name   string
	mac    net.HardwareAddr
	queue  []simFrame
	closed bool
	// announceOnly: opened with OpenAnnouncer (VIPs, no adverts).
	announceOnly bool
}

func (l *simLink) Queue(msg []byte, src, dst netip.Addr, mac net.HardwareAddr) error {
	if l.announceOnly {
		return fmt.Errorf("%s carries VIPs only", l.name)
	}
	if familyOf(dst) == FamilyIPv6 {
		if mac == nil || dst != GroupV6 {
			mac = l.mac
		}
		l.queue = append(l.queue, simFrame{data: slices.Clone(msg), mac: mac.String(), six: true, src: src, dst: dst, hops: HopLimit})
		return nil
	}
	d := make([]byte, 20+len(msg))
	d[0] = 0x45
	binary.BigEndian.PutUint16(d[2:4], uint16(len(d)))
	d[8], d[9] = TTL, IPProtocol
	s4, d4 := src.As4(), dst.As4()
	copy(d[12:16], s4[:])
	copy(d[16:20], d4[:])
	copy(d[20:], msg)
	if mac == nil || dst != GroupV4 {
		mac = l.mac
	}
	l.queue = append(l.queue, simFrame{data: d, mac: mac.String()})
	return nil
}

func (l *simLink) Pending() bool { return len(l.queue) > 0 }

func (l *simLink) Flush() error {
	s := l.h.net
	q := l.queue
	l.queue = nil
	if l.closed || !l.h.links[l.name].Up || s.cut {
		return nil
	}
	for _, f := range q {
		s.sent = append(s.sent, simFrame{at: s.now, link: l.name, data: f.data, mac: f.mac, from: l.h.name, six: f.six, src: f.src, dst: f.dst, hops: f.hops})
		dst := f.dst
		if !f.six {
			dst = netip.AddrFrom4([4]byte(f.data[16:20]))
		}
		for _, o := range s.nodes {
			if o == l.h || !o.running || !o.links[l.name].Up {
				continue
			}
			if dst != GroupV4 && dst != GroupV6 && o.primary != dst && !(f.six && o.has(dst.String())) {
				continue
			}
			s.send(simFrame{at: s.now.Add(simDelay), to: o, link: l.name, data: f.data, mac: f.mac, six: f.six, src: f.src, dst: f.dst, hops: f.hops})
		}
	}
	return nil
}

func (s *simNet) send(f simFrame) {
	i := sort.Search(len(s.frames), func(i int) bool { return s.frames[i].at.After(f.at) })
	s.frames = slices.Insert(s.frames, i, f)
}

// inject has a router that is not simulated send an advert at time at to
// every host on eth0.
func (s *simNet) inject(at time.Time, from netip.Addr, ad Advert) {
	s.t.Helper()
	msg, err := ad.AppendMarshal(nil, ChecksumPseudoHeader, from, GroupV4)
	if err != nil {
		s.t.Fatal(err)
	}
	d := make([]byte, 20+len(msg))
	d[0] = 0x45
	binary.BigEndian.PutUint16(d[2:4], uint16(len(d)))
	d[8], d[9] = TTL, IPProtocol
	f4, g4 := from.As4(), GroupV4.As4()
	copy(d[12:16], f4[:])
	copy(d[16:20], g4[:])
	copy(d[20:], msg)
	for _, o := range s.nodes {
		s.send(simFrame{at: at, to: o, link: "eth0", data: d})
	}
}

// lastAddrChange is when host h last added (or removed) address a.
func (h *simNode) lastAddrChange(a string, added bool) time.Time {
	ip := netip.MustParseAddr(a)
	var at time.Time
	for _, c := range h.addrLog {
		if c.addr == ip && c.added == added {
			at = c.at
		}
	}
	return at
}

// became is when host h's instance last entered state st.
func (h *simNode) became(inst string, st State) time.Time {
	var at time.Time
	for _, te := range h.history {
		if te.Instance == inst && te.To == st {
			at = te.Time
		}
	}
	return at
}

func (l *simLink) Announce(addrs []netip.Addr) (int, error) {
	if l.closed {
		return 0, errors.New("closed")
	}
	s := l.h.net
	s.anns = append(s.anns, simAnnounce{at: s.now, node: l.h.name, link: l.name, addrs: slices.Clone(addrs), mac: l.mac.String()})
	l.h.ops = append(l.h.ops, "announce")
	s.upstreamsHearGARP(l, addrs)
	return 2 * len(addrs), nil
}

func (l *simLink) SetHardwareAddr(mac net.HardwareAddr) error { l.mac = mac; return nil }
func (l *simLink) Close()                                     { l.closed = true }

// Inspection.

func (h *simNode) inst(name string) *instance {
	h.net.t.Helper()
	for _, in := range h.n.insts {
		if in.cfg.Name == name {
			return in
		}
	}
	h.net.t.Fatalf("%s: no instance %s", h.name, name)
	return nil
}

func (h *simNode) state(name string) State { return h.inst(name).m.State() }

// announced counts the announcements of address a by host h since t.
func (s *simNet) announced(h *simNode, a string, since time.Time) int {
	ip := netip.MustParseAddr(a)
	c := 0
	for _, an := range s.anns {
		if an.node == h.name && !an.atMAC && !an.at.Before(since) && slices.Contains(an.addrs, ip) {
			c++
		}
	}
	return c
}

// holders lists the hosts that have address a.
func (s *simNet) holders(a string) []string {
	var hs []string
	for _, h := range s.nodes {
		if h.has(a) {
			hs = append(hs, h.name)
		}
	}
	return hs
}

// expect fails unless host h's instance is in state want.
func (h *simNode) expect(inst string, want State) {
	h.net.t.Helper()
	if got := h.state(inst); got != want {
		h.net.t.Fatalf("at %v: %s's %s is %v, want %v\nlog:\n%s", h.net.now.Sub(simT0), h.name, inst, got, want, h.logs.String())
	}
}

// simLog records a Node's log.
type simLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *simLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *simLog) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Level, r.Message)
	r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, " %s=%v", a.Key, a.Value); return true })
	l.mu.Lock()
	l.lines = append(l.lines, b.String())
	l.mu.Unlock()
	return nil
}
func (l *simLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *simLog) WithGroup(string) slog.Handler      { return l }

func (l *simLog) has(sub string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.lines {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func (l *simLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}
