package vrrp

import (
	"net/netip"
	"testing"
	"time"

	"golang.org/x/net/bpf"
)

// holdDatagram is an IPv4 datagram as a raw socket receives it.
func holdDatagram(ttl byte, ihl int, src, dst netip.Addr, msg []byte) []byte {
	d := make([]byte, ihl+len(msg))
	d[0] = 0x40 | byte(ihl/4)
	total := len(d)
	d[2], d[3] = byte(total>>8), byte(total)
	d[4], d[5] = 0x12, 0x34 // an identification that differs between repeats
	d[8], d[9] = ttl, 112
	d[10], d[11] = 0xab, 0xcd // and a header checksum
	s, t := src.As4(), dst.As4()
	copy(d[12:], s[:])
	copy(d[16:], t[:])
	copy(d[ihl:], msg)
	return d
}

// The held-back filter keeps the adverts from the source of one it was
// given, to its destination, with its VRID and priority (whatever their
// IP identification and header checksum, and whatever else their message
// says: the loop handles them in full when it reads them), and nothing
// else; the advert socket's is its complement.
func TestHoldFilter(t *testing.T) {
	src, src2 := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.3")
	group := GroupV4
	ad := func(vrid, prio byte) []byte {
		a := Advert{Version: 3, VRID: vrid, Priority: prio, Interval: 100 * time.Millisecond, Addresses: []netip.Addr{netip.MustParseAddr("198.18.0.100")}}
		b, err := a.AppendMarshal(nil, ChecksumPseudoHeader, src, group)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	m51, m52 := ad(51, 150), ad(52, 150)
	held := []heldAdvert{{src, group, m51}, {src, group, m52}}
	big := make([]byte, maxHeldMsg)
	copy(big, m51)
	heldBig := []heldAdvert{{src, group, big}}
	flip := func(b []byte, i int) []byte { c := append([]byte(nil), b...); c[i] ^= 1; return c }
	for _, tc := range []struct {
		name string
		ads  []heldAdvert
		d    []byte
		kept bool
	}{
		{"a repeat", held, holdDatagram(255, 20, src, group, m51), true},
		{"the second advert's repeat", held, holdDatagram(255, 20, src, group, m52), true},
		{"another priority", held, holdDatagram(255, 20, src, group, ad(51, 0)), false},
		{"the last byte differs", held, holdDatagram(255, 20, src, group, flip(m51, len(m51)-1)), true},
		{"another VRID", held, holdDatagram(255, 20, src, group, ad(53, 150)), false},
		{"the first byte differs", held, holdDatagram(255, 20, src, group, flip(m51, 0)), true},
		{"another source", held, holdDatagram(255, 20, src2, group, m51), false},
		{"unicast to us", held, holdDatagram(255, 20, src, src2, m51), false},
		{"TTL 254", held, holdDatagram(254, 20, src, group, m51), false},
		{"IP options", held, holdDatagram(255, 24, src, group, m51), false},
		{"longer", held, holdDatagram(255, 20, src, group, append(append([]byte(nil), m51...), 0, 0, 0, 0)), true},
		{"shorter", held, holdDatagram(255, 20, src, group, m51[:len(m51)-4]), true},
		{"shorter than a VRRP header", held, holdDatagram(255, 20, src, group, m51[:7]), false},
		{"nothing held", nil, holdDatagram(255, 20, src, group, m51), false},
		{"the longest message held", heldBig, holdDatagram(255, 20, src, group, big), true},
		{"the longest message, its last word differs", heldBig, holdDatagram(255, 20, src, group, flip(big, maxHeldMsg-1)), true},
		{"the longest message, another priority", heldBig, holdDatagram(255, 20, src, group, flip(big, 2)), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, sock := range []struct {
				name         string
				match, other uint32
				want         bool
			}{{"held socket", filterKeep, filterDrop, tc.kept}, {"advert socket", filterDrop, filterKeep, !tc.kept}} {
				prog, err := bpf.Assemble(holdFilter(tc.ads, sock.match, sock.other))
				if err != nil {
					t.Fatalf("%s: %v", sock.name, err)
				}
				ins, _ := bpf.Disassemble(prog)
				vm, err := bpf.NewVM(ins)
				if err != nil {
					t.Fatalf("%s: %v", sock.name, err)
				}
				n, err := vm.Run(tc.d)
				if err != nil {
					t.Fatal(err)
				}
				if (n > 0) != sock.want {
					t.Errorf("%s kept %d bytes, want kept %v", sock.name, n, sock.want)
				}
			}
		})
	}
	if holdable(src, group, make([]byte, maxHeldMsg+4)) || holdable(src, group, make([]byte, 30)) || !holdable(src, group, m51) {
		t.Error("holdable: longest, unaligned or ordinary message judged wrongly")
	}
}

