package vrrp

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"golang.org/x/net/bpf"
)

// The simulated host's senderLearner: a request waits for the next frame
// from its master for its VRID on its link; its answer comes back on the
// loop at once, or an error after its timeout.

type simLearn struct {
	req senderReq
	ctx context.Context
	n   *Node
}

func (h *simNode) learnSender(n *Node, ctx context.Context, req senderReq) {
	h.learns = append(h.learns, simLearn{req: req, ctx: ctx, n: n})
	s := h.net
	s.later = append(s.later, simLater{at: s.now.Add(req.Timeout), h: h, fn: func() {
		for i, l := range h.learns {
			if l.req == req {
				h.learns = slices.Delete(h.learns, i, i+1)
				n.onSenderMAC(senderMAC{Instance: req.Instance, Term: req.Term, From: req.From, Err: errors.New("timed out")})
				h.after()
				return
			}
		}
	}})
}

// learnFrom answers the requests that frame f, about to be delivered to
// h, matches. An IPv6 frame goes, with the IPv6 header the packet socket
// would see, through the host's own kernel filter (senderFilter6).
func (h *simNode) learnFrom(f simFrame) {
	var src netip.Addr
	if f.six {
		src = f.src
	} else {
		src = netip.AddrFrom4([4]byte(f.data[12:16]))
	}
	for i := 0; i < len(h.learns); i++ {
		l := h.learns[i]
		if l.ctx.Err() != nil {
			h.learns = slices.Delete(h.learns, i, i+1)
			i--
			continue
		}
		if l.req.Link != f.link || l.req.From.Is4() == f.six {
			continue
		}
		if f.six && !h.passes6(l.req, f) || !f.six && (l.req.From != src || f.data[21] != l.req.VRID || f.data[22] == 0) {
			continue
		}
		h.learns = slices.Delete(h.learns, i, i+1)
		i--
		mac, _ := net.ParseMAC(f.mac)
		r := senderMAC{Instance: l.req.Instance, Term: l.req.Term, From: l.req.From, MAC: mac}
		s := h.net
		s.later = append(s.later, simLater{at: s.now, h: h, fn: func() { l.n.onSenderMAC(r); h.after() }})
	}
}

// passes6 runs the IPv6 frame f, as the learner's packet socket gets it
// (the IPv6 header, then the VRRP message), through senderFilter6 for req.
func (h *simNode) passes6(req senderReq, f simFrame) bool {
	prog, err := senderFilter6(req.From.As16(), req.VRID)
	if err != nil {
		h.net.t.Fatal(err)
	}
	ins := make([]bpf.Instruction, len(prog))
	for i, r := range prog {
		ins[i] = r.Disassemble()
	}
	vm, err := bpf.NewVM(ins)
	if err != nil {
		h.net.t.Fatal(err)
	}
	n, err := vm.Run(ipv6Packet(f.src, f.dst, byte(f.hops), IPProtocol, f.data))
	if err != nil {
		h.net.t.Fatal(err)
	}
	return n > 0
}

// ipv6Packet is an IPv6 header from src to dst with next header nh,
// followed by payload.
func ipv6Packet(src, dst netip.Addr, hops, nh byte, payload []byte) []byte {
	b := make([]byte, 40, 40+len(payload))
	b[0] = 6 << 4
	b[4], b[5] = byte(len(payload)>>8), byte(len(payload))
	b[6], b[7] = nh, hops
	s, d := src.As16(), dst.As16()
	copy(b[8:], s[:])
	copy(b[24:], d[:])
	return append(b, payload...)
}

func (l *simLink) AnnounceAt(mac net.HardwareAddr, addrs []netip.Addr) (int, error) {
	if l.closed {
		return 0, errors.New("closed")
	}
	s := l.h.net
	s.anns = append(s.anns, simAnnounce{at: s.now, node: l.h.name, link: l.name, addrs: slices.Clone(addrs), mac: mac.String(), atMAC: true})
	l.h.ops = append(l.h.ops, "announce-at")
	frames := 0
	for _, a := range addrs {
		frames += 2 // ARP request and reply
		if familyOf(a) == FamilyIPv6 {
			frames-- // one neighbour advertisement
		}
	}
	return frames, nil
}

