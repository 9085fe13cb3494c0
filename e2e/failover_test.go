package e2e

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/e2e/pair"
)

func TestElectionHigherPriorityWins(t *testing.T) {
	p := newPair(t, "el")
	// Start the lower priority first: the higher one must still win.
	must(t, p.Configure(p.A, pair.NodeConfig{Priority: 150, AdvertInterval: interval}))
	must(t, p.Configure(p.B, pair.NodeConfig{Priority: 100, AdvertInterval: interval}))
	must(t, p.Start(p.B))
	must(t, p.WaitHolder(p.B, pair.VIP, 3*time.Second))
	must(t, p.Start(p.A))
	must(t, p.WaitHolder(p.A, pair.VIP, 3*time.Second))
	assertClientAt(t, p, p.A)
	// And it stays there: no flapping over a few dozen adverts.
	time.Sleep(1 * time.Second)
	must(t, p.WaitHolder(p.A, pair.VIP, 0))
}

func TestLinkCutOnMaster(t *testing.T) {
	p := newPair(t, "lc")
	startPair(t, p, pair.NodeConfig{}, pair.NodeConfig{})
	bound := pair.MasterDownInterval(100, interval)
	o, err := p.Failover(p.B, p.A.Host.CutLink, 3*time.Second, 200*time.Millisecond)
	must(t, err)
	t.Logf("link cut: client gap %v (bound 3×%v + skew = %v), VIP landing → first reply %v", o.Gap, interval, bound, o.LandToReply)
	if o.Gap > bound+slack {
		t.Errorf("client gap %v after a link cut, want at most %v + %v", o.Gap, bound, slack)
	}
	// The cut-off master lost carrier: it went to fault and dropped the VIP.
	if ok, err := p.A.Host.HasAddr(pair.VIP); err != nil || ok {
		t.Errorf("cut-off master still holds the VIP (err %v)", err)
	}
	assertClientAt(t, p, p.B)
	// Link back: A (higher priority, preempt) takes the VIP back.
	must(t, p.A.Host.RestoreLink())
	must(t, p.WaitHolder(p.A, pair.VIP, 3*time.Second))
	assertClientAt(t, p, p.A)
}

// TestGracefulStopMakesBeforeBreak: a stopped master sends its priority-0
// advert but keeps answering for the VIP until the backup, Skew_Time
// later, advertises as the new master; only then does it let go. The
// client loses (nearly) nothing, and the two nodes hold the VIP together
// only for the moment the old master takes to hear the new one.
func TestGracefulStopMakesBeforeBreak(t *testing.T) {
	p := newPair(t, "gs")
	startPair(t, p, pair.NodeConfig{}, pair.NodeConfig{})
	skew := pair.SkewTime(100, interval)
	old, err := p.A.Host.WatchAddr(pair.VIP)
	must(t, err)
	defer old.Stop()
	o, err := p.Failover(p.B, func() error { return p.Stop(p.A) }, 3*time.Second, 200*time.Millisecond)
	must(t, err)
	var released time.Time
	for _, ev := range old.Events() {
		if !ev.Added && ev.Time.After(o.Fault) {
			released = ev.Time
		}
	}
	t.Logf("graceful stop: client gap %v (Skew_Time %v), VIP on b %v after the signal, off a %v after it",
		o.Gap, skew, o.Land.Sub(o.Fault), released.Sub(o.Fault))
	// Without make-before-break the client would wait out Skew_Time.
	if o.Gap > skew/2 {
		t.Errorf("client gap %v after a graceful stop, want well under Skew_Time %v: the old master should answer until the new one does", o.Gap, skew)
	}
	switch {
	case released.IsZero():
		t.Errorf("no address event showed the VIP leaving a")
	case released.Before(o.Land.Add(-watchSkew)):
		t.Errorf("a let the VIP go %v before b took it, want after", o.Land.Sub(released))
	case released.Sub(o.Land) > 50*time.Millisecond:
		t.Errorf("both nodes held the VIP for %v, want only until a heard b's first advert", released.Sub(o.Land))
	}
	if ok, err := p.A.Host.HasAddr(pair.VIP); err != nil || ok {
		t.Errorf("stopped node still holds the VIP (err %v)", err)
	}
	assertClientAt(t, p, p.B)
	logb, err := os.ReadFile(p.A.Log)
	must(t, err)
	for _, want := range []string{"reason=shutdown", `msg="VIPs handed over"`} {
		if !strings.Contains(string(logb), want) {
			t.Errorf("stopped node's log has no %s:\n%s", want, logb)
		}
	}
}

