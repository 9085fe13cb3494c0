package vrrp

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mdarp "github.com/mdlayher/arp"

	"github.com/vipd/vipd/arp"
)

var (
	cvip      = netip.MustParseAddr("198.18.0.100")
	cmasterIP = netip.MustParseAddr("198.18.0.12")
	macOwn    = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x11}
	macMaster = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x12}
	macOther  = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x99}
	macOther2 = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x98}
)

func reply(mac net.HardwareAddr, ip netip.Addr) arp.Seen {
	return arp.Seen{Op: mdarp.OperationReply, MAC: [6]byte(mac), IP: ip}
}

func backupTarget() conflictTarget {
	return conflictTarget{instance: "web", vip: cvip, link: "eth0", masterIP: cmasterIP}
}

func ownMACs() map[string]net.HardwareAddr { return map[string]net.HardwareAddr{"eth0": macOwn} }

// A backup: the master's MAC (learned from its answer for its own address)
// is expected, a third MAC is a conflict once settled, and it clears after
// it was not heard for clearAfter.
func TestConflictBackupSeesThirdMAC(t *testing.T) {
	d := newConflictDetector(time.Second, 6*time.Second)
	t0 := time.Unix(1000, 0)
	d.set([]conflictTarget{backupTarget()}, ownMACs())
	d.observe("eth0", reply(macMaster, cmasterIP), t0)
	d.observe("eth0", reply(macMaster, cvip), t0)
	d.observe("eth0", reply(macOther, cvip), t0)
	d.observe("eth0", reply(macOwn, cvip), t0) // our own never counts
	if due := d.due(); !due.Equal(t0.Add(time.Second)) {
		t.Fatalf("due = %v, want the new MAC's settle time %v", due, t0.Add(time.Second))
	}
	if chs := d.evaluate(t0.Add(500 * time.Millisecond)); len(chs) != 0 {
		t.Fatalf("judged before settling: %+v", chs)
	}
	if due := d.due(); !due.Equal(t0.Add(time.Second)) {
		t.Fatalf("after an early evaluation due = %v, want still the settle time %v", due, t0.Add(time.Second))
	}
	chs := d.evaluate(t0.Add(time.Second))
	if len(chs) != 1 || len(chs[0].appeared) != 1 || chs[0].appeared[0].String() != macOther.String() ||
		len(chs[0].conflicts) != 1 || !chs[0].conflicts[0].Since.Equal(t0) || chs[0].instance != "web" || chs[0].vip != cvip {
		t.Fatalf("evaluate = %+v, want %s appeared since %v", chs, macOther, t0)
	}
	// Nothing new to judge: the next thing due is the conflict's clearing.
	if due := d.due(); !due.Equal(t0.Add(6*time.Second + 1)) {
		t.Errorf("due = %v, want the clearing just after %v", due, t0.Add(6*time.Second))
	}
	// Heard again: still one conflict, no change reported.
	d.observe("eth0", reply(macOther, cvip), t0.Add(4*time.Second))
	if chs := d.evaluate(t0.Add(5 * time.Second)); len(chs) != 0 {
		t.Fatalf("a conflict heard again changed: %+v", chs)
	}
	if chs := d.evaluate(t0.Add(10 * time.Second)); len(chs) != 0 {
		t.Fatalf("cleared 6 s after last heard: %+v", chs)
	}
	chs = d.evaluate(d.due())
	if len(chs) != 1 || len(chs[0].cleared) != 1 || chs[0].cleared[0].String() != macOther.String() || len(chs[0].conflicts) != 0 {
		t.Fatalf("evaluate = %+v, want %s cleared", chs, macOther)
	}
	if due := d.due(); !due.IsZero() {
		t.Errorf("nothing left to judge, yet due at %v", due)
	}
}

