package vrrp

import (
	"slices"
	"testing"
	"time"
)

// answers feeds m a lower-priority advert from highIP every period from
// start until end (exclusive) and returns, as offsets from start, when m
// answered with an advert and a gratuitous ARP.
func answers(t *testing.T, m *Machine, start, end time.Time, period time.Duration) []time.Duration {
	t.Helper()
	var got []time.Duration
	for now := start; now.Before(end); now = now.Add(period) {
		out := m.Step(advert(highIP, 50, 100*time.Millisecond), now)
		if m.State() != StateMaster {
			t.Fatalf("at +%v: %+v, want to stay master", now.Sub(start), out)
		}
		switch out.Actions {
		case ActSendAdvert | ActAnnounce:
			got = append(got, now.Sub(start))
		case 0:
		default:
			t.Fatalf("at +%v: actions %b, want none or advert and announce", now.Sub(start), out.Actions)
		}
	}
	return got
}

func ms(v ...int) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x) * time.Millisecond
	}
	return out
}

// A lower-priority router that never accepts our adverts and advertises
// every 100 ms used to be answered (an advert and a gratuitous ARP burst)
// once per advert interval, ten times a second, forever. The answers back
// off: at once, after one interval, then twice as long each time.
func TestReassertBacksOffFromPersistentLowerMaster(t *testing.T) {
	m := master(t, cfg(200))
	start := m.Deadline().Add(-30 * time.Millisecond)
	got := answers(t, m, start, start.Add(5*time.Second), 10*time.Millisecond)
	if want := ms(0, 100, 300, 700, 1500, 3100); !slices.Equal(got, want) {
		t.Errorf("answered at %v, want %v", got, want)
	}
	// Later the gap stops growing at reassertMaxGap.
	late := start.Add(time.Minute)
	got = answers(t, m, start.Add(5*time.Second), late.Add(25*time.Second), 50*time.Millisecond)
	var gaps []time.Duration
	for i := 1; i < len(got); i++ {
		gaps = append(gaps, got[i]-got[i-1])
	}
	if len(gaps) < 3 || gaps[len(gaps)-1] != reassertMaxGap || gaps[len(gaps)-2] != reassertMaxGap {
		t.Errorf("%d answers in a minute, the gaps between the last ones %v, want them to end at %v", len(got), gaps[max(0, len(gaps)-3):], reassertMaxGap)
	}
}

// Once the lower-ranked router goes quiet for more than three advert
// intervals, its next advert is a new split brain healing, and is answered
// at once, however far the backoff had gone.
func TestReassertAtOnceAfterQuiet(t *testing.T) {
	m := master(t, cfg(200))
	start := m.Deadline().Add(-30 * time.Millisecond)
	answers(t, m, start, start.Add(5*time.Second), 100*time.Millisecond) // backed off to 3.2 s
	last := start.Add(5*time.Second - 100*time.Millisecond)
	// Three intervals: still the same episode, not answered.
	if out := m.Step(advert(highIP, 50, 100*time.Millisecond), last.Add(300*time.Millisecond)); out.Actions != 0 {
		t.Errorf("advert three intervals after the last: %+v, want no answer yet", out)
	}
	// A heal: the loser's Master_Down_Timer ran out without our adverts,
	// more than three intervals after its last advert.
	healed := last.Add(300*time.Millisecond + MasterDownInterval(3, 50, 100*time.Millisecond))
	if out := m.Step(advert(highIP, 50, 100*time.Millisecond), healed); out.Actions != ActSendAdvert|ActAnnounce {
		t.Errorf("first lower-priority advert after a quiet spell: %+v, want advert and announce at once", out)
	}
}

// status and the log name a router that keeps advertising as master at a
// lower priority, but not a split brain that heals within an interval.
func TestLowerMasterReported(t *testing.T) {
	m := master(t, cfg(200))
	start := m.Deadline().Add(-30 * time.Millisecond)
	// A heal: the loser's advert and its yielding advert, 40 ms apart.
	answers(t, m, start, start.Add(50*time.Millisecond), 40*time.Millisecond)
	for _, at := range []time.Duration{50 * time.Millisecond, 200 * time.Millisecond, time.Second} {
		if lm, ok := m.LowerMaster(start.Add(at)); ok {
			t.Errorf("+%v after a heal: lower master %+v reported, want none", at, lm)
		}
	}
	// A router that goes on: reported once it has for three intervals.
	start = start.Add(2 * time.Second)
	answers(t, m, start, start.Add(250*time.Millisecond), 100*time.Millisecond)
	if lm, ok := m.LowerMaster(start.Add(250 * time.Millisecond)); ok {
		t.Errorf("after 200 ms of adverts: lower master %+v reported, want none yet", lm)
	}
	answers(t, m, start.Add(300*time.Millisecond), start.Add(350*time.Millisecond), 100*time.Millisecond)
	lm, ok := m.LowerMaster(start.Add(350 * time.Millisecond))
	want := LowerMaster{Addr: highIP, Priority: 50, Since: start, LastSeen: start.Add(300 * time.Millisecond), Adverts: 4, Answers: 3}
	if !ok || lm != want {
		t.Errorf("after 300 ms of adverts: %+v %v, want %+v", lm, ok, want)
	}
	// Gone quiet: no longer reported.
	if lm, ok := m.LowerMaster(start.Add(700 * time.Millisecond)); ok {
		t.Errorf("400 ms after its last advert: lower master %+v reported, want none", lm)
	}
}
