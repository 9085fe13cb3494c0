package vrrp

import (
	"bytes"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/vipd/vipd/arp"
)

// Conflict detection: a copy of a VIP on a host that is neither this node
// nor the current master (a forgotten alias, a decommissioned service)
// answers ARP for it, and clients land there at random. conflictDetector is
// the pure part: ARP frames heard on the links and the instances' state go
// in, with the time; the VIPs' conflicting MACs come out. It never acts on
// the address: the operator decides.

// VIPConflict is a MAC other than this node's and the current master's that
// claims a VIP (ARP replies, gratuitous announcements).
type VIPConflict struct {
	MAC   net.HardwareAddr
	Since time.Time // when it was first heard in this run of the conflict
}

// conflictTarget is one VIP to watch and whom it should be answered by.
type conflictTarget struct {
	instance string
	vip      netip.Addr
	link     string // the VIP's link
	// master: this node is master, so only its own MAC may answer.
	master bool
	// masterIP: this node is backup and the master advertises from this
	// address on the VIP's link; the MAC that answers for it is the
	// master's. Invalid when the master is unknown, or the VIP lives on
	// another link than the adverts (the master's MAC there is unknown):
	// then no new conflict is decided.
	masterIP netip.Addr
	// vrid: while this node is backup, the VRID's virtual MAC
	// (00:00:5e:00:01:<VRID>) answering for the VIP is the master's, as
	// FRR, keepalived's use_vmac and vipd's virtual_mac answer, and as
	// this node announces the VIP when it yields (heal.go).
	vrid uint8
	// six: the instance runs over IPv6, so its virtual MAC, which answers
	// for its IPv4 VIPs too, is 00:00:5e:00:02:<VRID>.
	six bool
}

// vmac is the virtual MAC of t's instance.
func (t conflictTarget) vmac() [6]byte {
	if t.six {
		return [6]byte(virtualMAC(t.vrid, FamilyIPv6))
	}
	return [6]byte(virtualMAC(t.vrid, FamilyIPv4))
}

// expectation is what decides which MACs are foreign.
func (t conflictTarget) expectation() (bool, netip.Addr) { return t.master, t.masterIP }

type vipKey struct {
	link string
	vip  netip.Addr
}

type heardMAC struct{ first, last time.Time }

type watchedVIP struct {
	t        conflictTarget
	heard    map[[6]byte]heardMAC  // MACs other than ours that claimed the VIP
	reported map[[6]byte]time.Time // the conflicts as last reported: MAC → since
	order    [][6]byte             // reported MACs, in the order they appeared
}

// conflictChange is a VIP whose conflicts changed: the full list now, and
// what appeared and cleared.
type conflictChange struct {
	instance  string
	vip       netip.Addr
	link      string
	conflicts []VIPConflict
	appeared  []net.HardwareAddr
	cleared   []net.HardwareAddr
}

type probeTarget struct {
	link string
	ip   netip.Addr
}

// conflictDetector decides, per watched VIP, which MACs conflict.
type conflictDetector struct {
	// settle: a MAC is judged only with the instances' state from at least
	// this long after it was first heard, so that a new master's
	// announcement is not taken for a conflict before its advert is.
	settle time.Duration
	// clearAfter: a conflict clears when its MAC was not heard for this
	// long.
	clearAfter time.Duration

	own  map[string][6]byte // link → this node's MAC there
	vips map[vipKey]*watchedVIP
	// masters are the masters' addresses the backups follow; ipMAC holds
	// the MAC that last claimed each (only theirs: the segment's other
	// addresses are not kept).
	masters  map[vipKey]bool
	ipMAC    map[vipKey][6]byte
	lastEval time.Time
	// learned: a master's MAC was learned or changed since the last
	// evaluation, which may decide MACs that were waiting for it.
	learned bool
}

func newConflictDetector(settle, clearAfter time.Duration) *conflictDetector {
	return &conflictDetector{
		settle: settle, clearAfter: clearAfter,
		own: map[string][6]byte{}, vips: map[vipKey]*watchedVIP{}, masters: map[vipKey]bool{}, ipMAC: map[vipKey][6]byte{},
	}
}

func macArray(m net.HardwareAddr) (a [6]byte, ok bool) {
	if len(m) != 6 {
		return a, false
	}
	return [6]byte(m), true
}

