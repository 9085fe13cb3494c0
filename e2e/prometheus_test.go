package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/e2e/pair"
)

const (
	promAddr = "198.18.0.250" // the Prometheus host's end of the management links
	promWeb  = "127.0.0.1:19090"
)

// addManagementLink joins node n to the client namespace with a point-to-
// point veth outside the VRRP segment, as a management network would: a
// partition of the segment leaves the node scrapable. n gets addr/32.
func addManagementLink(t *testing.T, p *pair.Pair, n *pair.Node, addr string) {
	t.Helper()
	outer := p.Lab.Prefix() + "m" + n.Host.Name // temporary names in the root namespace
	inner := outer + "p"
	steps := [][]string{
		{"ip", "link", "add", "name", outer, "type", "veth", "peer", "name", inner},
		{"ip", "link", "set", outer, "netns", p.Client.NS},
		{"ip", "link", "set", inner, "netns", n.Host.NS},
		{"ip", "-n", n.Host.NS, "link", "set", inner, "name", "mg0"},
		{"ip", "-n", n.Host.NS, "addr", "add", addr + "/32", "dev", "mg0"},
		{"ip", "-n", n.Host.NS, "link", "set", "mg0", "up"},
		{"ip", "-n", n.Host.NS, "route", "add", promAddr + "/32", "dev", "mg0"},
		{"ip", "-n", p.Client.NS, "addr", "add", promAddr + "/32", "dev", outer},
		{"ip", "-n", p.Client.NS, "link", "set", outer, "up"},
		{"ip", "-n", p.Client.NS, "route", "add", addr + "/32", "dev", outer},
	}
	for _, s := range steps {
		if out, err := exec.Command(s[0], s[1:]...).CombinedOutput(); err != nil {
			exec.Command("ip", "link", "del", outer).Run()
			t.Fatalf("%v: %v: %s", s, err, out)
		}
	}
}

// promQuery runs an instant query against the lab's Prometheus and returns
// the result lines ("series => value @[time]").
func promQuery(t *testing.T, p *pair.Pair, expr string) []string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", p.Client.NS, "promtool", "query", "instant", "http://"+promWeb, expr).CombinedOutput()
	if err != nil {
		return nil
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "=>") {
			lines = append(lines, l)
		}
	}
	return lines
}

func waitQuery(t *testing.T, p *pair.Pair, what, expr string, timeout time.Duration, ok func([]string) bool) []string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		res := promQuery(t, p, expr)
		if ok(res) {
			return res
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: after %v, %s gives %q", what, timeout, expr, res)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func TestPrometheusSeesFailoverAndSplitBrain(t *testing.T) {
	p := newPair(t, "pm")
	if _, err := exec.LookPath("prometheus"); err != nil {
		t.Fatal("prometheus not installed (Debian package prometheus)")
	}
	mgmt := map[*pair.Node]string{p.A: "198.18.0.201", p.B: "198.18.0.202"}
	for n, addr := range mgmt {
		addManagementLink(t, p, n, addr)
	}
	// Both nodes serve metrics on their management address.
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
	waitQuery(t, p, "node-a master", `vipd_vrrp_state{state="master",node="node-a",instance="web"} == 1`, 10*time.Second,
		func(r []string) bool { return len(r) == 1 })

	// A failover shows in the transition counters.
	must(t, p.Stop(p.A))
	must(t, p.WaitHolder(p.B, pair.VIP, 2*time.Second))
	waitQuery(t, p, "node-b's takeover counted", `vipd_vrrp_transitions_total{node="node-b",from="backup",to="master"} >= 1`,
		10*time.Second, func(r []string) bool { return len(r) == 1 })
	must(t, p.Start(p.A))
	must(t, p.WaitHolder(p.A, pair.VIP, 3*time.Second))

	// Partition A from the segment (the management links stay): two
	// masters, and the split-brain alert fires.
	must(t, p.A.Host.Detach())
	must(t, waitBoth(p, 3*time.Second))
	waitQuery(t, p, "split-brain alert firing", `ALERTS{alertname="VipdSplitBrain",alertstate="firing"}`, 40*time.Second,
		func(r []string) bool { return len(r) >= 1 })
	must(t, p.A.Host.Attach())
	must(t, p.WaitHolder(p.A, pair.VIP, 2*time.Second))
	waitQuery(t, p, "split-brain alert cleared", `ALERTS{alertname="VipdSplitBrain"}`, 40*time.Second,
		func(r []string) bool { return len(r) == 0 })
}