// A backup that does not know the master's MAC yet decides nothing: the
// only MAC answering may well be the master's.
func TestConflictWaitsForMasterMAC(t *testing.T) {
	d := newConflictDetector(time.Second, 6*time.Second)
	t0 := time.Unix(1000, 0)
	d.set([]conflictTarget{backupTarget()}, ownMACs())
	d.observe("eth0", reply(macMaster, cvip), t0)
	if chs := d.evaluate(t0.Add(2 * time.Second)); len(chs) != 0 {
		t.Fatalf("judged without the master's MAC: %+v", chs)
	}
	if ps := d.unknownMasters(); len(ps) != 1 || ps[0] != (probeTarget{"eth0", cmasterIP}) {
		t.Errorf("unknownMasters = %v, want the master's address", ps)
	}
	if due := d.due(); !due.IsZero() {
		t.Errorf("waiting for the master's MAC, yet due at %v", due)
	}
	d.observe("eth0", reply(macMaster, cmasterIP), t0.Add(2*time.Second))
	if ps := d.unknownMasters(); len(ps) != 0 {
		t.Errorf("unknownMasters = %v once the master answered", ps)
	}
	if due := d.due(); due.After(t0.Add(2 * time.Second)) {
		t.Errorf("the master's MAC learned, yet due only at %v", due)
	}
	if chs := d.evaluate(t0.Add(3 * time.Second)); len(chs) != 0 {
		t.Fatalf("the master's own MAC taken for a conflict: %+v", chs)
	}
	// No master known (this backup heard none): nothing new is decided.
	tn := backupTarget()
	tn.masterIP = netip.Addr{}
	d.set([]conflictTarget{tn}, ownMACs())
	d.observe("eth0", reply(macOther, cvip), t0.Add(3*time.Second))
	if chs := d.evaluate(t0.Add(5 * time.Second)); len(chs) != 0 {
		t.Fatalf("judged without a master: %+v", chs)
	}
}

// A failover: the new master's announcement heard before this node's state
// says it is master is forgotten when the state changes, not reported.
func TestConflictFailoverIsNotAConflict(t *testing.T) {
	d := newConflictDetector(time.Second, 6*time.Second)
	t0 := time.Unix(1000, 0)
	newMasterIP := netip.MustParseAddr("198.18.0.13")
	d.set([]conflictTarget{backupTarget()}, ownMACs())
	d.observe("eth0", reply(macMaster, cmasterIP), t0)
	d.observe("eth0", reply(macOther, cvip), t0) // the new master's gratuitous ARP
	// Its advert arrives; the next state names it before the MAC settled.
	nt := backupTarget()
	nt.masterIP = newMasterIP
	d.set([]conflictTarget{nt}, ownMACs())
	if chs := d.evaluate(t0.Add(2 * time.Second)); len(chs) != 0 {
		t.Fatalf("the new master's announcement reported: %+v", chs)
	}
	d.observe("eth0", reply(macOther, newMasterIP), t0.Add(2*time.Second))
	d.observe("eth0", reply(macOther, cvip), t0.Add(2*time.Second))
	if chs := d.evaluate(t0.Add(4 * time.Second)); len(chs) != 0 {
		t.Fatalf("the new master reported: %+v", chs)
	}
	// This node becomes master: the old master's late answer conflicts.
	mt := backupTarget()
	mt.masterIP, mt.master = netip.Addr{}, true
	d.set([]conflictTarget{mt}, ownMACs())
	d.observe("eth0", reply(macOther, cvip), t0.Add(5*time.Second))
	chs := d.evaluate(t0.Add(6 * time.Second))
	if len(chs) != 1 || chs[0].appeared[0].String() != macOther.String() {
		t.Fatalf("a master hearing another MAC: %+v, want it reported", chs)
	}
}

// A master: any MAC but its own is a conflict; a reported conflict that
// becomes the master's MAC (this node turned backup behind that master)
// clears; and one MAC replacing another is one change.
func TestConflictMasterAndChanges(t *testing.T) {
	d := newConflictDetector(0, 6*time.Second)
	t0 := time.Unix(1000, 0)
	mt := conflictTarget{instance: "web", vip: cvip, link: "eth0", master: true}
	d.set([]conflictTarget{mt}, ownMACs())
	d.observe("eth0", reply(macOther, cvip), t0)
	d.observe("eth0", reply(macOther2, cvip), t0.Add(time.Second))
	chs := d.evaluate(t0.Add(time.Second))
	if len(chs) != 1 || len(chs[0].appeared) != 2 || len(chs[0].conflicts) != 2 || chs[0].conflicts[0].MAC.String() != macOther.String() && chs[0].conflicts[1].MAC.String() != macOther.String() {
		t.Fatalf("evaluate = %+v, want two conflicts", chs)
	}
	// macOther stops; macOther2 goes on.
	d.observe("eth0", reply(macOther2, cvip), t0.Add(6*time.Second))
	chs = d.evaluate(t0.Add(7 * time.Second))
	if len(chs) != 1 || len(chs[0].cleared) != 1 || chs[0].cleared[0].String() != macOther.String() || len(chs[0].conflicts) != 1 {
		t.Fatalf("evaluate = %+v, want %s cleared and one left", chs, macOther)
	}
	// This node turns backup behind the host that had the conflicting MAC.
	bt := backupTarget()
	d.set([]conflictTarget{bt}, ownMACs())
	d.observe("eth0", reply(macOther2, cmasterIP), t0.Add(7*time.Second))
	chs = d.evaluate(t0.Add(7 * time.Second))
	if len(chs) != 1 || len(chs[0].cleared) != 1 || len(chs[0].conflicts) != 0 {
		t.Fatalf("evaluate = %+v, want the master's MAC cleared", chs)
	}
	// A VIP no longer watched is forgotten, and a frame for an address
	// nobody watches is ignored (the segment's addresses are not kept).
	d.set(nil, ownMACs())
	d.observe("eth0", reply(macOther, netip.MustParseAddr("198.18.0.50")), t0.Add(8*time.Second))
	if len(d.vips) != 0 || len(d.ipMAC) != 0 {
		t.Errorf("state kept for nothing watched: %d VIPs, %d MACs", len(d.vips), len(d.ipMAC))
	}
}

