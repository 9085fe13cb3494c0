package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/e2e/pair"
)

// nodeConfig writes a node's configuration by hand, for the scenarios
// that need top-level keys or several instances. instances are YAML list
// items, indented by 2.
func nodeConfig(t *testing.T, p *pair.Pair, n *pair.Node, top string, instances ...string) {
	t.Helper()
	body := fmt.Sprintf("metrics_listen: \"\"\ncontrol_socket: %s\nstate_dir: %s\n%sinstances:\n%s",
		socketOf(p, n), filepath.Join(p.Dir, n.Host.Name+"-state"), top, strings.Join(instances, ""))
	must(t, os.WriteFile(n.Config, []byte(body), 0o600))
}

// instanceYAML is one instance at 100 ms adverts; extra is more keys,
// indented by 4.
func instanceYAML(name string, vrid int, prio int, vip string, extra string) string {
	return fmt.Sprintf("  - name: %s\n    interface: eth0\n    vrid: %d\n    priority: %d\n    advert_interval: 100ms\n%s    vips:\n      - address: %s\n        description: lab\n        owner: e2e\n",
		name, vrid, prio, extra, vip)
}

// healthFile is a file whose presence a tracked script checks.
func healthFile(t *testing.T, p *pair.Pair, n *pair.Node) string {
	t.Helper()
	f := filepath.Join(p.Dir, n.Host.Name+"-healthy")
	must(t, os.WriteFile(f, nil, 0o644))
	return f
}

func scriptTrack(file string, weight int) string {
	return fmt.Sprintf("    track:\n      scripts:\n        - name: svc\n          command: [\"/usr/bin/test\", \"-e\", %q]\n          interval: 100ms\n          timeout: 90ms\n          weight: %d\n", file, weight)
}

// measureMove removes the health file of A and reports how long until B
// alone holds the VIP.
func measureMove(t *testing.T, p *pair.Pair, fault func()) time.Duration {
	t.Helper()
	start := time.Now()
	fault()
	must(t, p.WaitHolder(p.B, pair.VIP, 3*time.Second))
	return time.Since(start)
}

func TestScriptTrackerWeightMovesVIP(t *testing.T) {
	p := newPair(t, "ts")
	hf := healthFile(t, p, p.A)
	nodeConfig(t, p, p.A, "", instanceYAML("web", 51, 150, "198.18.0.100", scriptTrack(hf, -60)))
	nodeConfig(t, p, p.B, "", instanceYAML("web", 51, 100, "198.18.0.100", ""))
	must(t, p.Start(p.A))
	must(t, p.Start(p.B))
	must(t, p.WaitHolder(p.A, pair.VIP, 3*time.Second))
	took := measureMove(t, p, func() { must(t, os.Remove(hf)) })
	bound := pair.MasterDownInterval(100, interval) + interval
	t.Logf("failing script (weight -60): VIP moved after %v (bound MDI + 100ms = %v)", took, bound)
	if took > bound+slack {
		t.Errorf("VIP moved after %v, want within %v", took, bound)
	}
	s := status(t, p, p.A)
	if s.Instances[0].State != "backup" {
		t.Errorf("A is %s, want backup", s.Instances[0].State)
	}
	// Healthy again: A's priority is back to 150 and it preempts.
	must(t, os.WriteFile(hf, nil, 0o644))
	must(t, p.WaitHolder(p.A, pair.VIP, 3*time.Second))
}

func TestScriptTrackerFaultResigns(t *testing.T) {
	p := newPair(t, "tf")
	hf := healthFile(t, p, p.A)
	nodeConfig(t, p, p.A, "", instanceYAML("web", 51, 150, "198.18.0.100", scriptTrack(hf, 0)))
	nodeConfig(t, p, p.B, "", instanceYAML("web", 51, 100, "198.18.0.100", ""))
	must(t, p.Start(p.A))
	must(t, p.Start(p.B))
	must(t, p.WaitHolder(p.A, pair.VIP, 3*time.Second))
	took := measureMove(t, p, func() { must(t, os.Remove(hf)) })
	// Weight 0: fault, and the master resigns, so B takes over after its
	// Skew_Time once the script has failed.
	bound := pair.SkewTime(100, interval) + interval
	t.Logf("failing script (weight 0): VIP moved after %v (bound %v)", took, bound)
	if took > bound+slack {
		t.Errorf("VIP moved after %v, want within %v", took, bound)
	}
	if s := status(t, p, p.A); s.Instances[0].State != "fault" {
		t.Errorf("A is %s, want fault", s.Instances[0].State)
	}
	must(t, os.WriteFile(hf, nil, 0o644))
	must(t, p.WaitHolder(p.A, pair.VIP, 3*time.Second))
}

