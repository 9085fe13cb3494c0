package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/vipd/vipd/e2e/pair"
)

// scenario is one way the master goes away.
type scenario struct {
	name  string
	short string // for the chart
	// bound is the protocol's bound on the outage at an advert interval,
	// for the backup's priority.
	bound  func(interval time.Duration) time.Duration
	inject func(d *daemon) error
	repair func(d *daemon) error
}

var scenarios = []scenario{
	{
		name:   "link cut on the master",
		short:  "link cut",
		bound:  func(iv time.Duration) time.Duration { return pair.MasterDownInterval(prioBackup, iv) },
		inject: func(d *daemon) error { return d.p.A.Host.CutLink() },
		repair: func(d *daemon) error { return d.p.A.Host.RestoreLink() },
	},
	{
		name:   "graceful stop of the master",
		short:  "graceful stop",
		bound:  func(iv time.Duration) time.Duration { return pair.SkewTime(prioBackup, iv) },
		inject: func(d *daemon) error { return d.p.Stop(d.p.A) },
		repair: func(d *daemon) error { return d.p.Restart(d.p.A) },
	},
}

// boundName names the bound of scenario i.
func boundName(i int) string {
	if i == 0 {
		return "Master_Down_Interval"
	}
	return "Skew_Time"
}

// outageKey names one distribution.
type outageKey struct {
	daemon   string
	interval time.Duration
	scenario int
}

// trialResult is one failover as the client saw it.
type trialResult struct {
	gap  time.Duration // the client's longest gap between replies
	move time.Duration // fault → VIP on the backup
	// The phase the fault fell at: after the master's last advert and
	// the client's last answered request.
	advertAge, probeAge time.Duration
	handover            time.Duration // the old master's last advert → the new one's first
	announced           time.Duration // the old master's last advert → the new one's first gratuitous ARP
	phase               pair.Phase    // where the fault was aimed
	// With the virtual MAC: the client's neighbour entry for the VIP
	// (its MAC, "" if none) after the failover, and after a took the
	// VIP back and answered the client again.
	macFailover, macRepair string
}

type outageResults struct {
	mu       sync.Mutex
	trials   map[outageKey][]trialResult
	parallel map[time.Duration]bool // intervals whose daemons ran at the same time
	took     time.Duration
}

func (r *outageResults) add(k outageKey, t trialResult) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.trials[k] = append(r.trials[k], t)
}

// list returns k's trials in the order they ran.
func (r *outageResults) list(k outageKey) []trialResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.trials[k])
}

func (r *outageResults) gaps(k outageKey) []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	var gs []time.Duration
	for _, t := range r.trials[k] {
		gs = append(gs, t.gap)
	}
	return gs
}

// outagePhase runs the failover trials at every interval for both
// daemons.
func (b *bench) outagePhase() (*outageResults, error) {
	return b.outageRun(b.opt.intervals, b.opt.trials)
}

// outageRun runs trials failover trials of each scenario at each of
// intervals for every daemon, in the mode the daemons are set to (the
// virtual MAC or not). Both pairs run throughout an interval's trials. Below the
// -parallel threshold the trials take turns (vipd, keepalived, for each
// scenario, trial after trial), so that a change of load on the machine
// touches both alike; at or above it each daemon's trials run at the
// same time in its own lab, because the slow timers dominate there and a
// few milliseconds of interference do not show.
func (b *bench) outageRun(intervals []time.Duration, trials int) (*outageResults, error) {
	start := time.Now()
	res := &outageResults{trials: map[outageKey][]trialResult{}, parallel: map[time.Duration]bool{}}
	for _, iv := range intervals {
		fmt.Fprintf(os.Stderr, "outage: adverts every %v, %d trials per daemon and scenario%s\n", iv, trials, b.modeNote())
		for _, d := range b.daemons {
			d.stopAll()
			for _, n := range []struct {
				node *pair.Node
				prio uint8
			}{{d.p.A, prioMaster}, {d.p.B, prioBackup}} {
				if err := d.configureOne(n.node, n.prio, iv); err != nil {
					return nil, err
				}
			}
			if err := d.startPair([]netip.Addr{d.vip()}, pair.MasterDownInterval(prioMaster, iv)+10*time.Second); err != nil {
				return nil, err
			}
		}
		sleep(2 * iv)
		if b.opt.parallel > 0 && iv >= b.opt.parallel {
			res.parallel[iv] = true
			var wg sync.WaitGroup
			errs := make([]error, len(b.daemons))
			for i, d := range b.daemons {
				wg.Go(func() {
					for t := 1; t <= trials && errs[i] == nil; t++ {
						for si := range scenarios {
							if errs[i] = b.trial(res, d, iv, si, t, trials); errs[i] != nil {
								break
							}
						}
					}
				})
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				return nil, err
			}
		} else {
			for t := 1; t <= trials; t++ {
				for si := range scenarios {
					for _, d := range b.daemons {
						if err := b.trial(res, d, iv, si, t, trials); err != nil {
							return nil, err
						}
					}
				}
			}
		}
		for _, d := range b.daemons {
			d.stopAll()
		}
	}
	res.took = time.Since(start)
	return res, nil
}

