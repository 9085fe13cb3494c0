package e2e

import (
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/e2e/pair"
)

// upstreamJSON is the upstream check's part of `vipd status --json`.
type upstreamJSON struct {
	Instances []struct {
		State     string `json:"state"`
		Upstreams []struct {
			Address  string `json:"address"`
			State    string `json:"state"`
			Attempts int    `json:"attempts"`
		} `json:"upstreams"`
	} `json:"instances"`
}

// waitUpstreamMoved waits until n's status reports its one upstream moved.
func waitUpstreamMoved(t *testing.T, p *pair.Pair, n *pair.Node, upstream string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s := statusInto[upstreamJSON](t, p, n)
		if len(s.Instances) == 1 && len(s.Instances[0].Upstreams) == 1 &&
			s.Instances[0].Upstreams[0].Address == upstream && s.Instances[0].Upstreams[0].State == "moved" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: status does not report upstream %s moved within %v: %+v", n.Host.Name, upstream, timeout, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dropGratuitousARP makes the client an upstream that ignores gratuitous
// ARP for the VIP: an nftables arp rule drops, on input, ARP whose sender
// and target protocol addresses are both the VIP. (nft compares a field
// with a constant, not with another field, so the rule names the VIP.)
// It returns a function that reads the rule's packet counter.
func dropGratuitousARP(t *testing.T, p *pair.Pair) func() int {
	t.Helper()
	if _, err := exec.LookPath("nft"); err != nil {
		if os.Getenv("VIPD_LAB") == "required" {
			t.Fatal("VIPD_LAB=required but nft is not on PATH (Debian: apt-get install nftables)")
		}
		t.Skip("nft not on PATH (Debian: apt-get install nftables)")
	}
	vip := pair.VIP.String()
	for _, args := range [][]string{
		{"nft", "add", "table", "arp", "f"},
		{"nft", "add", "chain", "arp", "f", "in", "{ type filter hook input priority 0; }"},
		{"nft", "add", "rule", "arp", "f", "in", "arp", "saddr", "ip", vip, "arp", "daddr", "ip", vip, "counter", "drop"},
	} {
		if out, err := p.Client.Run(args...); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	re := regexp.MustCompile(`counter packets (\d+)`)
	return func() int {
		out, err := p.Client.Run("nft", "list", "chain", "arp", "f", "in")
		must(t, err)
		m := re.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no counter in the client's arp chain:\n%s", out)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
}

func durations(ds []time.Duration) (median, maximum time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2], s[len(s)-1]
}

// TestUpstreamIgnoresGratuitousARP: the client is the upstream, and it drops
// gratuitous ARP for the VIP. On a link cut of the master at 100 ms
// adverts, vipd's new master makes it move with a targeted ARP request and
// reports "upstream moved": the client's outage stays within
// Master_Down_Interval + 30 ms. keepalived, in the same lab, only sends
// gratuitous ARP: the client keeps the old master's MAC until its own
// neighbour entry times out, and its outage is measured for comparison.
func TestUpstreamIgnoresGratuitousARP(t *testing.T) {
	p := newPair(t, "ug")
	dropped := dropGratuitousARP(t, p)
	client := strings.Split(pair.AddrClient, "/")[0]
	extra := "    upstreams: [" + client + "]\n"
	startPair(t, p, pair.NodeConfig{Extra: extra}, pair.NodeConfig{Extra: extra})
	waitUpstreamMoved(t, p, p.A, client, 3*time.Second)
	assertClientAt(t, p, p.A)

	bound := pair.MasterDownInterval(100, interval)
	const trials = 5
	var gaps []time.Duration
	for i := range trials {
		before := dropped()
		o, err := p.Failover(p.B, p.A.Host.CutLink, 3*time.Second, 200*time.Millisecond)
		must(t, err)
		gaps = append(gaps, o.Gap)
		t.Logf("vipd trial %d: link cut, client outage %v (bound Master_Down_Interval %v + 30ms)", i+1, o.Gap, bound)
		if n := dropped() - before; n == 0 {
			t.Errorf("trial %d: the client dropped no gratuitous ARP: the lab does not test what it should", i+1)
		}
		waitUpstreamMoved(t, p, p.B, client, 2*time.Second)
		out, err := exec.Command(p.Bin, "status", "--socket", socketOf(p, p.B)).CombinedOutput()
		must(t, err)
		if want := "web: upstream moved: " + client; !strings.Contains(string(out), want) {
			t.Errorf("vipd status on b lacks %q:\n%s", want, out)
		}
		assertClientAt(t, p, p.B)
		if o.Gap > bound+slack {
			t.Errorf("trial %d: client outage %v, want at most %v + %v", i+1, o.Gap, bound, slack)
		}
		// Back to a, which moves the client back the same way.
		must(t, p.A.Host.RestoreLink())
		must(t, p.WaitHolder(p.A, pair.VIP, 3*time.Second))
		waitUpstreamMoved(t, p, p.A, client, 3*time.Second)
		assertClientAt(t, p, p.A)
	}
	med, worst := durations(gaps)
	t.Logf("vipd: client outage over %d link cuts: median %v, max %v (bound %v + 30ms = %v)", trials, med, worst, bound, bound+30*time.Millisecond)
	if med > bound+30*time.Millisecond {
		t.Errorf("vipd: median client outage %v, want at most Master_Down_Interval %v + 30ms", med, bound)
	}

	// keepalived in the same lab, same client, same rule.
	must(t, p.Stop(p.B))
	must(t, p.Stop(p.A))
	for _, n := range []struct {
		node *pair.Node
		prio uint8
	}{{p.B, 100}, {p.A, 150}} {
		must(t, p.ConfigureKeepalived(n.node, pair.KeepalivedConfig{Priority: n.prio, AdvertInterval: interval, Version: 3}))
		must(t, p.StartKeepalived(n.node))
	}
	must(t, p.WaitHolder(p.A, pair.VIP, 5*time.Second))
	assertClientAt(t, p, p.A)
	before := dropped()
	o, err := p.Failover(p.B, p.A.Host.CutLink, 90*time.Second, 200*time.Millisecond)
	must(t, err)
	t.Logf("keepalived: link cut, client outage %v (its gratuitous ARP dropped: %d frames); vipd's median %v, max %v",
		o.Gap, dropped()-before, med, worst)
	if o.Gap <= bound+30*time.Millisecond {
		t.Errorf("keepalived's outage %v is within the bound although the client drops its gratuitous ARP: the lab does not test what it should", o.Gap)
	}
}
