package pair

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/vipd/vipd/e2e/lab"
)

// ProbeInterval is how often the client pings the VIP while measuring.
const ProbeInterval = 5 * time.Millisecond

// Outage is what the client saw when the VIP moved.
type Outage struct {
	Fault       time.Time     // when the fault was injected
	Gap         time.Duration // the client's longest gap between replies around the fault
	Land        time.Time     // when the VIP appeared on the new master
	LandToReply time.Duration // from Land to the client's first reply after it
	Sent, Lost  int
	// With a Phase: how long before the fault the client heard the
	// master's last advert, and the client sent its last answered
	// request; the phase the fault actually fell at.
	AdvertAge, ProbeAge time.Duration
	// With a Phase: from the master's last advert (priority 0 after a
	// graceful stop) to the new master's first, as the client heard
	// them: the backup's Master_Down_Interval or Skew_Time as its timer
	// kept it.
	Handover time.Duration
	// With a Phase: from the master's last advert to the new master's
	// first gratuitous ARP for the VIP, as the client heard them: when
	// the clients were told to move.
	Announced time.Duration
}

// Phase places a fault relative to the master's adverts and the client's
// requests, so that two daemons can be measured at the same phases rather
// than at random ones. The fault comes Offset after one of the master's
// adverts (as the client hears them; Interval is the master's advert
// interval, for counting on to a later one) and ProbePhase after one of
// the client's requests. The zero Phase injects the fault at once.
type Phase struct {
	Interval   time.Duration
	Offset     time.Duration
	ProbePhase time.Duration
}

// warmUp is how long the client pings before the fault.
const warmUp = 150 * time.Millisecond

// Failover pings the VIP from the client, injects fault, waits until to is
// the only holder and the client has had replies for settle, and reports
// the outage.
func (p *Pair) Failover(to *Node, fault func() error, timeout, settle time.Duration) (Outage, error) {
	return p.FailoverAt(to, fault, timeout, settle, Phase{})
}

// FailoverAt is Failover with the fault placed at phase ph.
func (p *Pair) FailoverAt(to *Node, fault func() error, timeout, settle time.Duration, ph Phase) (Outage, error) {
	return p.FailoverOf(VIP, to, fault, timeout, settle, ph)
}

