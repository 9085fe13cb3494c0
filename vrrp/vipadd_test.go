package vrrp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/packet"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/vipd/vipd/config"
	"github.com/vipd/vipd/vip"
)

// inNetnsProcess runs t in a child process of the test binary that is in
// a new network namespace as a whole (every thread, so the Node's watcher
// goroutines too, unlike netnstest.Run's one locked thread). It reports
// true in the child, which runs the test's body; the parent only waits and
// reports the child's outcome.
func inNetnsProcess(t *testing.T) bool {
	t.Helper()
	const env = "VIPD_TEST_NETNS_CHILD"
	if os.Getenv(env) == t.Name() {
		lo, err := netlink.LinkByName("lo")
		if err == nil {
			err = netlink.LinkSetUp(lo)
		}
		if err != nil {
			t.Fatalf("loopback up in the child's namespace: %v", err)
		}
		return true
	}
	if os.Geteuid() != 0 {
		if os.Getenv("VIPD_LAB") == "required" {
			t.Fatal("VIPD_LAB=required but not root")
		}
		t.Skip("needs root for a network namespace")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), env+"="+t.Name())
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("%s in a new network namespace: %v\n%s", t.Name(), err, out)
	}
	t.Logf("child process:\n%s", out)
	return false
}

// faultyAddrs is the Node's real dataplane with adds of chosen prefixes
// made to fail, and its dumps counted.
type faultyAddrs struct {
	Dataplane
	lists atomic.Int64
	mu    sync.Mutex
	fail  map[netip.Prefix]error
	adds  map[netip.Prefix]int // attempts, failed or not
}

func (f *faultyAddrs) AddAddr(index int, p netip.Prefix, label string) error {
	f.mu.Lock()
	f.adds[p]++
	err := f.fail[p]
	f.mu.Unlock()
	if err != nil {
		return fmt.Errorf("vip: add %s on interface %d: %w", p, index, err)
	}
	return f.Dataplane.AddAddr(index, p, label)
}

func (f *faultyAddrs) ListAddrs(index int) ([]vip.Addr, error) {
	f.lists.Add(1)
	return f.Dataplane.ListAddrs(index)
}

func (f *faultyAddrs) setFail(p netip.Prefix, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[p] = err
}

func (f *faultyAddrs) attempts(p netip.Prefix) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.adds[p]
}

// garpLog records the sender addresses of the ARP frames a veth's peer end
// receives.
type garpLog struct {
	mu   sync.Mutex
	seen map[netip.Addr]int
}

func (g *garpLog) count(a netip.Addr) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.seen[a]
}

func listenGARP(t *testing.T, ifname string) *garpLog {
	t.Helper()
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		t.Fatal(err)
	}
	rx, err := packet.Listen(ifi, packet.Raw, unix.ETH_P_ARP, nil)
	if err != nil {
		t.Fatal(err)
	}
	g := &garpLog{seen: map[netip.Addr]int{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			m, _, err := rx.ReadFrom(buf)
			if err != nil {
				return // closed
			}
			var f ethernet.Frame
			var p arp.Packet
			if f.UnmarshalBinary(buf[:m]) != nil || p.UnmarshalBinary(f.Payload) != nil {
				continue
			}
			g.mu.Lock()
			g.seen[p.SenderIP]++
			g.mu.Unlock()
		}
	}()
	t.Cleanup(func() { rx.Close(); <-done })
	return g
}

