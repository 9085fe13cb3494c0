// Package e2e runs vipd for real in a lab of network namespaces: real
// kernels, real sockets, real peers. It needs root; with VIPD_LAB=required
// (as `sudo make test` and CI set it) a lab that cannot run is a failure,
// not a skip.
package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vipd/vipd/e2e/lab"
	"github.com/vipd/vipd/e2e/pair"
)

// interval is the advert interval of most scenarios: fast enough for quick
// tests, slow enough to be stable on a busy two-core machine.
const interval = 100 * time.Millisecond

// watchSkew is how far apart two address watches in different namespaces
// may date events that happened in one order: each dates an event when
// its goroutine reads it from netlink, not when the kernel made it. The
// VIP landing on the new master comes before the old one hears its
// advert and lets go (tens of microseconds later); a break before make
// would show as tens of milliseconds (Skew_Time).
const watchSkew = time.Millisecond

// slack is what a scenario allows beyond a protocol bound, for scheduling
// on a loaded CI machine. The tight figures come from `make bench`.
const slack = 150 * time.Millisecond

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

func needLab(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("VIPD_LAB") == "required" {
		t.Fatal("VIPD_LAB=required but not running as root: the namespace lab cannot run")
	}
	t.Skip("the namespace lab needs root: run 'sudo make test'")
}

func vipdBin(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("VIPD_BIN"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "vipd-e2e-bin")
		if err != nil {
			buildErr = err
			return
		}
		builtBin, buildErr = lab.Build(dir)
	})
	if buildErr != nil {
		t.Fatalf("building vipd: %v", buildErr)
	}
	return builtBin
}

// prefix makes a namespace prefix unique to this test and process.
func prefix(short string) string {
	return fmt.Sprintf("%s%d", short, os.Getpid()%10000)
}

// newPair builds a pair lab for t; it is torn down when t ends, and the
// nodes' logs are shown if t failed.
func newPair(t *testing.T, short string) *pair.Pair {
	t.Helper()
	needLab(t)
	dir := t.TempDir()
	p, err := pair.New(prefix(short), vipdBin(t), dir)
	if err != nil {
		t.Fatalf("building the lab: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("tearing down the lab: %v", err)
		}
		if t.Failed() {
			for _, n := range p.Nodes() {
				if b, err := os.ReadFile(n.Log); err == nil {
					t.Logf("---- %s log:\n%s", filepath.Base(n.Log), b)
				}
			}
		}
	})
	return p
}

// startPair configures A (priority 150) and B (priority 100) at interval,
// starts both and waits until A alone holds the VIP.
func startPair(t *testing.T, p *pair.Pair, a, b pair.NodeConfig) {
	t.Helper()
	if a.Priority == 0 {
		a.Priority = 150
	}
	if b.Priority == 0 {
		b.Priority = 100
	}
	for _, c := range []*pair.NodeConfig{&a, &b} {
		if c.AdvertInterval == 0 {
			c.AdvertInterval = interval
		}
	}
	must(t, p.Configure(p.A, a))
	must(t, p.Configure(p.B, b))
	must(t, p.Start(p.A))
	must(t, p.Start(p.B))
	must(t, p.WaitHolder(p.A, pair.VIP, 3*time.Second))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// assertClientAt checks that the VIP answers the client and that the
// client's ARP entry for it points at n's MAC (gratuitous ARP moved it, or
// n alone answered the client's request).
func assertClientAt(t *testing.T, p *pair.Pair, n *pair.Node) {
	t.Helper()
	probe, err := p.Client.StartProbe(pair.VIP, 10*time.Millisecond)
	must(t, err)
	time.Sleep(100 * time.Millisecond)
	if r := probe.Stop(); r.Received == 0 {
		t.Fatalf("client got no reply from %s (sent %d)", pair.VIP, r.Sent)
	}
	mac, err := n.Host.MAC()
	must(t, err)
	got, err := p.ClientNeighbour(pair.VIP)
	must(t, err)
	if got != mac.String() {
		t.Fatalf("client's ARP entry for %s is %q, want %s's MAC %s", pair.VIP, got, n.Host.Name, mac)
	}
}