func TestConflictProbes(t *testing.T) {
	d := newConflictDetector(time.Second, 6*time.Second)
	other := conflictTarget{instance: "db", vip: netip.MustParseAddr("198.18.1.100"), link: "eth1", master: true}
	d.set([]conflictTarget{backupTarget(), other}, ownMACs())
	want := []probeTarget{{"eth0", cmasterIP}, {"eth0", cvip}, {"eth1", other.vip}}
	ps := d.probes()
	if len(ps) != len(want) {
		t.Fatalf("probes = %v, want %v", ps, want)
	}
	for i := range want {
		if ps[i] != want[i] {
			t.Errorf("probes = %v, want %v", ps, want)
		}
	}
}

// conflictTargets follows status: a master expects itself, a backup the
// master's address on the instance's link, and a VIP on another link of a
// backup is judged by no master.
func TestConflictTargets(t *testing.T) {
	s := Status{
		Interfaces: []InterfaceStatus{{Name: "eth0", MAC: macOwn}},
		Instances: []InstanceStatus{
			{Name: "web", Interface: "eth0", State: StateBackup, MasterAddr: cmasterIP, VIPs: []VIPStatus{
				{Address: netip.PrefixFrom(cvip, 32), Interface: "eth0"},
				{Address: netip.MustParsePrefix("198.18.2.100/32"), Interface: "eth1"}}},
			{Name: "db", Interface: "eth0", State: StateMaster, MasterAddr: netip.MustParseAddr("198.18.0.11"), VIPs: []VIPStatus{
				{Address: netip.MustParsePrefix("198.18.0.101/32"), Interface: "eth0"}}},
		},
	}
	ts, own := conflictTargets(s)
	if own["eth0"].String() != macOwn.String() {
		t.Errorf("own MACs %v", own)
	}
	want := []conflictTarget{
		{instance: "web", vip: cvip, link: "eth0", masterIP: cmasterIP},
		{instance: "web", vip: netip.MustParseAddr("198.18.2.100"), link: "eth1"},
		{instance: "db", vip: netip.MustParseAddr("198.18.0.101"), link: "eth0", master: true},
	}
	if len(ts) != len(want) {
		t.Fatalf("targets %+v, want %+v", ts, want)
	}
	for i := range want {
		if ts[i] != want[i] {
			t.Errorf("target %d = %+v, want %+v", i, ts[i], want[i])
		}
	}
}

// fakeARP is one link's ARP socket: frames come from a channel, probes are
// recorded, and a probe for an address some "host" holds is answered.
type fakeARP struct {
	mu      sync.Mutex
	in      chan arp.Seen
	closed  chan struct{}
	once    sync.Once
	probed  []netip.Addr
	holders map[netip.Addr][]net.HardwareAddr
	filters [][]netip.Addr
	known   [][]arp.Claim
}

func (f *fakeARP) Read() (arp.Seen, error) {
	select {
	case s := <-f.in:
		return s, nil
	case <-f.closed:
		return arp.Seen{}, io.EOF
	}
}

func (f *fakeARP) Probe(ip netip.Addr) error {
	f.mu.Lock()
	f.probed = append(f.probed, ip)
	hs := f.holders[ip]
	f.mu.Unlock()
	for _, m := range hs {
		select {
		case f.in <- reply(m, ip):
		default:
		}
	}
	return nil
}