// A tracked interface: a veth pair inside A whose far end goes down.
func TestInterfaceAndFileTrackers(t *testing.T) {
	p := newPair(t, "ti")
	_, err := p.A.Host.Run("ip", "link", "add", "name", "up0", "type", "veth", "peer", "name", "up1")
	must(t, err)
	for _, l := range []string{"up0", "up1"} {
		_, err := p.A.Host.Run("ip", "link", "set", l, "up")
		must(t, err)
	}
	weightFile := filepath.Join(p.Dir, "a.weight")
	track := fmt.Sprintf("    track:\n      interfaces:\n        - name: up0\n          weight: -60\n      files:\n        - path: %s\n          weight: -1\n", weightFile)
	nodeConfig(t, p, p.A, "", instanceYAML("web", 51, 150, "198.18.0.100", track))
	nodeConfig(t, p, p.B, "", instanceYAML("web", 51, 100, "198.18.0.100", ""))
	must(t, p.Start(p.A))
	must(t, p.Start(p.B))
	must(t, p.WaitHolder(p.A, pair.VIP, 3*time.Second))

	took := measureMove(t, p, func() {
		_, err := p.A.Host.Run("ip", "link", "set", "up1", "down")
		must(t, err)
	})
	bound := pair.MasterDownInterval(100, interval) + interval
	t.Logf("tracked interface down (weight -60): VIP moved after %v (bound %v)", took, bound)
	if took > bound+slack {
		t.Errorf("VIP moved after %v, want within %v", took, bound)
	}
	_, err = p.A.Host.Run("ip", "link", "set", "up1", "up")
	must(t, err)
	must(t, p.WaitHolder(p.A, pair.VIP, 3*time.Second))

	// The file tracker: 60 × -1 takes A below B.
	took = measureMove(t, p, func() { must(t, os.WriteFile(weightFile, []byte("60\n"), 0o644)) })
	t.Logf("weight file 60 × -1: VIP moved after %v", took)
	if took > bound+time.Second+slack { // the file is polled every second
		t.Errorf("VIP moved after %v", took)
	}
	s := status(t, p, p.A)
	if len(s.Instances) != 1 {
		t.Fatal("no instance in status")
	}
	out, _ := exec.Command(p.Bin, "status", "--json", "--socket", socketOf(p, p.A)).Output()
	if !strings.Contains(string(out), `"effective_priority": 90`) {
		t.Errorf("A's status does not show effective priority 90:\n%s", out)
	}
}

