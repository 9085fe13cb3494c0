package vrrp

import (
	"net/netip"
	"time"
)

// A master that hears an advert from a router it outranks answers at once
// with its own advert and a gratuitous ARP: a split brain is healing, and
// clients may point at the loser's MAC. A router that has given up on us
// yields within an advert interval. One that never accepts our adverts (a
// peer with another checksum mode or authentication, a broken
// implementation) goes on advertising as master, and each answer would be
// repeated for each of its adverts, forever. So the answers back off: the
// first lower-ranked advert after a quiet spell is answered at once, the
// next after an advert interval, then after twice as long each time, up to
// reassertMaxGap; a quiet spell starts it over.

// reassertMaxGap caps the time between two answers to a lower-ranked
// master that keeps advertising.
const reassertMaxGap = 10 * time.Second

// reassertQuiet is how many of our advert intervals without a lower-ranked
// advert end an episode, so that the next one is answered at once. It must
// be shorter than any real heal: a split brain needs the loser's
// Master_Down_Timer (3 × our interval + Skew_Time) to run out without our
// adverts after it last yielded, so its first advert as master comes more
// than three intervals after its last one.
const reassertQuiet = 3

// reassertPersist is how many of our advert intervals lower-ranked adverts
// must go on for before the peer is said to keep advertising as master: a
// router that accepts our adverts yields within one.
const reassertPersist = 3

// reassertion paces a master's answers to lower-ranked adverts. It is
// pure: time comes in as a value.
type reassertion struct {
	peer     netip.Addr // the last lower-ranked router heard
	priority uint8      // and its advertised priority
	first    time.Time  // when the episode began; zero: none yet
	last     time.Time  // the last lower-ranked advert of the episode
	next     time.Time  // the earliest time to answer again
	gap      time.Duration
	adverts  uint64 // lower-ranked adverts heard in the episode
	answers  uint64 // of which answered
}

// hear records a lower-ranked advert from peer at now and reports whether
// to answer it. interval is our advert interval.
func (r *reassertion) hear(peer netip.Addr, priority uint8, now time.Time, interval time.Duration) bool {
	fresh := r.first.IsZero() || now.Sub(r.last) > reassertQuiet*interval
	if fresh {
		*r = reassertion{first: now}
	}
	r.peer, r.priority, r.last = peer, priority, now
	r.adverts++
	switch {
	case fresh:
		r.gap = interval
	case now.Before(r.next):
		return false
	default:
		r.gap = min(2*r.gap, max(reassertMaxGap, interval))
	}
	r.next = now.Add(r.gap)
	r.answers++
	return true
}

// persistent reports whether, at now, a lower-ranked router has gone on
// advertising as master for longer than one that accepts our adverts
// would, and has not gone quiet since.
func (r *reassertion) persistent(now time.Time, interval time.Duration) bool {
	return !r.first.IsZero() && now.Sub(r.last) <= reassertQuiet*interval &&
		r.last.Sub(r.first) >= reassertPersist*interval
}

// LowerMaster describes a router that keeps advertising as master for our
// VRID at a lower rank than ours, while we are master.
type LowerMaster struct {
	Addr     netip.Addr
	Priority uint8
	Since    time.Time // its first advert of the episode
	LastSeen time.Time
	Adverts  uint64 // its adverts heard in the episode
	Answers  uint64 // of which we answered with an advert and a gratuitous ARP
}

// LowerMaster reports the router that keeps advertising as master at a
// lower rank than ours, if there is one at now (see reassertion).
func (m *Machine) LowerMaster(now time.Time) (LowerMaster, bool) {
	r := &m.reassert
	if m.state != StateMaster || !r.persistent(now, m.cfg.AdvertInterval) {
		return LowerMaster{}, false
	}
	return LowerMaster{Addr: r.peer, Priority: r.priority, Since: r.first, LastSeen: r.last, Adverts: r.adverts, Answers: r.answers}, true
}