func (f *fakeARP) SetFilter(addrs []netip.Addr, known []arp.Claim) error {
	f.mu.Lock()
	f.filters = append(f.filters, addrs)
	f.known = append(f.known, known)
	f.mu.Unlock()
	return nil
}

func (f *fakeARP) Close() error { f.once.Do(func() { close(f.closed) }); return nil }

func (f *fakeARP) setHolders(h map[netip.Addr][]net.HardwareAddr) {
	f.mu.Lock()
	f.holders = h
	f.mu.Unlock()
}

// The watcher goroutine: it probes, hears a third host's answer, reports
// the conflict to the loop, and reports it cleared once that host stops
// answering; it resends what the loop's copy lacks (after a reload); and
// it stops with its context, its readers closed.
func TestConflictWatchReports(t *testing.T) {
	fa := &fakeARP{in: make(chan arp.Seen, 64), closed: make(chan struct{})}
	fa.setHolders(map[netip.Addr][]net.HardwareAddr{cvip: {macMaster, macOther}, cmasterIP: {macMaster}})
	var mu sync.Mutex
	loopCopy := []VIPConflict(nil)
	status := func(context.Context) (Status, error) {
		mu.Lock()
		defer mu.Unlock()
		return Status{
			Interfaces: []InterfaceStatus{{Name: "eth0", MAC: macOwn}},
			Instances: []InstanceStatus{{Name: "web", Interface: "eth0", State: StateBackup, MasterAddr: cmasterIP,
				VIPs: []VIPStatus{{Address: netip.PrefixFrom(cvip, 32), Interface: "eth0", Conflicts: loopCopy}}}},
		}, nil
	}
	report := make(chan conflictReport, 16)
	kick, tick := make(chan struct{}, 1), make(chan struct{}, 1)
	var gap atomic.Int64
	cw := newConflictWatch(slog.New(slog.NewTextHandler(io.Discard, nil)), func(string) (arpWatch, error) { return fa, nil },
		status, report, kick, tick, func(d time.Duration) { gap.Store(int64(d)) }, func() time.Duration { return 20 * time.Millisecond }, time.Now)
	cw.det.settle = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); cw.run(ctx) }()
	// The loop's side: awake every 5 ms, it signals the bursts when due.
	ticker := make(chan struct{})
	go func() {
		defer close(ticker)
		var pc probeClock
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(5 * time.Millisecond):
			}
			if pc.due(time.Now(), time.Duration(gap.Load())) {
				select {
				case tick <- struct{}{}:
				default:
				}
			}
		}
	}()
	defer func() { cancel(); <-done; <-ticker }()

	wait := func(what string, ok func(conflictReport) bool) conflictReport {
		t.Helper()
		timeout := time.After(5 * time.Second)
		for {
			select {
			case r := <-report:
				mu.Lock()
				loopCopy = r.conflicts
				mu.Unlock()
				if ok(r) {
					return r
				}
			case <-timeout:
				t.Fatalf("no report: %s", what)
			}
		}
	}
	r := wait("conflict", func(r conflictReport) bool { return len(r.conflicts) == 1 })
	if r.instance != "web" || r.vip != cvip || r.conflicts[0].MAC.String() != macOther.String() {
		t.Fatalf("report %+v, want %s conflicting on %s", r, macOther, cvip)
	}
	// The socket's kernel filter keeps the VIP and the master's address,
	// except, once the master's MAC is learned, the claims it already
	// knows: this node's own announcements and the master's answers. The
	// third host's answers still pass.
	fa.mu.Lock()
	filters, known := slices.Clone(fa.filters), slices.Clone(fa.known)
	fa.mu.Unlock()
	if len(filters) != 2 || !slices.Equal(filters[0], []netip.Addr{cmasterIP, cvip}) || !slices.Equal(filters[1], filters[0]) {
		t.Errorf("filters set %v, want twice [%s %s]", filters, cmasterIP, cvip)
	}
	wantKnown := []arp.Claim{{IP: cmasterIP, MAC: [6]byte(macMaster)}, {IP: cvip, MAC: [6]byte(macOwn)}, {IP: cvip, MAC: [6]byte(macMaster)}}
	slices.SortFunc(wantKnown, func(a, b arp.Claim) int {
		if c := a.IP.Compare(b.IP); c != 0 {
			return c
		}
		return bytes.Compare(a.MAC[:], b.MAC[:])
	})
	if len(known) != 2 || !slices.Equal(known[1], wantKnown) {
		t.Errorf("known claims set %v, want last %v", known, wantKnown)
	}
	// A reload made the loop's copy anew: the watcher hands it over again.
	mu.Lock()
	loopCopy = nil
	mu.Unlock()
	kick <- struct{}{}
	wait("resend after reload", func(r conflictReport) bool { return len(r.conflicts) == 1 })
	fa.setHolders(map[netip.Addr][]net.HardwareAddr{cvip: {macMaster}, cmasterIP: {macMaster}})
	wait("cleared", func(r conflictReport) bool { return len(r.conflicts) == 0 })
	fa.mu.Lock()
	probed := len(fa.probed)
	fa.mu.Unlock()
	if probed == 0 {
		t.Error("no probe sent")
	}
	cancel()
	<-done
	select {
	case <-fa.closed:
	default:
		t.Error("the ARP socket was left open")
	}
}

