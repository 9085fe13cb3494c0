package vrrp

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	mdarp "github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"golang.org/x/net/bpf"

	"github.com/vipd/vipd/arp"
)

// simARP is one link's ARP socket in simulated time: a probe is answered
// 1 ms later by the hosts that hold the address, and every frame, the
// segment's background included, goes through the kernel filter the
// watcher set (the real program, in x/net/bpf's VM) before it may wake
// the reader.
type simARP struct {
	t       *testing.T
	now     *time.Time
	holders map[netip.Addr]net.HardwareAddr
	queue   []simARPFrame
	vm      *bpf.VM
	probes  int
}

type simARPFrame struct {
	at time.Time
	b  []byte
}

func arpFrame(t *testing.T, op mdarp.Operation, mac net.HardwareAddr, sender, target netip.Addr) []byte {
	t.Helper()
	p, err := mdarp.NewPacket(op, mac, sender, ethernet.Broadcast, target)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	f := &ethernet.Frame{Destination: ethernet.Broadcast, Source: mac, EtherType: ethernet.EtherTypeARP, Payload: pb}
	b, err := f.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (f *simARP) Read() (arp.Seen, error) { return arp.Seen{}, io.EOF }
func (f *simARP) Close() error            { return nil }

func (f *simARP) Probe(ip netip.Addr) error {
	f.probes++
	if m, ok := f.holders[ip]; ok {
		f.queue = append(f.queue, simARPFrame{f.now.Add(time.Millisecond), arpFrame(f.t, mdarp.OperationReply, m, ip, netip.MustParseAddr("0.0.0.0"))})
	}
	return nil
}

func (f *simARP) SetFilter(addrs []netip.Addr, known []arp.Claim) error {
	raw, err := arp.FilterExcept(addrs, known)
	if err != nil {
		return err
	}
	ins, ok := bpf.Disassemble(raw)
	if !ok {
		f.t.Fatal("filter does not disassemble")
	}
	f.vm, err = bpf.NewVM(ins)
	return err
}

// wakeCount is what woke the watcher (and the reader) in a simulated run,
// and, for comparison, what the broad filter of the first version would
// have let through: its own timer, frames, the loop's ticks (which ride on
// the loop's wake-ups) and the loop's wake-ups for a burst alone.
type wakeCount struct {
	timer, frames, broadFrames, probes, reports, ticks, loopWakes int
}

// simulateWatcher runs a conflict watcher for d in simulated time on one
// link with status s, the segment carrying background requests per second
// from other hosts, the loop awake every loopEvery (its adverts) and
// signalling the bursts as the Node does (probeClock), and counts the
// wake-ups.
func simulateWatcher(t *testing.T, s Status, holders map[netip.Addr]net.HardwareAddr, background int, loopEvery, d time.Duration) wakeCount {
	t0 := time.Unix(1000, 0)
	now := t0
	link := &simARP{t: t, now: &now, holders: holders}
	broad, ok := bpf.Disassemble(mustFilter(t, nil))
	if !ok {
		t.Fatal("broad filter")
	}
	broadVM, err := bpf.NewVM(broad)
	if err != nil {
		t.Fatal(err)
	}
	report := make(chan conflictReport, 1024)
	var gap time.Duration
	cw := newConflictWatch(slog.New(slog.NewTextHandler(io.Discard, nil)), func(string) (arpWatch, error) { return link, nil },
		func(context.Context) (Status, error) { return s, nil }, report, nil, nil, func(g time.Duration) { gap = g },
		func() time.Duration { return 2 * time.Second }, func() time.Time { return now })
	var pc probeClock
	// The loop's wake-ups: its own (adverts, at a phase of their own), or
	// the late deadline of a burst when none came.
	loopAt := t0.Add(loopEvery / 3)
	nextLoop := func() (time.Time, bool) {
		if l := pc.late(gap); !l.IsZero() && l.Before(loopAt) {
			return l, true
		}
		return loopAt, false
	}
	ctx := context.Background()
	// The segment's other hosts: ordinary requests, spread over each second.
	for i := range int(d/time.Second) * background {
		at := t0.Add(time.Duration(i) * time.Second / time.Duration(background))
		src := netip.AddrFrom4([4]byte{198, 18, 0, byte(150 + i%50)})
		link.queue = append(link.queue, simARPFrame{at, arpFrame(t, mdarp.OperationRequest, net.HardwareAddr{2, 0, 0, 0, 1, byte(i % 50)}, src, netip.MustParseAddr("198.18.0.1"))})
	}
	var c wakeCount
	if !cw.refresh(ctx) {
		t.Fatal("refresh")
	}
	end := t0.Add(d)
	for {
		slices.SortStableFunc(link.queue, func(a, b simARPFrame) int { return a.at.Compare(b.at) })
		next := cw.next()
		if l, forced := nextLoop(); next.IsZero() || l.Before(next) {
			if len(link.queue) == 0 || l.Before(link.queue[0].at) {
				if l.After(end) {
					break
				}
				now = l
				if forced {
					c.loopWakes++
				} else {
					loopAt = loopAt.Add(loopEvery)
				}
				if pc.due(now, gap) {
					c.ticks++
					cw.onTick(now)
				}
				continue
			}
		}
		if len(link.queue) > 0 && (next.IsZero() || !link.queue[0].at.After(next)) {
			f := link.queue[0]
			link.queue = link.queue[1:]
			if f.at.After(end) {
				break
			}
			now = f.at
			if n, _ := broadVM.Run(f.b); n > 0 {
				c.broadFrames++
			}
			if n, _ := link.vm.Run(f.b); n == 0 {
				continue // dropped in the kernel: nobody wakes
			}
			seen, ok := arp.ParseFrame(f.b)
			if !ok {
				t.Fatalf("frame not parsed")
			}
			c.frames++
			cw.onFrame(linkFrame{"eth0", seen}, now)
			continue
		}
		if next.IsZero() || next.After(end) {
			break
		}
		if next.After(now) {
			now = next
		}
		c.timer++
		cw.onTimer(ctx, now)
	}
	c.probes = link.probes
	c.reports = len(report)
	return c
}

func mustFilter(t *testing.T, addrs []netip.Addr) []bpf.RawInstruction {
	t.Helper()
	if addrs == nil {
		addrs = make([]netip.Addr, arp.MaxFilterAddrs+1)
		for i := range addrs {
			addrs[i] = netip.AddrFrom4([4]byte{198, 19, 0, byte(i)})
		}
	}
	raw, err := arp.FilterFor(addrs)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// The idle cost of conflict detection: one instance, a segment with 20 ARP
// requests a second from other hosts, 20 s. The probe bursts (one round
// every 2 to 3 s) ride on the loop's wake-ups for its 1 s adverts, so the
// loop never wakes for a burst alone; with 5 s adverts it does, about once
// a round. Once the master's MAC is learned, its answers to the probes
// stay in the kernel, as do the segment's other frames and this node's
// own; the watcher's timer serves the start only (the master's MAC
// learned, its first answer judged once settled). The first version woke
// 4 times a second for its ticker, took a status snapshot from the loop
// every 2 s, and woke for every ARP frame on the segment; the second woke
// for its timer every round and for each answer to its probes.
func TestConflictWatchIdleWakeups(t *testing.T) {
	const d = 20 * time.Second
	own := []InterfaceStatus{{Name: "eth0", MAC: macOwn}}
	vipStatus := []VIPStatus{{Address: netip.PrefixFrom(cvip, 32), Interface: "eth0"}}
	backup := Status{Interfaces: own, Instances: []InstanceStatus{{Name: "web", Interface: "eth0", State: StateBackup, MasterAddr: cmasterIP, VIPs: vipStatus}}}
	master := Status{Interfaces: own, Instances: []InstanceStatus{{Name: "web", Interface: "eth0", State: StateMaster, VIPs: vipStatus}}}
	// The master answers for the VIP and for its own address; a master's
	// own kernel does not answer its own probe.
	heldByMaster := map[netip.Addr]net.HardwareAddr{cvip: macMaster, cmasterIP: macMaster}
	for _, tc := range []struct {
		name           string
		s              Status
		holders        map[netip.Addr]net.HardwareAddr
		loopEvery      time.Duration
		maxTimer       int
		maxFrames      int
		minProbes      int
		maxProbes      int
		maxLoopWakes   int
		minLoopWakes   int
		probesPerRound int
	}{
		// One more probe at start, for the master's MAC.
		{"backup", backup, heldByMaster, time.Second, 2, 3, 2 * 7, 2*10 + 1, 0, 0, 2},
		{"master", master, map[netip.Addr]net.HardwareAddr{}, time.Second, 0, 0, 7, 10, 0, 0, 1},
		{"master, 5 s adverts", master, map[netip.Addr]net.HardwareAddr{}, 5 * time.Second, 0, 0, 7, 10, 7, 3, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := simulateWatcher(t, tc.s, tc.holders, 20, tc.loopEvery, d)
			t.Logf("%s, %v: timer %d, ticks %d, loop wake-ups for a burst alone %d, frames %d (broad filter: %d), probes %d, snapshots 1; first version: ticker %d, snapshots %d, frames %d",
				tc.name, d, c.timer, c.ticks, c.loopWakes, c.frames, c.broadFrames, c.probes, int(d/(250*time.Millisecond)), int(d/(2*time.Second)), c.broadFrames)
			if c.timer > tc.maxTimer || c.frames > tc.maxFrames || c.probes < tc.minProbes || c.probes > tc.maxProbes || c.reports != 0 ||
				c.loopWakes > tc.maxLoopWakes || c.loopWakes < tc.minLoopWakes {
				t.Errorf("timer %d (max %d), frames %d (max %d), probes %d (want %d..%d), loop wake-ups %d (want %d..%d), reports %d (want 0)",
					c.timer, tc.maxTimer, c.frames, tc.maxFrames, c.probes, tc.minProbes, tc.maxProbes, c.loopWakes, tc.minLoopWakes, tc.maxLoopWakes, c.reports)
			}
			if c.broadFrames < 20*int(d/time.Second) {
				t.Errorf("the broad filter passed only %d frames: the background is not simulated", c.broadFrames)
			}
		})
	}
}

// The loop signals the conflict watcher only when something it follows
// changes: never in steady state (a backup hearing adverts, a master
// sending them), once for a failover on each node, for another master
// heard by a backup, for a reload and for a new MAC.
func TestConflictKickOnlyOnChange(t *testing.T) {
	s := newSimNet(t)
	a := s.host("a", "10.0.0.1")
	b := s.host("b", "10.0.0.2")
	c := s.host("c", "10.0.0.3")
	inst := func(prio int) string { return scnConfig(scnInstance("web", 51, prio, "vips: [198.51.100.10]")) }
	a.start(s.config(inst(150)))
	b.start(s.config(inst(100)))
	s.run(4 * time.Second)
	a.expect("web", StateMaster)
	b.expect("web", StateBackup)
	kicked := func(h *simNode) bool {
		select {
		case <-h.n.conflictKick:
			return true
		default:
			return false
		}
	}
	kicked(a)
	kicked(b)
	// Steady state: 20 s of 100 ms adverts, checked every 100 ms.
	for range 200 {
		s.run(100 * time.Millisecond)
		if kicked(a) || kicked(b) {
			t.Fatalf("signalled at %v in steady state", s.now.Sub(simT0))
		}
	}
	// A failover: b becomes master.
	a.kill()
	s.run(time.Second)
	b.expect("web", StateMaster)
	if !kicked(b) {
		t.Error("b became master: no signal")
	}
	// Another master, heard by a backup: c takes over from b with a
	// higher priority; b, now backup, knows c as master.
	c.start(s.config(inst(200)))
	s.run(time.Second)
	b.expect("web", StateBackup)
	kicked(b)
	kicked(c)
	for range 10 {
		s.run(100 * time.Millisecond)
		if kicked(b) || kicked(c) {
			t.Fatal("signalled in steady state with c as master")
		}
	}
	// A reload, even one that changes nothing the watcher sees, is one
	// signal: the watcher cannot tell without a snapshot.
	if err := b.n.reload(s.config(inst(100)), s.now); err != nil {
		t.Fatal(err)
	}
	b.after()
	if !kicked(b) {
		t.Error("reload: no signal")
	}
	if got := time.Duration(b.n.conflictEvery.Load()); got != 2*time.Second {
		t.Errorf("probe interval %v, want the default 2s", got)
	}
	if err := b.n.reload(s.config("conflict_probe_interval: 0\n"+inst(100)), s.now); err != nil {
		t.Fatal(err)
	}
	b.after()
	if !kicked(b) || b.n.conflictEvery.Load() != 0 {
		t.Errorf("reload to no probes: signalled and interval %v", time.Duration(b.n.conflictEvery.Load()))
	}
	// A new MAC on the link.
	b.setLink("eth0", true, net.HardwareAddr{0x02, 0, 0, 0, 0, 0x77})
	if !kicked(b) {
		t.Error("new MAC: no signal")
	}
}
