package pair

import (
	"fmt"
	"time"
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
}

// Failover pings the VIP from the client, injects fault, waits until to is
// the only holder and the client has had replies for settle, and reports
// the outage.
func (p *Pair) Failover(to *Node, fault func() error, timeout, settle time.Duration) (Outage, error) {
	w, err := to.Host.WatchAddr(VIP)
	if err != nil {
		return Outage{}, err
	}
	defer w.Stop()
	probe, err := p.Client.StartProbe(VIP, ProbeInterval)
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
	time.Sleep(150 * time.Millisecond)
	if n := probe.Snapshot().RepliesBetween(start, time.Now()); n == 0 {
		return Outage{}, fmt.Errorf("the client got no reply from %s before the fault", VIP)
	}
	o := Outage{Fault: time.Now()}
	if err := fault(); err != nil {
		return o, fmt.Errorf("injecting the fault: %w", err)
	}
	if err := p.WaitHolder(to, VIP, timeout); err != nil {
		return o, err
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
				return o, fmt.Errorf("no address event showed %s landing on %s: %w", VIP, to.Host.Name, ErrTimeout)
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
			return o, fmt.Errorf("the client got no reply from %s within %v of the fault: %w", VIP, timeout, ErrTimeout)
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
	return o, nil
}