// set replaces the watched VIPs and this node's MACs with the instances'
// state as of now. A VIP whose expectation changed (this node became master
// or backup, or another master) forgets the MACs it heard that it had not
// reported: they were judged against the old master. Reported conflicts
// stay until they clear.
func (d *conflictDetector) set(targets []conflictTarget, own map[string]net.HardwareAddr) {
	clear(d.own)
	for l, m := range own {
		if a, ok := macArray(m); ok {
			d.own[l] = a
		}
	}
	keep := map[vipKey]bool{}
	clear(d.masters)
	for _, t := range targets {
		if t.masterIP.IsValid() {
			d.masters[vipKey{t.link, t.masterIP}] = true
		}
	}
	for k := range d.ipMAC {
		if !d.masters[k] {
			delete(d.ipMAC, k)
		}
	}
	for _, t := range targets {
		k := vipKey{t.link, t.vip}
		keep[k] = true
		w := d.vips[k]
		if w == nil {
			d.vips[k] = &watchedVIP{t: t, heard: map[[6]byte]heardMAC{}, reported: map[[6]byte]time.Time{}}
			continue
		}
		if m, ip := w.t.expectation(); m != t.master || ip != t.masterIP {
			for mac := range w.heard {
				if _, rep := w.reported[mac]; !rep {
					delete(w.heard, mac)
				}
			}
		}
		w.t = t
	}
	for k := range d.vips {
		if !keep[k] {
			delete(d.vips, k)
		}
	}
}

// observe records one ARP frame heard on link at now.
func (d *conflictDetector) observe(link string, s arp.Seen, now time.Time) {
	if !s.Claims() {
		return
	}
	k := vipKey{link, s.IP}
	if d.masters[k] {
		if m, ok := d.ipMAC[k]; !ok || m != s.MAC {
			d.learned = true
		}
		d.ipMAC[k] = s.MAC
	}
	w := d.vips[k]
	if w == nil || s.MAC == d.own[link] {
		return
	}
	h, ok := w.heard[s.MAC]
	if !ok {
		h.first = now
	}
	h.last = now
	w.heard[s.MAC] = h
}

// foreign reports whether mac, heard claiming w's VIP, is a conflict;
// known is false when that cannot be told yet (the master's MAC unknown).
func (d *conflictDetector) foreign(w *watchedVIP, mac [6]byte) (foreign, known bool) {
	if mac == d.own[w.t.link] {
		return false, true
	}
	// The VRID's virtual MAC answers for the VIP as the master's: this
	// node's own with virtual_mac, the master's while backup.
	if w.t.vrid != 0 && mac == w.t.vmac() {
		return false, true
	}
	if w.t.master {
		return true, true
	}
	if !w.t.masterIP.IsValid() {
		return false, false
	}
	m, ok := d.ipMAC[vipKey{w.t.link, w.t.masterIP}]
	if !ok {
		return false, false
	}
	return m != mac, true
}

// due is the earliest time at which an evaluation could change something
// (zero: nothing will until a frame is heard or the state changes): a MAC
// not reported reaches its settle time, not yet judged after it; a master's MAC was learned (the last evaluation: past); a
// reported MAC's last hearing is clearAfter old. A time not after now
// means at once.
func (d *conflictDetector) due() time.Time {
	var at time.Time
	earlier := func(t time.Time) {
		if at.IsZero() || t.Before(at) {
			at = t
		}
	}
	if d.learned {
		earlier(d.lastEval)
	}
	for _, w := range d.vips {
		for mac, h := range w.heard {
			if _, rep := w.reported[mac]; rep {
				earlier(h.last.Add(d.clearAfter + 1)) // cleared once more than clearAfter old
				continue
			}
			// Once judged after its settle time, hearing a MAC again
			// changes nothing until the state does (set, learned).
			if ready := h.first.Add(d.settle); ready.After(d.lastEval) {
				earlier(ready)
			}
		}
	}
	return at
}

// watched lists the sender addresses worth hearing on link, sorted: its
// VIPs and the masters' addresses there. Frames from any other address
// change nothing.
func (d *conflictDetector) watched(link string) []netip.Addr {
	as := []netip.Addr{}
	for k := range d.vips {
		if k.link == link {
			as = append(as, k.vip)
		}
	}
	for k := range d.masters {
		if k.link == link && !slices.Contains(as, k.vip) {
			as = append(as, k.vip)
		}
	}
	slices.SortFunc(as, netip.Addr.Compare)
	return as
}

// known lists the claims on link that change nothing the detector decides,
// so that the kernel filter keeps them from waking the watcher: a watched
// VIP from this node's MAC (its own announcements), a master's address from
// the MAC learned for it, and a backup's VIP from its master's MAC (the
// master's answers to the probes) or from the VRID's virtual MAC. Any other MAC claiming these addresses
// is still heard. Sorted, so that an unchanged list compares equal.
func (d *conflictDetector) known(link string) []arp.Claim {
	var cs []arp.Claim
	own, hasOwn := d.own[link]
	for k, w := range d.vips {
		if k.link != link {
			continue
		}
		if hasOwn {
			cs = append(cs, arp.Claim{IP: k.vip, MAC: own})
		}
		if w.t.masterIP.IsValid() {
			if m, ok := d.ipMAC[vipKey{link, w.t.masterIP}]; ok {
				cs = append(cs, arp.Claim{IP: k.vip, MAC: m})
			}
		}
		if w.t.vrid != 0 {
			cs = append(cs, arp.Claim{IP: k.vip, MAC: w.t.vmac()})
		}
	}
	for k := range d.masters {
		if m, ok := d.ipMAC[k]; ok && k.link == link {
			cs = append(cs, arp.Claim{IP: k.vip, MAC: m})
		}
	}
	slices.SortFunc(cs, func(a, b arp.Claim) int {
		if c := a.IP.Compare(b.IP); c != 0 {
			return c
		}
		return bytes.Compare(a.MAC[:], b.MAC[:])
	})
	return slices.Compact(cs)
}