// TestGracefulStopWithoutBackupLetsGo: with nobody to take over, a stopped
// master waits one advert interval for a successor, then removes its VIPs
// and exits.
func TestGracefulStopWithoutBackupLetsGo(t *testing.T) {
	p := newPair(t, "gn")
	must(t, p.Configure(p.A, pair.NodeConfig{Priority: 150, AdvertInterval: interval}))
	must(t, p.Start(p.A))
	must(t, p.WaitHolder(p.A, pair.VIP, 3*time.Second))
	start := time.Now()
	must(t, p.Stop(p.A))
	took := time.Since(start)
	t.Logf("stop with no backup took %v", took)
	if took > interval+time.Second {
		t.Errorf("stopping took %v, want about one advert interval (%v)", took, interval)
	}
	if ok, err := p.A.Host.HasAddr(pair.VIP); err != nil || ok {
		t.Errorf("stopped node still holds the VIP (err %v)", err)
	}
	logb, err := os.ReadFile(p.A.Log)
	must(t, err)
	if !strings.Contains(string(logb), "no router took over") {
		t.Errorf("stopped node's log does not say that nobody took over:\n%s", logb)
	}
}

func TestPreemptWhenHigherPriorityReturns(t *testing.T) {
	p := newPair(t, "pr")
	startPair(t, p, pair.NodeConfig{}, pair.NodeConfig{})
	must(t, p.Stop(p.A))
	must(t, p.WaitHolder(p.B, pair.VIP, 2*time.Second))
	o, err := p.Failover(p.A, func() error { return p.Start(p.A) }, 3*time.Second, 200*time.Millisecond)
	must(t, err)
	t.Logf("preempt: client gap %v", o.Gap)
	// A planned move: the old master hands over as soon as it hears the
	// new one, so the client barely notices.
	if o.Gap > 50*time.Millisecond+slack {
		t.Errorf("client gap %v during preemption, want a short one", o.Gap)
	}
	assertClientAt(t, p, p.A)
}

func TestNoPreempt(t *testing.T) {
	p := newPair(t, "np")
	must(t, p.Configure(p.A, pair.NodeConfig{Priority: 150, AdvertInterval: interval, NoPreempt: true}))
	must(t, p.Configure(p.B, pair.NodeConfig{Priority: 100, AdvertInterval: interval}))
	must(t, p.Start(p.B))
	must(t, p.WaitHolder(p.B, pair.VIP, 3*time.Second))
	probe, err := p.Client.StartProbe(pair.VIP, pair.ProbeInterval)
	must(t, err)
	time.Sleep(200 * time.Millisecond) // replies flowing first
	start := time.Now()
	must(t, p.Start(p.A))
	// Many Master_Down_Intervals of the higher-priority node.
	time.Sleep(2 * time.Second)
	r := probe.Stop()
	hs, err := p.Holders(pair.VIP)
	must(t, err)
	if len(hs) != 1 || hs[0] != p.B {
		t.Fatalf("with preempt: false on the higher priority, holders are %v, want only b", hs)
	}
	if gap := r.LongestGap(start, r.End); gap > 50*time.Millisecond {
		t.Errorf("client gap %v while the non-preempting node joined, want none", gap)
	}
	// It still takes over when the master goes away.
	must(t, p.Stop(p.B))
	must(t, p.WaitHolder(p.A, pair.VIP, 2*time.Second))
}

func TestSplitBrainHeals(t *testing.T) {
	p := newPair(t, "sb")
	startPair(t, p, pair.NodeConfig{}, pair.NodeConfig{})
	// Partition A with its carrier up: it stays master, and B takes over.
	must(t, p.A.Host.Detach())
	must(t, waitBoth(p, 3*time.Second))
	assertClientAt(t, p, p.B)
	// Heal: the higher priority keeps the VIP, the other yields at once,
	// and A re-announces so the client moves back from B's MAC.
	probe, err := p.Client.StartProbe(pair.VIP, pair.ProbeInterval)
	must(t, err)
	time.Sleep(100 * time.Millisecond)
	healed := time.Now()
	must(t, p.A.Host.Attach())
	err = p.WaitHolder(p.A, pair.VIP, interval+slack)
	took := time.Since(healed)
	time.Sleep(200 * time.Millisecond)
	r := probe.Stop()
	must(t, err)
	gap := r.LongestGap(healed.Add(-50*time.Millisecond), r.End)
	t.Logf("split brain healed: one holder after %v, client gap %v", took, gap)
	if gap > 50*time.Millisecond+slack {
		t.Errorf("client gap %v around the heal, want it short (the winner re-announces)", gap)
	}
	assertClientAt(t, p, p.A)
}