// healPair starts a (150) and b (100) with extra keys on both, cuts the
// segment until both are master, heals it, and returns when b yielded.
func healPair(t *testing.T, extra ...string) (s *simNet, a, b *simNode, yield time.Time) {
	s = newSimNet(t)
	a = s.host("a", "10.0.0.1")
	b = s.host("b", "10.0.0.2")
	a.start(s.config("state_dir: " + t.TempDir() + "\n" + scnConfig(scnInstance("web", 51, 150, extra...))))
	b.start(s.config("state_dir: " + t.TempDir() + "\n" + scnConfig(scnInstance("web", 51, 100, extra...))))
	s.run(4 * time.Second)
	a.expect("web", StateMaster)
	s.cut = true
	s.run(2 * time.Second)
	a.expect("web", StateMaster)
	b.expect("web", StateMaster)
	s.cut = false
	s.run(2 * time.Second)
	a.expect("web", StateMaster)
	b.expect("web", StateBackup)
	return s, a, b, b.became("web", StateBackup)
}

// atMACAnnounces are the announcements h made at another host's MAC.
func atMACAnnounces(s *simNet, h *simNode) []simAnnounce {
	var out []simAnnounce
	for _, an := range s.anns {
		if an.node == h.name && an.atMAC {
			out = append(out, an)
		}
	}
	return out
}

// Without virtual_mac, the master that yields at the heal announces the
// VIP at the winner's MAC, learned from the winner's next advert: at most
// one advert interval (and the segment's delay) after the yield, once.
func TestHealAnnouncesVIPAtNewMastersMAC(t *testing.T) {
	s, a, b, yield := healPair(t)
	got := atMACAnnounces(s, b)
	if len(got) != 1 {
		t.Fatalf("b's announcements at another MAC: %+v, want one", got)
	}
	an := got[0]
	want := a.links["eth0"].MAC.String()
	if an.mac != want || an.link != "eth0" || !slices.Equal(an.addrs, []netip.Addr{netip.MustParseAddr(scnVIP)}) {
		t.Errorf("b announced %v at %s on %s, want %s at a's %s on eth0", an.addrs, an.mac, an.link, scnVIP, want)
	}
	if d := an.at.Sub(yield); d < 0 || d > 100*time.Millisecond+2*simDelay {
		t.Errorf("b announced %v after it yielded, want within one advert interval", d)
	}
	if b.has(scnVIP) || !a.has(scnVIP) {
		t.Errorf("VIP on a %v, on b %v; want on a only", a.has(scnVIP), b.has(scnVIP))
	}
	if !b.logs.has("announced the VIPs at the new master's MAC") {
		t.Errorf("b's log does not say it announced at the new master's MAC:\n%s", b.logs)
	}
}

// With virtual_mac there is nothing to announce: the clients already have
// the virtual MAC, and the winner's adverts move the switches.
func TestHealWithVirtualMACAnnouncesNothingForOthers(t *testing.T) {
	s, _, b, _ := healPair(t, "virtual_mac: true")
	if got := atMACAnnounces(s, b); len(got) != 0 {
		t.Errorf("b announced at another MAC with virtual_mac: %+v", got)
	}
}

// A result that comes after the instance moved on is dropped: here b
// takes over again (a stopped) before a's next advert could be learned.
func TestHealLateMACIsDropped(t *testing.T) {
	s, a, b, _ := healPair(t)
	n0 := len(atMACAnnounces(s, b))
	// A yield and, before the answer, a takeover.
	in := b.inst("web")
	in.heal.stop()
	b.n.yielded(in, a.primary, []netip.Addr{netip.MustParseAddr(scnVIP)})
	term := in.heal.term
	b.learns = nil // the answer is late: it comes below
	a.stop()
	s.run(time.Second)
	b.expect("web", StateMaster)
	b.n.onSenderMAC(senderMAC{Instance: "web", Term: term, From: a.primary, MAC: a.links["eth0"].MAC})
	if got := atMACAnnounces(s, b); len(got) != n0 {
		t.Errorf("b, master again, announced at another MAC: %+v", got[n0:])
	}
}
