package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/vipd/vipd/e2e/pair"
)

// A process tracker on the master: a sleep with a distinctive argument,
// started by the test in A's namespace, is killed by its PID; A's priority
// drops by the weight and B takes over within a scan, the Master_Down
// interval and an advert; the process started again, A preempts back.
func TestProcessTrackerMovesVIP(t *testing.T) {
	p := newPair(t, "tpk")
	sleep, err := exec.LookPath("sleep")
	must(t, err)
	sleep, err = filepath.EvalSymlinks(sleep)
	must(t, err)
	const arg = "3600.1414" // no other sleep has it
	track := fmt.Sprintf("    track:\n      processes:\n        - name: svc\n          process: %s\n          args: [%q]\n          interval: 100ms\n          weight: -60\n", sleep, arg)
	nodeConfig(t, p, p.A, "", instanceYAML("web", 51, 150, "198.18.0.100", track))
	nodeConfig(t, p, p.B, "", instanceYAML("web", 51, 100, "198.18.0.100", ""))

	svc, err := p.A.Host.Start("", sleep, arg)
	must(t, err)
	must(t, p.Start(p.A))
	must(t, p.Start(p.B))
	must(t, p.WaitHolder(p.A, pair.VIP, 3*time.Second))
	if got := processTracker(t, p, p.A); got.Failing || got.Count == nil || *got.Count != 1 {
		t.Fatalf("A's process tracker with the process running: %+v", got)
	}

	took := measureMove(t, p, func() { must(t, svc.Kill()) })
	bound := interval + pair.MasterDownInterval(100, interval) + interval // a scan, Master_Down, an advert
	t.Logf("tracked process killed (weight -60): VIP moved after %v (bound scan + MDI + advert = %v)", took, bound)
	if took > bound+slack {
		t.Errorf("VIP moved after %v, want within %v", took, bound)
	}
	if got := processTracker(t, p, p.A); !got.Failing || got.Count == nil || *got.Count != 0 {
		t.Errorf("A's process tracker after the kill: %+v", got)
	}
	if s := status(t, p, p.A); s.Instances[0].State != "backup" {
		t.Errorf("A is %s, want backup", s.Instances[0].State)
	}

	// Started again: A's priority is 150 again and it preempts.
	start := time.Now()
	svc2, err := p.A.Host.Start("", sleep, arg)
	must(t, err)
	defer func() { _ = svc2.Kill() }()
	must(t, p.WaitHolder(p.A, pair.VIP, 3*time.Second))
	back := time.Since(start)
	t.Logf("tracked process back: A master again after %v", back)
	if back > bound+slack {
		t.Errorf("A took the VIP back after %v, want within %v", back, bound)
	}
}

// processTrackerJSON is one tracker in `vipd status --json`.
type processTrackerJSON struct {
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	Failing bool   `json:"failing"`
	Count   *int   `json:"count"`
}

// processTracker returns the first process tracker of n's only instance.
func processTracker(t *testing.T, p *pair.Pair, n *pair.Node) processTrackerJSON {
	t.Helper()
	s := statusInto[struct {
		Instances []struct {
			Trackers []processTrackerJSON `json:"trackers"`
		} `json:"instances"`
	}](t, p, n)
	for _, in := range s.Instances {
		for _, tr := range in.Trackers {
			if tr.Kind == "process" {
				return tr
			}
		}
	}
	t.Fatalf("no process tracker in %s's status", n.Host.Name)
	return processTrackerJSON{}
}
