package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/e2e/pair"
)

// conflictsOf is the MACs that n's vipd reports conflicting on the pair's
// VIP (status --json); nil while vipd does not answer.
func conflictsOf(t *testing.T, p *pair.Pair, n *pair.Node) []string {
	t.Helper()
	out, err := exec.Command(p.Bin, "status", "--json", "--socket", socketOf(p, n)).Output()
	if err != nil {
		return nil
	}
	var s struct {
		Instances []struct {
			VIPs []struct {
				Address   string `json:"address"`
				Conflicts []struct {
					MAC   string    `json:"mac"`
					Since time.Time `json:"since"`
				} `json:"conflicts"`
			} `json:"vips"`
		} `json:"instances"`
	}
	if err := json.Unmarshal(out, &s); err != nil {
		t.Fatalf("status of %s: %v\n%s", n.Host.Name, err, out)
	}
	var macs []string
	for _, in := range s.Instances {
		for _, v := range in.VIPs {
			if v.Address != pair.VIP.String() {
				continue
			}
			for _, c := range v.Conflicts {
				macs = append(macs, c.MAC)
			}
		}
	}
	return macs
}

// startLabPrometheus runs Prometheus in the client namespace, scraping both
// nodes on their management addresses with deploy/'s alert rules.
func startLabPrometheus(t *testing.T, p *pair.Pair, mgmt map[*pair.Node]string) {
	t.Helper()
	if _, err := exec.LookPath("prometheus"); err != nil {
		t.Fatal("prometheus not installed (Debian package prometheus)")
	}
	rules, err := filepath.Abs("../deploy/prometheus/alerts.yml")
	must(t, err)
	promDir := filepath.Join(p.Dir, "prometheus")
	must(t, os.MkdirAll(promDir, 0o755))
	promCfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: vipd
    honor_labels: true
    scrape_interval: 1s
    scrape_timeout: 900ms
    static_configs:
      - targets: ["%s:9654"]
        labels: {node: node-a, pair: lab}
      - targets: ["%s:9654"]
        labels: {node: node-b, pair: lab}
`, rules, mgmt[p.A], mgmt[p.B])
	cfgPath := filepath.Join(promDir, "prometheus.yml")
	must(t, os.WriteFile(cfgPath, []byte(promCfg), 0o644))
	_, err = p.Client.Start(filepath.Join(p.Dir, "prometheus.log"), "prometheus",
		"--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(promDir, "data"),
		"--web.listen-address="+promWeb, "--log.level=warn")
	must(t, err)
	waitQuery(t, p, "both nodes scraped", `sum(up{job="vipd"})`, 30*time.Second, func(r []string) bool {
		return len(r) == 1 && strings.Contains(r[0], "=> 2 @")
	})
}

// A third host on the segment adds the VIP by hand: both nodes, master
// and backup, report its MAC as a conflict within 5 s (status and metric)
// and the alert fires in the lab's Prometheus; vipd does not fight (the
// master keeps the VIP, no transition). Removing the address clears both,
// the metric and the alert.
func TestConflictThirdHostReported(t *testing.T) {
	p := newPair(t, "cf")
	mgmt := map[*pair.Node]string{p.A: "198.18.0.201", p.B: "198.18.0.202"}
	for n, addr := range mgmt {
		addManagementLink(t, p, n, addr)
	}
	must(t, p.Configure(p.A, pair.NodeConfig{Priority: 150, AdvertInterval: interval}))
	must(t, p.Configure(p.B, pair.NodeConfig{Priority: 100, AdvertInterval: interval}))
	for n, addr := range mgmt {
		b, err := os.ReadFile(n.Config)
		must(t, err)
		b = []byte(strings.Replace(string(b), `metrics_listen: ""`, "metrics_listen: "+addr+":9654", 1))
		must(t, os.WriteFile(n.Config, b, 0o600))
	}
	must(t, p.Start(p.A))
	must(t, p.Start(p.B))
	must(t, p.WaitHolder(p.A, pair.VIP, 3*time.Second))
	waitVipdState(t, p, p.B, "backup", 3*time.Second)
	startLabPrometheus(t, p, mgmt)

	rogue, err := p.Lab.AddHost("rogue", "198.18.0.60/24")
	must(t, err)
	rogueMAC, err := rogue.MAC()
	must(t, err)
	mac := rogueMAC.String()

	// Steady state, a failover and back: no conflict is reported for the
	// nodes' own MACs (several probe rounds).
	must(t, p.Stop(p.A))
	must(t, p.WaitHolder(p.B, pair.VIP, 3*time.Second))
	must(t, p.Start(p.A))
	must(t, p.WaitHolder(p.A, pair.VIP, 3*time.Second))
	quiet := time.Now().Add(5 * time.Second)
	for time.Now().Before(quiet) {
		for _, n := range p.Nodes() {
			if c := conflictsOf(t, p, n); len(c) != 0 {
				t.Fatalf("%s reports a conflict %v with no third host holding the VIP", n.Host.Name, c)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	before := status(t, p, p.A).Instances[0].Counters.Transitions
	aMAC, err := p.A.Host.MAC()
	must(t, err)
	if out, _ := doctor(t, p, p.B); !strings.Contains(out, "answers from the master's MAC "+aMAC.String()) {
		t.Errorf("doctor on the backup does not find the VIP answering from the master's MAC %s:\n%s", aMAC, out)
	}

	t0 := time.Now()
	_, err = rogue.Run("ip", "addr", "add", pair.VIP.String()+"/32", "dev", "eth0")
	must(t, err)
	detected := map[*pair.Node]time.Duration{}
	for len(detected) < 2 {
		for _, n := range p.Nodes() {
			if _, ok := detected[n]; ok {
				continue
			}
			c := conflictsOf(t, p, n)
			if len(c) == 1 && c[0] == mac {
				detected[n] = time.Since(t0)
			} else if len(c) > 0 {
				t.Fatalf("%s reports %v, want only the third host's %s", n.Host.Name, c, mac)
			}
		}
		if time.Since(t0) > 5*time.Second {
			t.Fatalf("after 5s, detected by %d of 2 nodes (%v)", len(detected), detected)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("conflict with %s detected: master (%s) after %v, backup (%s) after %v",
		mac, p.A.Host.Name, detected[p.A].Round(time.Millisecond), p.B.Host.Name, detected[p.B].Round(time.Millisecond))
	waitQuery(t, p, "conflict metric on both nodes", fmt.Sprintf(`vipd_vip_conflict{vip=%q,mac=%q} == 1`, pair.VIP.String(), mac),
		10*time.Second, func(r []string) bool { return len(r) == 2 })
	waitQuery(t, p, "conflict alert firing for both nodes",
		fmt.Sprintf(`ALERTS{alertname="VipdAddressConflict",alertstate="firing",mac=%q}`, mac), 20*time.Second,
		func(r []string) bool { return len(r) == 2 })
	t.Logf("alert firing %v after the address was added", time.Since(t0).Round(time.Millisecond))

	for _, n := range p.Nodes() {
		out, code := doctor(t, p, n)
		if code == 0 || !strings.Contains(out, "address conflict: VIP "+pair.VIP.String()+" is also answered for by "+mac) {
			t.Errorf("doctor on %s: exit %d, no conflict with %s:\n%s", n.Host.Name, code, mac, out)
		}
	}

	// vipd did not fight: A is still master and holds the VIP, no
	// transition happened.
	must(t, p.WaitHolder(p.A, pair.VIP, time.Second))
	if after := status(t, p, p.A).Instances[0].Counters.Transitions; fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("transitions changed during the conflict: %v, then %v", before, after)
	}

	t1 := time.Now()
	_, err = rogue.Run("ip", "addr", "del", pair.VIP.String()+"/32", "dev", "eth0")
	must(t, err)
	cleared := map[*pair.Node]time.Duration{}
	for len(cleared) < 2 {
		for _, n := range p.Nodes() {
			if _, ok := cleared[n]; !ok && len(conflictsOf(t, p, n)) == 0 {
				cleared[n] = time.Since(t1)
			}
		}
		if time.Since(t1) > 20*time.Second {
			t.Fatalf("after 20s, cleared on %d of 2 nodes", len(cleared))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("conflict cleared: master after %v, backup after %v", cleared[p.A].Round(time.Millisecond), cleared[p.B].Round(time.Millisecond))
	waitQuery(t, p, "conflict metric gone", `vipd_vip_conflict`, 10*time.Second, func(r []string) bool { return len(r) == 0 })
	waitQuery(t, p, "conflict alert resolved", `ALERTS{alertname="VipdAddressConflict"}`, 20*time.Second,
		func(r []string) bool { return len(r) == 0 })
}