// trial injects scenario si on d's master (trial t of n), measures what
// the client saw while the backup took over, and repairs until A is
// master again. With the virtual MAC it also reads the client's
// neighbour entry for the VIP after the failover and after A took the
// VIP back.
func (b *bench) trial(res *outageResults, d *daemon, iv time.Duration, si, t, n int) error {
	s := scenarios[si]
	p := d.p
	bound := s.bound(iv)
	timeout := pair.MasterDownInterval(prioBackup, iv) + 3*time.Second
	ph := trialPhase(iv, t, n)
	o, err := p.FailoverOf(d.vip(), p.B, func() error { return s.inject(d) }, timeout, 150*time.Millisecond, ph)
	if err != nil {
		return fmt.Errorf("%s, adverts every %v, %s, trial %d: %w (logs in %s)", d.name, iv, s.name, t, err, d.dir)
	}
	tr := trialResult{gap: o.Gap, move: o.Land.Sub(o.Fault), advertAge: o.AdvertAge, probeAge: o.ProbeAge, handover: o.Handover, announced: o.Announced, phase: ph}
	if d.vmac {
		// FailoverAt returned once the client had had replies from
		// the new master for a while: its entry is the one it used.
		if tr.macFailover, err = p.ClientNeighbour(d.vip()); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "  %-10s %-5v %-28s #%-2d gap %8.1f ms (bound %.1f ms)  after advert %6.2f ms (aimed %6.2f), after request %4.2f ms (aimed %4.2f), handover %6.2f ms, announced %6.2f ms%s\n",
		d.name, iv, s.name, t, msf(o.Gap), msf(bound), msf(o.AdvertAge), msf(ph.Offset), msf(o.ProbeAge), msf(ph.ProbePhase), msf(o.Handover), msf(o.Announced), macNote("client on", tr.macFailover))
	if err := s.repair(d); err != nil {
		return fmt.Errorf("%s, %s, repair after trial %d: %w", d.name, s.name, t, err)
	}
	if err := p.WaitHolder(p.A, d.vip(), 2*pair.MasterDownInterval(prioMaster, iv)+5*time.Second); err != nil {
		return fmt.Errorf("%s, %s, A taking the VIP back after trial %d: %w (logs in %s)", d.name, s.name, t, err, d.dir)
	}
	if d.vmac {
		if tr.macRepair, err = d.clientEntry(); err != nil {
			return fmt.Errorf("%s, %s, after trial %d: %w", d.name, s.name, t, err)
		}
		fmt.Fprintf(os.Stderr, "  %-10s %-5v %-28s #%-2d a back:%s\n", d.name, iv, s.name, t, macNote(" client on", tr.macRepair))
	}
	res.add(outageKey{d.name, iv, si}, tr)
	return nil
}

// phaseMargin keeps a fault this far from an advert, so that the advert
// timer's jitter does not decide which advert was the last one heard.
func phaseMargin(iv time.Duration) time.Duration { return min(iv/10, 2*time.Millisecond) }

// probeMargin keeps a fault this far from the client's requests. A request
// sent a hair before or after a link cut races it: whether it and its
// reply cross the link before the cut lands decides whether the last reply
// comes 5 ms earlier or later, whichever daemon runs.
const probeMargin = 500 * time.Microsecond

// trialPhase is where trial t of n puts its fault. The phases after the
// master's advert are spread evenly over the interval (less a margin at
// each end) and those after a client's request evenly over the probe
// interval (less probeMargin at each end), in another order (a stride
// coprime with n), so that both cover their range; every daemon gets the
// same phase in trial t. A random phase would add the whole interval's
// spread to the outage and decide a comparison of medians by chance.
func trialPhase(iv time.Duration, t, n int) pair.Phase {
	i := t - 1
	m := phaseMargin(iv)
	j := (i * stride(n)) % n
	return pair.Phase{
		Interval:   iv,
		Offset:     m + time.Duration(int64(2*i+1)*int64(iv-2*m)/int64(2*n)),
		ProbePhase: probeMargin + time.Duration(int64(2*j+1)*int64(pair.ProbeInterval-2*probeMargin)/int64(2*n)),
	}
}

// stride is the smallest number above n/3 coprime with n (1 for n ≤ 2).
func stride(n int) int {
	for s := n/3 + 1; s < n; s++ {
		if gcd(s, n) == 1 {
			return s
		}
	}
	return 1
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
