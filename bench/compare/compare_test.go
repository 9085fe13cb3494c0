package main

import (
	"image/png"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vipd/vipd/e2e/pair"
)

func TestVIPPool(t *testing.T) {
	pool := vipPool()
	if len(pool) != 250 {
		t.Fatalf("%d VIPs, want 250", len(pool))
	}
	lab := netip.MustParsePrefix("198.18.0.0/24")
	seen := map[netip.Addr]bool{}
	for _, h := range []string{pair.AddrA, pair.AddrB, pair.AddrClient} {
		seen[netip.MustParsePrefix(h).Addr()] = true
	}
	for i, a := range pool {
		if !lab.Contains(a) || a == lab.Addr() || a.As4()[3] == 255 {
			t.Errorf("VIP %d: %s is not a host address of %s", i, a, lab)
		}
		if seen[a] {
			t.Errorf("VIP %d: %s is a host's address or repeats", i, a)
		}
		seen[a] = true
	}
	if pool[0] != pair.VIP {
		t.Errorf("first VIP %s, want %s", pool[0], pair.VIP)
	}
}

func TestNiceStep(t *testing.T) {
	for _, tc := range []struct{ raw, want float64 }{
		{0.7, 1}, {1, 1}, {1.2, 2}, {3, 5}, {7, 10}, {12, 20}, {260, 500}, {0.03, 0.05},
	} {
		if got := niceStep(tc.raw); got != tc.want {
			t.Errorf("niceStep(%v) = %v, want %v", tc.raw, got, tc.want)
		}
	}
}

func TestQuantile(t *testing.T) {
	s := []float64{1, 2, 3, 4, 5}
	if q := quantile(s, 0.5); q != 3 {
		t.Errorf("median %v, want 3", q)
	}
	if q := quantile(s, 0.25); q != 2 {
		t.Errorf("q1 %v, want 2", q)
	}
	if q := quantile([]float64{4}, 0.75); q != 4 {
		t.Errorf("one value: %v", q)
	}
}

func TestParseFlags(t *testing.T) {
	if _, err := parseDurations("1s,100ms,20ms"); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"15ms", "5ms", "x"} {
		if _, err := parseDurations(bad); err == nil {
			t.Errorf("parseDurations(%q): no error", bad)
		}
	}
	if _, err := parseSizes("1,100,250"); err != nil {
		t.Error(err)
	}
	if _, err := parseSizes("255"); err == nil {
		t.Error("255 instances: no error")
	}
	if _, err := parsePhases("outage,bogus"); err == nil {
		t.Error("unknown phase: no error")
	}
	if _, err := parseDaemons("vipd,vipd"); err == nil {
		t.Error("repeated daemon: no error")
	}
}

// TestChart draws a chart from made-up trials, including an empty series,
// and checks that it is a PNG of the expected size.
func TestChart(t *testing.T) {
	res := &outageResults{trials: map[outageKey][]trialResult{}, parallel: map[time.Duration]bool{}}
	intervals := []time.Duration{time.Second, 100 * time.Millisecond, 20 * time.Millisecond}
	for _, iv := range intervals {
		for si := range scenarios {
			b := scenarios[si].bound(iv)
			for i := range 7 {
				res.add(outageKey{"vipd", iv, si}, trialResult{gap: b - time.Duration(i)*iv/10})
				if iv != 20*time.Millisecond {
					res.add(outageKey{"keepalived", iv, si}, trialResult{gap: b + time.Duration(i)*time.Millisecond})
				}
			}
		}
	}
	path := filepath.Join(t.TempDir(), "c.png")
	if err := drawChart(path, res, []string{"vipd", "keepalived"}, intervals, 7); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if w := img.Bounds().Dx(); w != chartLeft*2+3*panelW+2*chartGap {
		t.Errorf("width %d", w)
	}
	if os.Getenv("VIPD_CHART_OUT") != "" {
		data, _ := os.ReadFile(path)
		_ = os.WriteFile(os.Getenv("VIPD_CHART_OUT"), data, 0o644)
	}
}

func TestTrialPhase(t *testing.T) {
	for _, iv := range []time.Duration{20 * time.Millisecond, 100 * time.Millisecond, time.Second} {
		for _, n := range []int{1, 2, 5, 20, 21} {
			m := phaseMargin(iv)
			slots := map[time.Duration]bool{}
			var last time.Duration
			for k := 1; k <= n; k++ {
				ph := trialPhase(iv, k, n)
				if ph.Interval != iv || ph.Offset < m || ph.Offset > iv-m {
					t.Errorf("%v, trial %d of %d: %+v, want the offset within [%v, %v]", iv, k, n, ph, m, iv-m)
				}
				if k > 1 && ph.Offset <= last {
					t.Errorf("%v, trial %d of %d: offset %v not after the previous trial's %v", iv, k, n, ph.Offset, last)
				}
				last = ph.Offset
				if ph.ProbePhase < probeMargin || ph.ProbePhase > pair.ProbeInterval-probeMargin {
					t.Errorf("%v, trial %d of %d: probe phase %v outside [%v, %v]", iv, k, n, ph.ProbePhase, probeMargin, pair.ProbeInterval-probeMargin)
				}
				slots[ph.ProbePhase] = true
			}
			if len(slots) != n {
				t.Errorf("%v, %d trials: %d distinct probe phases, want every slot once", iv, n, len(slots))
			}
		}
	}
}