// A VIP whose add fails: the instance, master, does not announce it,
// retries the add with a growing back-off driven by the loop's timer, shows
// it absent with the error in status, and announces it once an add
// succeeds. Status is answered from what the loop knows, without dumping
// the interface's addresses.
func TestFailedVIPAddIsRetriedNotAnnounced(t *testing.T) {
	if !inNetnsProcess(t) {
		return
	}
	link := func(name string) netlink.Link {
		l, err := netlink.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "vf0"}, PeerName: "vf1"}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"vf0", "vf1"} {
		if err := netlink.LinkSetUp(link(n)); err != nil {
			t.Fatal(err)
		}
	}
	own, _ := netlink.ParseAddr("198.18.0.1/24")
	if err := netlink.AddrAdd(link("vf0"), own); err != nil {
		t.Fatal(err)
	}
	garps := listenGARP(t, "vf1")

	bad, good := netip.MustParsePrefix("198.18.0.100/32"), netip.MustParsePrefix("198.18.0.101/32")
	cfg, err := config.Parse("test.yaml", []byte(fmt.Sprintf(`state_dir: %s
instances:
  - name: web
    interface: vf0
    vrid: 51
    advert_interval: 50ms
    vips: [%s, %s]
    garp: {repeat: 1, interval: 20ms}
`, t.TempDir(), bad.Addr(), good.Addr())))
	if err != nil {
		t.Fatal(err)
	}
	n, err := NewNode(cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	fa := &faultyAddrs{Dataplane: n.dp, fail: map[netip.Prefix]error{}, adds: map[netip.Prefix]int{}}
	injected := errors.New("injected failure")
	fa.setFail(bad, injected)
	n.dp = fa
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- n.Run(ctx, nil) }()
	defer func() {
		cancel()
		if err := <-runDone; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	status := func() InstanceStatus {
		t.Helper()
		sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer scancel()
		s, err := n.Status(sctx)
		if err != nil {
			t.Fatal(err)
		}
		return s.Instances[0]
	}
	vipOf := func(is InstanceStatus, p netip.Prefix) VIPStatus {
		for _, v := range is.VIPs {
			if v.Address == p {
				return v
			}
		}
		t.Fatalf("no VIP %s in status", p)
		return VIPStatus{}
	}
	onIface := func(p netip.Prefix) bool {
		as, err := netlink.AddrList(link("vf0"), netlink.FAMILY_V4)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range as {
			if a.IP.Equal(p.Addr().AsSlice()) {
				return true
			}
		}
		return false
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for end := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(end) {
				t.Fatalf("timed out waiting until %s", what)
			}
		}
	}

	waitFor("master", func() bool { return status().State == StateMaster })
	waitFor("the good VIP announced", func() bool { return garps.count(good.Addr()) > 0 })
	became := time.Now()
	time.Sleep(time.Second)

	is := status()
	if v := vipOf(is, good); !v.Present || v.AddError != "" || !onIface(good) {
		t.Errorf("good VIP: %+v, on the interface %v; want present with no error", v, onIface(good))
	}
	v := vipOf(is, bad)
	if v.Present || !strings.Contains(v.AddError, injected.Error()) || onIface(bad) {
		t.Errorf("failing VIP: %+v, on the interface %v; want absent with the add's error", v, onIface(bad))
	}
	// Adds at 0, 0.1, 0.3, 0.7 s (and 1.5 s) after the takeover: retried,
	// and backing off rather than once per loop turn.
	elapsed := time.Since(became)
	if a := fa.attempts(bad); a < 3 || a > 6 {
		t.Errorf("%d adds of the failing VIP in %v, want 3 to 6 (back-off from 100 ms, doubling)", a, elapsed)
	}
	if v.AddFailures != uint64(fa.attempts(bad)) {
		t.Errorf("status counts %d failed adds, the manager saw %d", v.AddFailures, fa.attempts(bad))
	}
	if c := garps.count(bad.Addr()); c != 0 {
		t.Errorf("%d ARP frames announced the VIP that is not on the interface", c)
	}

	lists := fa.lists.Load()
	for range 20 {
		status()
	}
	if d := fa.lists.Load() - lists; d != 0 {
		t.Errorf("20 status snapshots dumped the interface's addresses %d times, want none", d)
	}

	fa.setFail(bad, nil)
	waitFor("the VIP added on a retry", func() bool { return vipOf(status(), bad).Present })
	if !onIface(bad) {
		t.Error("status says present, the interface does not have it")
	}
	if v := vipOf(status(), bad); v.AddError != "" {
		t.Errorf("error %q kept after the add succeeded", v.AddError)
	}
	waitFor("the retried VIP announced", func() bool { return garps.count(bad.Addr()) > 0 })

	// Someone removes it: the loop learns of it from the address event,
	// puts it back and counts the restore.
	if err := netlink.AddrDel(link("vf0"), &netlink.Addr{IPNet: &net.IPNet{IP: bad.Addr().AsSlice(), Mask: net.CIDRMask(32, 32)}}); err != nil {
		t.Fatal(err)
	}
	waitFor("the removed VIP restored", func() bool { return status().Counters.VIPsRestored == 1 && onIface(bad) })
	if !vipOf(status(), bad).Present {
		t.Error("restored VIP not present in status")
	}
}

// Status calls made at once share one snapshot: however many clients ask,
// at most one request waits on the loop, and every caller gets an answer.
func TestConcurrentStatusShareOneRequest(t *testing.T) {
	n := &Node{statusQ: make(chan chan Status), loopDone: make(chan struct{})}
	const callers = 50
	var wg sync.WaitGroup
	results := make(chan error, callers)
	ask := func() {
		defer wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s, err := n.Status(ctx)
		if err == nil && s.ReloadErrors != 7 {
			err = fmt.Errorf("got snapshot %+v, want the loop's", s)
		}
		results <- err
	}
	wg.Add(1)
	go ask()
	first := <-n.statusQ // the loop is busy: the request waits
	for range callers - 1 {
		wg.Add(1)
		go ask()
	}
	select {
	case <-n.statusQ:
		t.Fatal("a second snapshot request was queued on the loop while the first was waiting")
	case <-time.After(300 * time.Millisecond):
	}
	first <- Status{ReloadErrors: 7}
	// Callers that arrived after the answer ask again, one at a time.
	served := make(chan struct{})
	go func() { wg.Wait(); close(served) }()
	for done := false; !done; {
		select {
		case r := <-n.statusQ:
			select {
			case <-n.statusQ:
				t.Fatal("two snapshot requests queued on the loop at once")
			default:
			}
			r <- Status{ReloadErrors: 7}
		case <-served:
			done = true
		}
	}
	close(results)
	for err := range results {
		if err != nil {
			t.Error(err)
		}
	}
}