// A backup takes the VRID's virtual MAC answering for the VIP as the
// master's (FRR, keepalived's use_vmac, or this node's announcement at
// the master's MAC as it yields), even when the master's own address
// answers with another MAC; a third MAC is still a conflict.
func TestConflictBackupAcceptsVirtualMAC(t *testing.T) {
	d := newConflictDetector(time.Second, 6*time.Second)
	t0 := time.Unix(1000, 0)
	bt := backupTarget()
	bt.vrid = 51
	d.set([]conflictTarget{bt}, ownMACs())
	vmac := virtualMAC(51, FamilyIPv4)
	d.observe("eth0", reply(macMaster, cmasterIP), t0)
	d.observe("eth0", reply(vmac, cvip), t0)
	d.observe("eth0", reply(macOther, cvip), t0)
	chs := d.evaluate(t0.Add(time.Second))
	if len(chs) != 1 || len(chs[0].conflicts) != 1 || chs[0].conflicts[0].MAC.String() != macOther.String() {
		t.Fatalf("evaluate = %+v, want only %s as a conflict, not the virtual MAC %s", chs, macOther, vmac)
	}
	// Without the VRID (the check off) the virtual MAC would be one.
	d = newConflictDetector(time.Second, 6*time.Second)
	d.set([]conflictTarget{backupTarget()}, ownMACs())
	d.observe("eth0", reply(macMaster, cmasterIP), t0)
	d.observe("eth0", reply(vmac, cvip), t0)
	if chs := d.evaluate(t0.Add(time.Second)); len(chs) != 1 || chs[0].conflicts[0].MAC.String() != vmac.String() {
		t.Fatalf("evaluate = %+v, want the virtual MAC as a conflict when the VRID is not known", chs)
	}
}

// With virtual_mac the VIPs live on the macvlan, which is down on a
// backup: they are watched on the parent, where every frame for them
// passes, and the VRID's virtual MAC answering for them is no conflict on
// either node (the master's own announcements come from it).
func TestConflictTargetsVirtualMAC(t *testing.T) {
	vip := netip.PrefixFrom(cvip, 32)
	s := Status{
		Interfaces: []InterfaceStatus{{Name: "eth0", MAC: macOwn}},
		Instances: []InstanceStatus{
			{Name: "web", Interface: "eth0", VirtualMACLink: "vrrp4.51", VRID: 51, State: StateBackup, MasterAddr: cmasterIP,
				VIPs: []VIPStatus{{Address: vip, Interface: "vrrp4.51"}}},
		},
	}
	ts, own := conflictTargets(s)
	want := conflictTarget{instance: "web", vip: cvip, link: "eth0", masterIP: cmasterIP, vrid: 51}
	if len(ts) != 1 || ts[0] != want {
		t.Fatalf("targets %+v, want [%+v]", ts, want)
	}
	vm := [6]byte(virtualMAC(51, FamilyIPv4))
	for _, master := range []bool{false, true} {
		s.Instances[0].State = StateBackup
		if master {
			s.Instances[0].State = StateMaster
		}
		ts, _ = conflictTargets(s)
		d := newConflictDetector(0, time.Minute)
		d.set(ts, own)
		if f, known := d.foreign(d.vips[vipKey{"eth0", cvip}], vm); f || !known {
			t.Errorf("master %v: the virtual MAC judged foreign %v (known %v)", master, f, known)
		}
		if !slices.Contains(d.known("eth0"), arp.Claim{IP: cvip, MAC: vm}) {
			t.Errorf("master %v: the virtual MAC's claim is not kept from the watcher: %v", master, d.known("eth0"))
		}
	}
}