// evaluate decides every watched VIP's conflicts at now, with the state
// given to set (which must be from now, not before), and returns the VIPs
// whose conflicts changed, in a stable order.
func (d *conflictDetector) evaluate(now time.Time) []conflictChange {
	d.lastEval, d.learned = now, false
	var out []conflictChange
	for _, w := range d.vips {
		var ch conflictChange
		for mac, h := range w.heard {
			if now.Sub(h.last) > d.clearAfter {
				delete(w.heard, mac)
				continue
			}
			_, rep := w.reported[mac]
			f, known := d.foreign(w, mac)
			switch {
			case rep && known && !f:
				// now expected (this MAC became the master's): not a conflict
			case rep:
				continue // still conflicting, or cannot be told: keep it
			case known && f && !now.Before(h.first.Add(d.settle)):
				w.reported[mac] = h.first
				w.order = append(w.order, mac)
				ch.appeared = append(ch.appeared, slices.Clone(net.HardwareAddr(mac[:])))
				continue
			default:
				continue
			}
			delete(w.reported, mac)
			ch.cleared = append(ch.cleared, slices.Clone(net.HardwareAddr(mac[:])))
		}
		for mac := range w.reported {
			if _, ok := w.heard[mac]; !ok {
				delete(w.reported, mac)
				ch.cleared = append(ch.cleared, slices.Clone(net.HardwareAddr(mac[:])))
			}
		}
		if len(ch.appeared) == 0 && len(ch.cleared) == 0 {
			continue
		}
		w.order = slices.DeleteFunc(w.order, func(m [6]byte) bool { _, ok := w.reported[m]; return !ok })
		ch.instance, ch.vip, ch.link, ch.conflicts = w.t.instance, w.t.vip, w.t.link, w.conflicts()
		sortMACs(ch.appeared)
		sortMACs(ch.cleared)
		out = append(out, ch)
	}
	slices.SortFunc(out, func(a, b conflictChange) int {
		if c := a.vip.Compare(b.vip); c != 0 {
			return c
		}
		return bytes.Compare([]byte(a.link), []byte(b.link))
	})
	return out
}

// conflicts is w's reported conflicts, oldest first.
func (w *watchedVIP) conflicts() []VIPConflict {
	cs := make([]VIPConflict, 0, len(w.order))
	for _, m := range w.order {
		cs = append(cs, VIPConflict{MAC: slices.Clone(net.HardwareAddr(m[:])), Since: w.reported[m]})
	}
	return cs
}

// probes lists what to send an ARP probe for: every watched VIP (whoever
// holds it answers: the master and any other host) and, for a backup, the
// master's address, whose answer gives the master's MAC.
func (d *conflictDetector) probes() []probeTarget {
	var ps []probeTarget
	seen := map[probeTarget]bool{}
	add := func(p probeTarget) {
		if !seen[p] {
			seen[p] = true
			ps = append(ps, p)
		}
	}
	for _, w := range d.vips {
		add(probeTarget{w.t.link, w.t.vip})
		if w.t.masterIP.IsValid() {
			add(probeTarget{w.t.link, w.t.masterIP})
		}
	}
	slices.SortFunc(ps, func(a, b probeTarget) int {
		if c := bytes.Compare([]byte(a.link), []byte(b.link)); c != 0 {
			return c
		}
		return a.ip.Compare(b.ip)
	})
	return ps
}

// unknownMasters lists the masters' addresses whose MAC is not known yet:
// probed at once, not only once a round.
func (d *conflictDetector) unknownMasters() []probeTarget {
	var ps []probeTarget
	for _, w := range d.vips {
		if !w.t.masterIP.IsValid() {
			continue
		}
		p := probeTarget{w.t.link, w.t.masterIP}
		if _, ok := d.ipMAC[vipKey{p.link, p.ip}]; !ok && !slices.Contains(ps, p) {
			ps = append(ps, p)
		}
	}
	return ps
}

func sortMACs(ms []net.HardwareAddr) {
	slices.SortFunc(ms, func(a, b net.HardwareAddr) int { return bytes.Compare(a, b) })
}