func waitBoth(p *pair.Pair, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		hs, err := p.Holders(pair.VIP)
		if err != nil || len(hs) == 2 {
			return err
		}
		if time.Now().After(deadline) {
			return pair.ErrTimeout
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestKill9AndRestartLeavesNoStaleVIP(t *testing.T) {
	p := newPair(t, "k9")
	startPair(t, p, pair.NodeConfig{}, pair.NodeConfig{})
	// kill -9 leaves the alias on A's interface; B takes over after its
	// Master_Down_Interval.
	must(t, p.Kill(p.A))
	must(t, waitBoth(p, 3*time.Second))
	restarted := time.Now()
	must(t, p.Start(p.A))
	// A removes the stale alias during start-up, before it enters backup.
	deadline := time.Now().Add(3 * time.Second)
	for {
		ok, err := p.A.Host.HasAddr(pair.VIP)
		must(t, err)
		if !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("restarted node did not remove the stale VIP")
		}
		time.Sleep(2 * time.Millisecond)
	}
	up := time.Now()
	t.Logf("stale VIP removed %v after the restart", up.Sub(restarted))
	// From one Master_Down_Interval after start-up on (plus a little for
	// the advert to cross), never two holders.
	settled := up.Add(pair.MasterDownInterval(150, interval) + 30*time.Millisecond)
	for time.Now().Before(settled.Add(2 * time.Second)) {
		hs, err := p.Holders(pair.VIP)
		must(t, err)
		if len(hs) > 1 && time.Now().After(settled) {
			t.Fatalf("two holders %v after the restarted node was up", time.Since(up))
		}
		time.Sleep(2 * time.Millisecond)
	}
	must(t, p.WaitHolder(p.A, pair.VIP, 0))

	// kill -9 of the backup changes nothing for the client.
	must(t, p.Kill(p.B))
	time.Sleep(500 * time.Millisecond)
	must(t, p.WaitHolder(p.A, pair.VIP, 0))
	must(t, p.Start(p.B))
	time.Sleep(500 * time.Millisecond)
	must(t, p.WaitHolder(p.A, pair.VIP, 0))
	assertClientAt(t, p, p.A)
}

// A config that names a missing interface, or a VIP that is the
// interface's own address, stops vipd at start-up with a clear error and
// nothing configured.
func TestRunRefusesWhatCannotWork(t *testing.T) {
	p := newPair(t, "rf")
	for _, tc := range []struct{ name, iface, vip, want string }{
		{"missing interface", "eth9", "198.18.0.100", "eth9"},
		{"own address", "eth0", "198.18.0.11", "own address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := filepath.Join(p.Dir, "bad.yaml")
			body := "metrics_listen: \"\"\nstate_dir: " + filepath.Join(p.Dir, "bad-state") + "\ninstances:\n  - name: web\n    interface: " + tc.iface +
				"\n    vrid: 51\n    advert_interval: 100ms\n    vips: [" + tc.vip + "]\n"
			must(t, os.WriteFile(cfg, []byte(body), 0o600))
			out, err := exec.Command("ip", "netns", "exec", p.A.Host.NS, p.Bin, "run", "--config", cfg).CombinedOutput()
			var ee *exec.ExitError
			if err == nil || !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("vipd run: err %v, want exit 1; output:\n%s", err, out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Errorf("output does not name the problem (%q):\n%s", tc.want, out)
			}
			if ok, err := p.A.Host.HasAddr(pair.VIP); err != nil || ok {
				t.Errorf("VIP was configured by a refused start (err %v)", err)
			}
		})
	}
}

// A bad config file: file:line errors and exit 1, from run and from check.
func TestBadConfigFileLineErrors(t *testing.T) {
	needLab(t)
	bin := vipdBin(t)
	cfg := filepath.Join(t.TempDir(), "vipd.yaml")
	must(t, os.WriteFile(cfg, []byte("instances:\n  - name: web\n    interface: eth0\n    vrid: 300\n    vips: [198.18.0.100]\n    colour: blue\n"), 0o600))
	for _, sub := range []string{"check", "run"} {
		cmd := exec.Command(bin, sub, "--config", cfg)
		out, err := cmd.CombinedOutput()
		if code := exitCode(err); code != 1 {
			t.Errorf("vipd %s: exit %d, want 1; output:\n%s", sub, code, out)
		}
		for _, want := range []string{cfg + ":4: ", cfg + ":6: "} {
			if !strings.Contains(string(out), want) {
				t.Errorf("vipd %s output lacks %q:\n%s", sub, want, out)
			}
		}
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	return -1
}