// runFilter runs the classic BPF program ins on datagram d.
func runFilter(t *testing.T, ins []bpf.Instruction, d []byte) int {
	t.Helper()
	prog, err := bpf.Assemble(ins)
	if err != nil {
		t.Fatal(err)
	}
	dis, _ := bpf.Disassemble(prog)
	vm, err := bpf.NewVM(dis)
	if err != nil {
		t.Fatal(err)
	}
	n, err := vm.Run(d)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// manyAdverts is one advert per VRID 1..count from src, each with vips
// addresses.
func manyAdverts(t *testing.T, src netip.Addr, count, vips int, prio byte) []heldAdvert {
	t.Helper()
	var ads []heldAdvert
	for vrid := 1; vrid <= count; vrid++ {
		a := Advert{Version: 3, VRID: uint8(vrid), Priority: prio, Interval: 20 * time.Millisecond}
		for i := range vips {
			a.Addresses = append(a.Addresses, netip.AddrFrom4([4]byte{198, 19, byte(vrid), byte(i + 1)}))
		}
		b, err := a.AppendMarshal(nil, ChecksumPseudoHeader, src, GroupV4)
		if err != nil {
			t.Fatal(err)
		}
		ads = append(ads, heldAdvert{src, GroupV4, b})
	}
	return ads
}

// Every instance of a 255-instance backup with one VIP each is held back
// by one filter within the kernel's limit, from two masters at once; each
// advert's repeat is kept and the same advert with another priority, or
// from the other master, is not. Adverts past the budget are left out in
// order (heldFit), and what is left fits.
func TestHoldFilterManyInstances(t *testing.T) {
	m1, m2 := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2")
	ads := append(manyAdverts(t, m1, 200, 1, 150), manyAdverts(t, m2, 255, 1, 150)[200:]...)
	fit := heldFit(ads)
	if len(fit) != len(ads) {
		t.Fatalf("%d of %d one-VIP adverts fit, want all", len(fit), len(ads))
	}
	ins := holdFilter(fit, filterKeep, filterDrop)
	if len(ins) > maxHeldInsns {
		t.Fatalf("filter of %d instructions, want at most %d", len(ins), maxHeldInsns)
	}
	other := append(manyAdverts(t, m1, 255, 1, 100), manyAdverts(t, m2, 200, 1, 150)...)
	for i, a := range fit {
		if n := runFilter(t, ins, holdDatagram(255, 20, a.src, a.dst, a.msg)); n == 0 {
			t.Fatalf("advert %d (VRID %d from %s) not held", i, a.msg[1], a.src)
		}
	}
	for _, a := range other {
		if n := runFilter(t, ins, holdDatagram(255, 20, a.src, a.dst, a.msg)); n != 0 {
			t.Fatalf("VRID %d from %s, priority %d, held: not one of the adverts", a.msg[1], a.src, a.msg[2])
		}
	}
	for _, d := range [][]byte{
		holdDatagram(254, 20, m1, GroupV4, fit[0].msg),
		holdDatagram(255, 24, m1, GroupV4, fit[0].msg),
		holdDatagram(255, 20, m1, m2, fit[0].msg),
	} {
		if n := runFilter(t, ins, d); n != 0 {
			t.Error("a datagram with another TTL, header length or destination was held")
		}
	}
	// Adverts of as many priorities as VRIDs, each its own group: the
	// budget takes the first ones, in order.
	var many []heldAdvert
	for vrid := 1; vrid <= 255; vrid++ {
		many = append(many, manyAdverts(t, m1, vrid, 1, byte(vrid))[vrid-1])
	}
	fit = heldFit(many)
	if len(fit) == 0 || len(fit) == len(many) {
		t.Fatalf("%d of %d adverts of distinct priorities fit, want some but not all", len(fit), len(many))
	}
	for i := range fit {
		if !fit[i].equal(many[i]) {
			t.Fatalf("heldFit kept advert %d out of order", i)
		}
	}
	if n := len(holdFilter(fit, filterDrop, filterKeep)); n > maxHeldInsns {
		t.Errorf("filter of the fitting adverts: %d instructions, want at most %d", n, maxHeldInsns)
	}
	if n := runFilter(t, holdFilter(fit, filterKeep, filterDrop), holdDatagram(255, 20, m1, GroupV4, fit[len(fit)-1].msg)); n == 0 {
		t.Error("the last advert that fits is not held")
	}
}

// A backup whose master is alive reads its adverts once per
// Master_Down_Interval, not once each, and is told everything as before:
// the counters are exact whenever they are read, a takeover is on time
// (TestScenarioKillTakeoverAtMasterDown and the others run with the
// adverts held back), and an advert that differs in any way (here the
// master's new priority) is read at once.
func TestScenarioHeldBackAdverts(t *testing.T) {
	s, a, b := scnPair(t, 150, 100)
	sent0 := scnStatus(t, a).Counters.AdvertsSent
	recv0 := scnStatus(t, b).Counters.AdvertsReceived
	wakes0, held0 := b.wakes, b.heldFrames
	s.run(10 * time.Second)
	sent := scnStatus(t, a).Counters.AdvertsSent - sent0
	recv := scnStatus(t, b).Counters.AdvertsReceived - recv0
	wakes, held := b.wakes-wakes0, b.heldFrames-held0
	mdi := MasterDownInterval(3, 100, 100*time.Millisecond)
	t.Logf("10 s of 100 ms adverts: a sent %d, b received %d, %d of them held back; b woke %d times (Master_Down_Interval %v)", sent, recv, held, wakes, mdi)
	if sent < 99 || recv != sent {
		t.Errorf("a sent %d adverts, b received %d: want the same, about 100", sent, recv)
	}
	if uint64(held) < sent-1 {
		t.Errorf("%d of %d adverts held back", held, sent)
	}
	if max := int(10*time.Second/(mdi-100*time.Millisecond)) + 2; wakes > max {
		t.Errorf("b woke %d times in 10 s, want at most %d (one per Master_Down_Interval)", wakes, max)
	}
	b.expect("web", StateBackup)

	// The master's priority changes: the backup hears the new advert at
	// once, then holds its repeats back.
	if err := a.n.reload(s.config(scnConfig(scnInstance("web", 51, 160))), s.now); err != nil {
		t.Fatal(err)
	}
	a.after()
	wakes0, held0 = b.wakes, b.heldFrames
	s.run(150 * time.Millisecond)
	if b.wakes == wakes0 {
		t.Error("the changed advert was held back")
	}
	if got := b.inst("web").m.MasterPriority(); got != 160 {
		t.Errorf("b knows the master's priority as %d, want 160", got)
	}
	s.run(time.Second)
	if b.heldFrames-held0 < 8 {
		t.Errorf("after the change, %d adverts held back in 1 s, want the repeats", b.heldFrames-held0)
	}
}

// On a real kernel: once an advert is held back, its repeats wait on the
// held socket with their arrival stamps, out of the advert socket's way,
// and any other datagram still reaches the advert socket; undone, the
// advert socket gets everything again.
func TestHoldBackSockets(t *testing.T) {
	inNetns(t, func() {
		c, msg, local := loopbackConn(t)
		defer c.Close()
		time.Sleep(50 * time.Millisecond) // the kernel's receive stamps on (TestReceivedIsArrivalTime)
		other := append([]byte(nil), msg...)
		other[2] = 99 // another priority (its checksum is not checked here)
		if err := c.HoldBack([]heldAdvert{{local, local, msg}}); err != nil {
			t.Fatal(err)
		}
		floor := time.Now()
		send := func(m []byte) {
			t.Helper()
			if err := c.SendTo(m, local, local); err != nil {
				t.Fatal(err)
			}
		}
		send(msg)
		sent := time.Now()
		send(other)
		time.Sleep(20 * time.Millisecond)
		main, held := NewRecvBatch(), NewRecvBatch()
		if err := c.ReadNow(main); err != nil {
			t.Fatal(err)
		}
		if err := c.ReadHeld(held); err != nil {
			t.Fatal(err)
		}
		if main.N != 1 || held.N != 1 {
			t.Fatalf("advert socket read %d, held socket %d; want 1 each", main.N, held.N)
		}
		if b, _, _, _, _ := ParseIPv4(main.Datagram(0)); b[2] != 99 {
			t.Errorf("the advert socket got priority %d, want the other advert (99)", b[2])
		}
		if b, _, _, _, _ := ParseIPv4(held.Datagram(0)); string(b) != string(msg) {
			t.Error("the held socket got another datagram than the held advert")
		}
		now := time.Now()
		if got := held.ReceivedSince(0, now, floor, false); got.Before(floor) || got.After(sent) {
			t.Errorf("held advert dated %v after the filter was set, want before it was sent (%v)", got.Sub(floor), sent.Sub(floor))
		}
		if got := held.ReceivedSince(0, now, floor, true); !got.Equal(now) {
			t.Error("with the wall clock stepped, a held advert is not dated now")
		}
		// Undone: everything reaches the advert socket.
		if err := c.HoldBack(nil); err != nil {
			t.Fatal(err)
		}
		send(msg)
		time.Sleep(20 * time.Millisecond)
		if err := c.ReadNow(main); err != nil {
			t.Fatal(err)
		}
		if err := c.ReadHeld(held); err != nil {
			t.Fatal(err)
		}
		if main.N != 1 || held.N != 0 {
			t.Errorf("after HoldBack(nil): advert socket read %d, held socket %d; want 1 and 0", main.N, held.N)
		}

		// A change from one full set to another, too many to hold both
		// for a moment: the held socket ends with the new set and the
		// advert socket with the old one.
		fit := func(p byte) []heldAdvert {
			ads := manyAdverts(t, local, 255, 1, p)
			for i := range ads {
				ads[i].dst = local
			}
			return heldFit(ads)
		}
		old, next := fit(150), fit(140)
		if err := c.HoldBack(old); err != nil {
			t.Fatal(err)
		}
		if err := c.HoldBack(next); err != nil {
			t.Fatalf("switching %d held adverts for %d others: %v", len(old), len(next), err)
		}
		send(next[200].msg)
		send(old[200].msg)
		time.Sleep(20 * time.Millisecond)
		if err := c.ReadNow(main); err != nil {
			t.Fatal(err)
		}
		if err := c.ReadHeld(held); err != nil {
			t.Fatal(err)
		}
		if main.N != 1 || held.N != 1 {
			t.Fatalf("after the switch: advert socket read %d, held socket %d; want 1 each", main.N, held.N)
		}
		if b, _, _, _, _ := ParseIPv4(held.Datagram(0)); string(b) != string(next[200].msg) {
			t.Error("the held socket got another datagram than the new set's")
		}
	})
}