func TestNotifyHookSeesTransitionsInOrder(t *testing.T) {
	p := newPair(t, "nh")
	record := filepath.Join(p.Dir, "notify.log")
	hook := filepath.Join(p.Dir, "hook.sh")
	must(t, os.WriteFile(hook, []byte("#!/bin/sh\nsleep 0.2\necho \"$VIPD_INSTANCE $VIPD_PREVIOUS_STATE>$VIPD_STATE $VIPD_PRIORITY $VIPD_VIPS\" >> "+record+"\n"), 0o755))
	notify := fmt.Sprintf("    notify:\n      command: [%q]\n      timeout: 5s\n", hook)
	nodeConfig(t, p, p.A, "", instanceYAML("web", 51, 150, "198.18.0.100", notify))
	nodeConfig(t, p, p.B, "", instanceYAML("web", 51, 100, "198.18.0.100", ""))
	must(t, p.Start(p.B))
	must(t, p.WaitHolder(p.B, pair.VIP, 3*time.Second))
	start := time.Now()
	must(t, p.Start(p.A))
	must(t, p.WaitHolder(p.A, pair.VIP, 3*time.Second))
	// The slow hook (200 ms a run) did not delay the takeover.
	if took := time.Since(start); took > pair.MasterDownInterval(150, interval)+slack+200*time.Millisecond {
		t.Errorf("takeover took %v with a slow hook", took)
	}
	must(t, p.Stop(p.A))
	want := []string{"web stopped>backup 150 198.18.0.100", "web backup>master 150 198.18.0.100",
		"web master>stopped 150 198.18.0.100"}
	deadline := time.Now().Add(3 * time.Second)
	for {
		b, _ := os.ReadFile(record)
		got := strings.Split(strings.TrimSpace(string(b)), "\n")
		if strings.Join(got, "|") == strings.Join(want, "|") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hook saw %q, want %q", got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// With multicast blocked on the segment, unicast peers still elect one
// master; adverts from a router that is not a listed peer are dropped.
func TestUnicastPeersWithMulticastBlocked(t *testing.T) {
	p := newPair(t, "uc")
	for _, n := range p.Nodes() {
		_, err := p.Lab.Bridge().Run("bridge", "link", "set", "dev", n.Host.Name, "mcast_flood", "off")
		must(t, err)
	}
	peers := func(addr netip.Addr) string { return fmt.Sprintf("    unicast_peers: [%s]\n", addr) }
	nodeConfig(t, p, p.A, "", instanceYAML("web", 51, 150, "198.18.0.100", peers(p.B.Host.Addr)))
	nodeConfig(t, p, p.B, "", instanceYAML("web", 51, 100, "198.18.0.100", peers(p.A.Host.Addr)))
	must(t, p.Start(p.A))
	must(t, p.Start(p.B))
	must(t, p.WaitHolder(p.A, pair.VIP, 3*time.Second))
	time.Sleep(time.Second) // no split brain develops
	must(t, p.WaitHolder(p.A, pair.VIP, 0))
	assertClientAt(t, p, p.A)
	o, err := p.Failover(p.B, func() error { return p.Stop(p.A) }, 3*time.Second, 200*time.Millisecond)
	must(t, err)
	t.Logf("unicast graceful stop: client gap %v", o.Gap)
	if bound := pair.SkewTime(100, interval); o.Gap > bound+slack {
		t.Errorf("client gap %v, want at most %v", o.Gap, bound)
	}

	// A stranger (the client) advertising VRID 51 to B is not a peer.
	strangerCfg := filepath.Join(p.Dir, "stranger.yaml")
	must(t, os.WriteFile(strangerCfg, []byte(fmt.Sprintf("metrics_listen: \"\"\ncontrol_socket: %s\nstate_dir: %s\ninstances:\n%s",
		filepath.Join(p.Dir, "stranger.sock"), filepath.Join(p.Dir, "stranger-state"),
		instanceYAML("web", 51, 200, "198.18.0.100", peers(p.B.Host.Addr)))), 0o600))
	_, err = p.Client.Start(filepath.Join(p.Dir, "stranger.log"), p.Bin, "run", "--config", strangerCfg)
	must(t, err)
	time.Sleep(time.Second)
	must(t, p.WaitHolder(p.B, pair.VIP, 0))
	if d := status(t, p, p.B).Instances[0].Dropped["not_peer"]; d == 0 {
		t.Error("B counted no not_peer drop for the stranger's adverts")
	}
}

func TestSyncGroupMovesTogether(t *testing.T) {
	p := newPair(t, "sg")
	hf := healthFile(t, p, p.A)
	vip2 := netip.MustParseAddr("198.18.0.101")
	group := "sync_groups:\n  - name: edge\n    instances: [web, api]\n"
	nodeConfig(t, p, p.A, group, instanceYAML("web", 51, 150, "198.18.0.100", scriptTrack(hf, 0)), instanceYAML("api", 52, 150, vip2.String(), ""))
	nodeConfig(t, p, p.B, group, instanceYAML("web", 51, 100, "198.18.0.100", ""), instanceYAML("api", 52, 100, vip2.String(), ""))
	must(t, p.Start(p.A))
	must(t, p.Start(p.B))
	must(t, p.WaitHolder(p.A, pair.VIP, 3*time.Second))
	must(t, p.WaitHolder(p.A, vip2, 3*time.Second))

	// web's tracker fails on A: web goes to fault and api, healthy, follows.
	must(t, os.Remove(hf))
	must(t, p.WaitHolder(p.B, pair.VIP, 3*time.Second))
	must(t, p.WaitHolder(p.B, vip2, 3*time.Second))
	time.Sleep(time.Second) // and A's api does not take it back
	must(t, p.WaitHolder(p.B, vip2, 0))
	s := statusAll(t, p, p.A)
	states := map[string]string{}
	for _, in := range s.Instances {
		states[in.Name] = in.State
	}
	if states["web"] != "fault" || states["api"] != "backup" {
		t.Errorf("A's group: %v, want web fault, api backup", states)
	}
	// Healthy again: the group moves back together.
	must(t, os.WriteFile(hf, nil, 0o644))
	must(t, p.WaitHolder(p.A, pair.VIP, 3*time.Second))
	must(t, p.WaitHolder(p.A, vip2, 3*time.Second))
}

func TestMaintenanceMode(t *testing.T) {
	p := newPair(t, "mm")
	nodeConfig(t, p, p.A, "", instanceYAML("web", 51, 150, "198.18.0.100", ""))
	nodeConfig(t, p, p.B, "", instanceYAML("web", 51, 100, "198.18.0.100", ""))
	must(t, p.Start(p.A))
	must(t, p.Start(p.B))
	must(t, p.WaitHolder(p.A, pair.VIP, 3*time.Second))

	maint := func(on string) error {
		out, err := exec.Command(p.Bin, "maintenance", "web", on, "--socket", socketOf(p, p.A)).CombinedOutput()
		if err != nil {
			return fmt.Errorf("vipd maintenance web %s: %v: %s", on, err, out)
		}
		return nil
	}
	o, err := p.Failover(p.B, func() error { return maint("on") }, 3*time.Second, 200*time.Millisecond)
	must(t, err)
	bound := pair.SkewTime(100, interval)
	t.Logf("maintenance on: client gap %v (bound Skew_Time %v + 30ms)", o.Gap, bound)
	if o.Gap > bound+slack {
		t.Errorf("client gap %v, want at most %v", o.Gap, bound)
	}
	s := status(t, p, p.A)
	if s.Instances[0].State != "backup" {
		t.Errorf("A in maintenance is %s, want backup", s.Instances[0].State)
	}
	out, _ := exec.Command(p.Bin, "status", "--socket", socketOf(p, p.A)).Output()
	if !strings.Contains(string(out), "(maint)") {
		t.Errorf("status does not show maintenance:\n%s", out)
	}

	// It survives a restart: A (priority 150) stays backup.
	must(t, p.Stop(p.A))
	must(t, p.Start(p.A))
	time.Sleep(pair.MasterDownInterval(150, interval) + 500*time.Millisecond)
	must(t, p.WaitHolder(p.B, pair.VIP, 0))

	// Only root may change it: a non-root caller that can reach the socket
	// is refused by its credentials.
	must(t, os.Chmod(socketOf(p, p.A), 0o666))
	must(t, os.Chmod(p.Dir, 0o755))
	must(t, os.Chmod(filepath.Dir(p.Dir), 0o755)) // the test's temporary directory
	bin := filepath.Join(p.Dir, "vipd-copy")
	copyFile(t, p.Bin, bin, 0o755)
	out, err = exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", bin,
		"maintenance", "web", "off", "--socket", socketOf(p, p.A)).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "caller uid 65534") {
		t.Errorf("non-root maintenance off: err %v, output %q; want refused by its credentials (caller uid 65534)", err, out)
	}
	must(t, p.WaitHolder(p.B, pair.VIP, 0))

	must(t, maint("off"))
	must(t, p.WaitHolder(p.A, pair.VIP, 3*time.Second))
	if err := maint("bogus"); err == nil {
		t.Error("maintenance with a bad argument succeeded")
	}
	out, err = exec.Command(p.Bin, "maintenance", "nosuch", "on", "--socket", socketOf(p, p.A)).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no such instance") {
		t.Errorf("maintenance of an unknown instance: %v %s", err, out)
	}
}