// FailoverOf is FailoverAt for the VIP vip. An IPv6 vip is taken to be
// an IPv6 instance's: the master's adverts come from its link-local, and
// its neighbour advertisements are its announcements.
func (p *Pair) FailoverOf(vip netip.Addr, to *Node, fault func() error, timeout, settle time.Duration, ph Phase) (Outage, error) {
	// FRR's VIP stays on its macvlan: it lands when the link comes up,
	// which WaitHolder sees by polling, not as an address event.
	var w *lab.AddrWatch
	if to.frr == nil {
		var err error
		if w, err = to.Host.WatchAddr(vip); err != nil {
			return Outage{}, err
		}
		defer w.Stop()
	}
	var (
		at      time.Time // when the fault is due
		first   time.Time // the client's first request, for a grid
		adverts *lab.AdvertWatch
		master  = p.other(to).Host.Addr
		newAddr = to.Host.Addr
	)
	if vip.Is6() {
		var err error
		if master, err = p.other(to).Host.LinkLocal(); err == nil {
			newAddr, err = to.Host.LinkLocal()
		}
		if err != nil {
			return Outage{}, err
		}
	}
	var newMAC string
	if ph.Interval > 0 {
		mac, err := to.ServiceMAC()
		if err != nil {
			return Outage{}, err
		}
		newMAC = mac.String()
		if adverts, err = p.Client.WatchAdverts(); err != nil {
			return Outage{}, err
		}
		defer adverts.Stop()
		first = time.Now().Add(time.Millisecond)
	}
	probe, err := p.Client.StartProbeAt(vip, ProbeInterval, first)
	if err != nil {
		return Outage{}, err
	}
	stopped := false
	defer func() {
		if !stopped {
			probe.Stop()
		}
	}()
	// The client must be getting replies before the fault.
	start := time.Now()
	if ph.Interval > 0 {
		if at, err = placeFault(adverts, master, probe, start, ph); err != nil {
			return Outage{}, err
		}
		lab.SleepUntil(at)
	} else {
		time.Sleep(warmUp)
	}
	if n := probe.Snapshot().RepliesBetween(start, time.Now()); n == 0 {
		return Outage{}, fmt.Errorf("the client got no reply from %s before the fault", vip)
	}
	o := Outage{Fault: time.Now()}
	if err := fault(); err != nil {
		return o, fmt.Errorf("injecting the fault: %w", err)
	}
	if err := p.WaitHolder(to, vip, timeout); err != nil {
		return o, err
	}
	if w == nil {
		o.Land = time.Now()
	}
	deadline := time.Now().Add(timeout)
	for o.Land.IsZero() {
		for _, ev := range w.Events() {
			if ev.Added && ev.Time.After(o.Fault) {
				o.Land = ev.Time
				break
			}
		}
		if o.Land.IsZero() {
			if time.Now().After(deadline) {
				return o, fmt.Errorf("no address event showed %s landing on %s: %w", vip, to.Host.Name, ErrTimeout)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	// Keep probing until replies have flowed for settle after the landing
	// (a reply already in flight at the fault does not count).
	for {
		r := probe.Snapshot()
		if first, ok := r.FirstReplyAfter(o.Land); ok && time.Since(first) >= settle {
			break
		}
		if time.Now().After(deadline) {
			return o, fmt.Errorf("the client got no reply from %s within %v of the fault: %w", vip, timeout, ErrTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	res := probe.Stop()
	stopped = true
	// Measure from a little before the fault, when replies were flowing,
	// so that the gap spans the last reply before it to the first after.
	o.Gap = res.LongestGap(o.Fault.Add(-50*time.Millisecond), res.End)
	o.Sent, o.Lost = res.Sent, res.Lost()
	if first, ok := res.FirstReplyAfter(o.Land); ok {
		o.LandToReply = first.Sub(o.Land)
	}
	if adverts != nil {
		for _, a := range adverts.Adverts() {
			if a.Src == master && a.Priority > 0 && !a.Time.After(o.Fault) {
				o.AdvertAge = o.Fault.Sub(a.Time)
			}
		}
		o.Handover = handover(adverts.Adverts(), master, newAddr, o.Fault)
		o.Announced = announced(adverts.Adverts(), adverts.Announces(), vip, master, newMAC, o.Fault)
		for _, r := range res.Replies {
			if !r.Sent.After(o.Fault) {
				o.ProbeAge = o.Fault.Sub(r.Sent)
			}
		}
	}
	return o, nil
}

// placeFault returns when the fault at ph is due: ph.Offset after an
// advert of the master, at least warmUp after start. It counts on from the
// master's latest advert by the period of its last two (not by the
// configured interval: a daemon whose adverts drift would otherwise get
// its faults at other phases), and moves the probe's grid so that a
// request goes out ph.ProbePhase before the fault.
func placeFault(adverts *lab.AdvertWatch, master netip.Addr, probe *lab.Probe, start time.Time, ph Phase) (time.Time, error) {
	fromMaster := func(a Advert) bool { return a.Src == master && a.Priority > 0 && !a.Outgoing }
	var prev time.Time
	for i := 0; ; i++ {
		a, err := adverts.Wait(fromMaster, i, 3*ph.Interval+time.Second)
		if err != nil {
			return time.Time{}, fmt.Errorf("waiting for an advert from the master %s: %w", master, err)
		}
		if !prev.IsZero() {
			at := a.Time.Add(a.Time.Sub(prev) + ph.Offset)
			if at.Sub(start) >= warmUp {
				probe.Realign(at.Add(-ph.ProbePhase))
				return at, nil
			}
		}
		prev = a.Time
	}
}

// handover returns the time from the old master's last advert before the
// new master's first advert after fault to that first advert, or 0 if
// either is missing.
func handover(adverts []Advert, old, new netip.Addr, fault time.Time) time.Duration {
	var last time.Time
	for _, a := range adverts {
		switch {
		case a.Src == old:
			last = a.Time
		case a.Src == new && a.Priority > 0 && a.Time.After(fault):
			if last.IsZero() {
				return 0
			}
			return a.Time.Sub(last)
		}
	}
	return 0
}

// announced returns the time from the old master's last advert before the
// first gratuitous ARP (or neighbour advertisement) for vip naming mac
// after fault to that announcement, or 0 if either is missing.
func announced(adverts []Advert, announces []lab.Announce, vip, old netip.Addr, mac string, fault time.Time) time.Duration {
	for _, an := range announces {
		if an.Addr != vip || an.MAC.String() != mac || !an.Time.After(fault) {
			continue
		}
		var last time.Time
		for _, a := range adverts {
			if a.Src == old && a.Time.Before(an.Time) {
				last = a.Time
			}
		}
		if last.IsZero() {
			return 0
		}
		return an.Time.Sub(last)
	}
	return 0
}

// Advert is a VRRP advert the lab saw.
type Advert = lab.Advert

// other is the node of the pair that is not n.
func (p *Pair) other(n *Node) *Node {
	if n == p.A {
		return p.B
	}
	return p.A
}
