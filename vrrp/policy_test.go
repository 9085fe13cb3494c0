package vrrp

import (
	"testing"

	"github.com/vipd/vipd/config"
)

func TestEffectivePriority(t *testing.T) {
	for _, tc := range []struct {
		configured uint8
		weights    int
		want       uint8
	}{
		{100, 0, 100}, {100, -60, 40}, {100, -200, 1}, {100, 200, 254},
		{255, 0, 255}, {255, -1, 254}, {255, 10, 254}, {1, -5, 1},
	} {
		if got := effectivePriority(tc.configured, tc.weights); got != tc.want {
			t.Errorf("effectivePriority(%d, %d) = %d, want %d", tc.configured, tc.weights, got, tc.want)
		}
	}
}

func TestWeights(t *testing.T) {
	in := &instance{cfg: config.Instance{Track: config.Track{
		Interfaces: []config.TrackInterface{{Name: "eth1", Weight: -20}, {Name: "eth2", Weight: 0}},
		Scripts:    []config.TrackScript{{Name: "haproxy", Weight: -60}, {Name: "db", Weight: 0}},
		Files:      []config.TrackFile{{Path: "/run/w", Weight: 2}, {Path: "/run/f", Weight: 0}},
	}}, track: newTrackState()}
	check := func(what string, wantSum int, wantFault bool) {
		t.Helper()
		if sum, fault := in.weights(); sum != wantSum || fault != wantFault {
			t.Errorf("%s: weights %d fault %v, want %d %v", what, sum, fault, wantSum, wantFault)
		}
	}
	check("all healthy", 0, false)
	in.track.ifDown["eth1"] = true
	check("eth1 down", -20, false)
	in.track.scriptFail["haproxy"] = true
	check("and haproxy failing", -80, false)
	in.track.fileValue["/run/w"] = 5
	check("and file 5 × 2", -70, false)
	in.track.scriptFail["db"] = true
	check("and a weight-0 script failing", -70, true)
	in.track.scriptFail["db"] = false
	in.track.fileValue["/run/f"] = 1
	check("and a weight-0 file non-zero", -70, true)
	in.track.fileValue["/run/f"] = 0
	in.track.ifDown["eth2"] = true
	check("and a weight-0 interface down", -70, true)
}
