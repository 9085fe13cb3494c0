package e2e

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/e2e/lab"
	"github.com/vipd/vipd/e2e/pair"
)

// The two-uplink lab of routes and rules that follow the master: a and b
// have eth0 on the VRRP segment (br0), where gateway gw1 (198.18.0.1) is
// their default route, and eth1 on a second segment (br2 in the bridge
// namespace) with gateway gw2 (198.18.2.1). The VIP is on eth1. A client
// address beyond the gateways, 198.18.4.50, lives on gw2, which sends the
// requests; gw1 does not forward and counts the echo replies that reach it
// (nftables). Replies from the VIP leave by the second gateway only if the
// master holds `from VIP table 100` and `default via gw2 table 100`: then
// gw2's ping gets its replies and gw1 counts none.
var (
	rtVIP    = netip.MustParseAddr("198.18.2.100")
	rtClient = "198.18.4.50"
)

// secondUplink builds br2 and links each host to it as eth1 with addr.
func secondUplink(t *testing.T, l *lab.Lab, hosts []*lab.Host, addrs []string) {
	t.Helper()
	br := l.Bridge()
	run := func(h *lab.Host, args ...string) {
		t.Helper()
		if out, err := h.Run(args...); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	run(br, "ip", "link", "add", "name", "br2", "type", "bridge")
	run(br, "ip", "link", "set", "dev", "br2", "up")
	for i, h := range hosts {
		port := h.Name + "u2"
		run(br, "ip", "link", "add", "name", port, "type", "veth", "peer", "name", "eth1", "netns", h.NS)
		run(br, "ip", "link", "set", "dev", port, "master", "br2", "up")
		run(h, "ip", "addr", "add", addrs[i], "dev", "eth1")
		run(h, "ip", "link", "set", "dev", "eth1", "up")
	}
}

// rtConfig is a node's configuration: the VIP on eth1, the rule and the
// table-100 default route through gw2.
func rtConfig(p *pair.Pair, n *pair.Node, prio int) string {
	return fmt.Sprintf(`metrics_listen: ""
control_socket: %s
state_dir: %s
instances:
  - name: web
    interface: eth0
    vrid: 51
    priority: %d
    advert_interval: 100ms
    vips:
      - {address: %s, interface: eth1}
    routes:
      - to: default
        via: 198.18.2.1
        interface: eth1
        table: 100
    rules:
      - from: %s/32
        table: 100
        priority: 100
`, filepath.Join(p.Dir, n.Host.Name+".sock"), filepath.Join(p.Dir, n.Host.Name+"-state"), prio, rtVIP, rtVIP)
}

// onEth1 reports whether h holds a on eth1.
func onEth1(t *testing.T, h *lab.Host, a netip.Addr) bool {
	t.Helper()
	out, err := h.Run("ip", "-4", "-o", "addr", "show", "dev", "eth1")
	must(t, err)
	return strings.Contains(out, " "+a.String()+"/")
}

func waitEth1Holder(t *testing.T, p *pair.Pair, want *pair.Node) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		a, b := onEth1(t, p.A.Host, rtVIP), onEth1(t, p.B.Host, rtVIP)
		if a == (want == p.A) && b == (want == p.B) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s alone to hold %s on eth1: a %v, b %v", want.Host.Name, rtVIP, a, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// gw1Replies is how many echo replies to the client reached gw1.
func gw1Replies(t *testing.T, gw1 *lab.Host) int {
	t.Helper()
	out, err := gw1.Run("nft", "list", "chain", "ip", "vipdrt", "in")
	must(t, err)
	i := strings.Index(out, "counter packets ")
	if i < 0 {
		t.Fatalf("no counter in gw1's chain:\n%s", out)
	}
	f := strings.Fields(out[i+len("counter packets "):])
	n, err := strconv.Atoi(f[0])
	must(t, err)
	return n
}

// pingFromClient pings the VIP from the client address on gw2 and returns
// how many replies came back (to gw2, by the second uplink).
func pingFromClient(t *testing.T, gw2 *lab.Host, count int) int {
	t.Helper()
	out, _ := gw2.Run("ping", "-n", "-q", "-c", strconv.Itoa(count), "-i", "0.05", "-W", "1", "-I", rtClient, rtVIP.String())
	i := strings.Index(out, " received")
	if i < 0 {
		t.Fatalf("ping output:\n%s", out)
	}
	f := strings.Fields(out[:i])
	n, err := strconv.Atoi(f[len(f)-1])
	must(t, err)
	return n
}

func hasRule(t *testing.T, h *lab.Host) bool {
	t.Helper()
	out, err := h.Run("ip", "-4", "rule", "show", "priority", "100")
	must(t, err)
	return strings.Contains(out, "from "+rtVIP.String()+" lookup 100")
}

func hasTable100Default(t *testing.T, h *lab.Host) bool {
	t.Helper()
	out, err := h.Run("ip", "-4", "route", "show", "table", "100")
	if err != nil && strings.Contains(out, "table does not exist") {
		return false // no route in table 100 at all
	}
	must(t, err)
	return strings.Contains(out, "default via 198.18.2.1 dev eth1")
}

// TestRoutesFollowMasterTwoUplinks: replies from the VIP leave by the second
// gateway on whichever node is master, before and after a failover; the
// backup holds neither rule nor route; a rule deleted behind vipd's back
// is back within 1 s.
func TestRoutesFollowMasterTwoUplinks(t *testing.T) {
	p := newPair(t, "rt")
	gw1, err := p.Lab.AddHost("gw1", "198.18.0.1/24")
	must(t, err)
	gw2, err := p.Lab.AddHost("gw2", "198.18.3.1/24")
	must(t, err)
	must(t, gw2.Detach()) // gw2 is on the second segment only
	secondUplink(t, p.Lab, []*lab.Host{p.A.Host, p.B.Host, gw2}, []string{"198.18.2.11/24", "198.18.2.12/24", "198.18.2.1/24"})
	for _, n := range p.Nodes() {
		if out, err := n.Host.Run("ip", "route", "add", "default", "via", "198.18.0.1", "dev", "eth0"); err != nil {
			t.Fatalf("default route on %s: %v: %s", n.Host.Name, err, out)
		}
	}
	if out, err := gw2.Run("ip", "addr", "add", rtClient+"/32", "dev", "lo"); err != nil {
		t.Fatalf("client address: %v: %s", err, out)
	}
	if out, err := gw1.Run("nft", "add table ip vipdrt; add chain ip vipdrt in { type filter hook prerouting priority 0; }; add rule ip vipdrt in ip daddr "+rtClient+" icmp type echo-reply counter"); err != nil {
		t.Fatalf("nft on gw1: %v: %s", err, out)
	}

	// Control: the VIP on a without the rule. The replies take a's main
	// default route, to gw1: the test can tell one way from the other.
	if out, err := p.A.Host.Run("ip", "addr", "add", rtVIP.String()+"/32", "dev", "eth1"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if got := pingFromClient(t, gw2, 5); got != 0 {
		t.Fatalf("control: %d replies by gw2 without the rule, want 0", got)
	}
	if got := gw1Replies(t, gw1); got == 0 {
		t.Fatal("control: no replies reached gw1 without the rule")
	}
	if out, err := p.A.Host.Run("ip", "addr", "del", rtVIP.String()+"/32", "dev", "eth1"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	_, _ = gw2.Run("ip", "neigh", "flush", "dev", "eth1")
	atGW1 := gw1Replies(t, gw1)

	must(t, os.WriteFile(p.A.Config, []byte(rtConfig(p, p.A, 150)), 0o600))
	must(t, os.WriteFile(p.B.Config, []byte(rtConfig(p, p.B, 100)), 0o600))
	must(t, p.Start(p.A))
	must(t, p.Start(p.B))
	waitEth1Holder(t, p, p.A)
	time.Sleep(300 * time.Millisecond)

	check := func(master, backup *pair.Node) {
		t.Helper()
		if !hasRule(t, master.Host) || !hasTable100Default(t, master.Host) {
			t.Fatalf("master %s lacks the rule or the route", master.Host.Name)
		}
		if hasRule(t, backup.Host) || hasTable100Default(t, backup.Host) {
			t.Fatalf("backup %s holds the rule or the route", backup.Host.Name)
		}
		if got := pingFromClient(t, gw2, 10); got < 9 {
			t.Fatalf("master %s: %d of 10 replies came back by gw2", master.Host.Name, got)
		}
		if got := gw1Replies(t, gw1); got != atGW1 {
			t.Fatalf("master %s: %d replies went to gw1", master.Host.Name, got-atGW1)
		}
		t.Logf("master %s: replies from %s leave by gw2, none by gw1", master.Host.Name, rtVIP)
	}
	check(p.A, p.B)

	// Failover: a stops; b takes the VIP, the route and the rule.
	must(t, p.Stop(p.A))
	waitEth1Holder(t, p, p.B)
	time.Sleep(200 * time.Millisecond)
	if hasRule(t, p.A.Host) || hasTable100Default(t, p.A.Host) {
		t.Fatal("a left its rule or route behind on stopping")
	}
	check(p.B, p.A)

	// Behind vipd's back: the rule goes; vipd puts it back.
	start := time.Now()
	if out, err := p.B.Host.Run("ip", "rule", "del", "from", rtVIP.String(), "table", "100", "priority", "100"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for !hasRule(t, p.B.Host) {
		if time.Since(start) > 2*time.Second {
			t.Fatal("the rule was not restored within 2 s")
		}
		time.Sleep(2 * time.Millisecond)
	}
	took := time.Since(start)
	t.Logf("rule deleted behind vipd's back restored in %v (includes the ip commands that delete and poll)", took)
	if took > time.Second {
		t.Errorf("rule restored in %v, want within 1 s", took)
	}
	// The route too.
	start = time.Now()
	if out, err := p.B.Host.Run("ip", "route", "del", "default", "table", "100"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for !hasTable100Default(t, p.B.Host) {
		if time.Since(start) > 2*time.Second {
			t.Fatal("the route was not restored within 2 s")
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Logf("route deleted behind vipd's back restored in %v", time.Since(start))

	out, err := exec.Command(p.Bin, "status", "--json", "--socket", filepath.Join(p.Dir, "b.sock")).Output()
	must(t, err)
	var st struct {
		Instances []struct {
			Routes []struct {
				To      string `json:"to"`
				Present bool   `json:"present"`
			} `json:"routes"`
			Rules []struct {
				From    string `json:"from"`
				Present bool   `json:"present"`
			} `json:"rules"`
			Counters struct {
				RoutesRestored uint64 `json:"routes_restored"`
				RulesRestored  uint64 `json:"rules_restored"`
			} `json:"counters"`
		} `json:"instances"`
	}
	must(t, json.Unmarshal(out, &st))
	in := st.Instances[0]
	if len(in.Routes) != 1 || !in.Routes[0].Present || len(in.Rules) != 1 || !in.Rules[0].Present ||
		in.Counters.RulesRestored != 1 || in.Counters.RoutesRestored != 1 {
		t.Errorf("b's status: %s", out)
	}
	check(p.B, p.A)
}
