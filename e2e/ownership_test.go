package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/e2e/pair"
)

// hostAddrs are the addresses of A's eth0 in TestReliabilityHostAddressAsVIP:
// the lab's primary and a secondary in the same subnet, which the kernel
// flushes with the primary.
var hostAddrs = []netip.Addr{netip.MustParseAddr("198.18.0.11"), netip.MustParseAddr("198.18.0.13")}

// assertHostAddrs checks that both of A's own addresses are still there.
func assertHostAddrs(t *testing.T, p *pair.Pair) {
	t.Helper()
	for _, a := range hostAddrs {
		ok, err := p.A.Host.HasAddr(a)
		must(t, err)
		if !ok {
			t.Errorf("%s is gone from A's eth0: vipd removed one of the host's own addresses", a)
		}
	}
}

// ownershipConfig writes A's configuration: instance "web" with vips (YAML
// addresses with their prefixes).
func ownershipConfig(t *testing.T, p *pair.Pair, vips ...string) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "metrics_listen: \"\"\ncontrol_socket: %s\nstate_dir: %s\ninstances:\n"+
		"  - name: web\n    interface: eth0\n    vrid: 51\n    priority: 150\n    advert_interval: 100ms\n    vips:\n",
		socketOf(p, p.A), filepath.Join(p.Dir, "a-state"))
	for _, v := range vips {
		fmt.Fprintf(&b, "      - address: %s\n", v)
	}
	must(t, os.WriteFile(p.A.Config, []byte(b.String()), 0o600))
}

// A VIP equal to one of the host's own addresses, same prefix, is refused
// at start-up and at reload, and the address stays: vipd removes only what
// carries its address-protocol mark. (Before, it took the address for a
// stale VIP and deleted it, and with it the secondary in its subnet.)
func TestReliabilityHostAddressAsVIP(t *testing.T) {
	p := newPair(t, "rho")
	row := relRecord(t, "8c", "A VIP that is one of the host's own addresses",
		"A's eth0 has 198.18.0.11/24 and 198.18.0.13/24 (a secondary, which the kernel flushes with the primary). "+
			"vipd started with the VIP 198.18.0.11/24; then vipd started with the VIP 198.18.0.100 and, as master, reloaded (SIGHUP) with 198.18.0.13/24 added.",
		"the start is refused (exit 1) with one error naming file:line, the VIP, eth0 and why; the reload is refused and changes nothing (no transition, the VIP stays on A); "+
			"both of the host's addresses stay on eth0 throughout")
	_, err := p.A.Host.Run("ip", "address", "add", "198.18.0.13/24", "dev", "eth0")
	must(t, err)
	assertHostAddrs(t, p)

	// Start-up.
	ownershipConfig(t, p, "198.18.0.11/24")
	logPath := filepath.Join(p.Dir, "a-refused.log")
	proc, err := p.A.Host.Start(logPath, p.Bin, "run", "--config", p.A.Config)
	must(t, err)
	code, err := proc.Wait(5 * time.Second)
	if err != nil {
		t.Errorf("vipd with the host's own address as VIP did not exit: %v", err)
		must(t, proc.Kill())
	}
	out, err := os.ReadFile(logPath)
	must(t, err)
	if code != 1 {
		t.Errorf("vipd exited %d, want 1; output:\n%s", code, out)
	}
	want := regexp.MustCompile(regexp.QuoteMeta(p.A.Config) + `:\d+: VIP 198\.18\.0\.11/24 is already on eth0 without vipd's mark .*never removes an address it did not add`)
	if !want.Match(out) {
		t.Errorf("the error does not name file:line, the VIP, the interface and why (want %q); output:\n%s", want, out)
	}
	assertHostAddrs(t, p)

	// Reload.
	ownershipConfig(t, p, pair.VIP.String())
	must(t, p.Start(p.A))
	must(t, p.WaitHolder(p.A, pair.VIP, 3*time.Second))
	before := relStatusOf(t, p, p.A)
	ownershipConfig(t, p, pair.VIP.String(), "198.18.0.13/24")
	must(t, p.A.Proc.Signal(syscall.SIGHUP))
	deadline := time.Now().Add(3 * time.Second)
	after := relStatusOf(t, p, p.A)
	for after.Reload.Failures == before.Reload.Failures && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		after = relStatusOf(t, p, p.A)
	}
	if after.Reload.Failures != before.Reload.Failures+1 || after.Reload.OK {
		t.Errorf("reload: %d failures (ok %v), want %d: the VIP that is the host's own address was accepted",
			after.Reload.Failures, after.Reload.OK, before.Reload.Failures+1)
	}
	if n := after.transitions() - before.transitions(); n != 0 {
		t.Errorf("the refused reload made %d transitions, want none", n)
	}
	logb, err := os.ReadFile(p.A.Log)
	must(t, err)
	if !strings.Contains(string(logb), "VIP 198.18.0.13/24 is already on eth0 without vipd's mark") {
		t.Errorf("the log does not say why the reload was refused:\n%s", logb)
	}
	assertHostAddrs(t, p)
	must(t, p.WaitHolder(p.A, pair.VIP, 0))
	row.Figure = fmt.Sprintf("start refused with exit %d; reload refused (%d failure); 198.18.0.11 and .13 still on eth0", code, after.Reload.Failures-before.Reload.Failures)
}

// A second `vipd run` on the same configuration (another control socket)
// is refused before it touches an address: it names the running one's
// PID, and the running master keeps its VIP without a transition.
func TestReliabilitySecondVipdRefused(t *testing.T) {
	p := newPair(t, "r2v")
	row := relRecord(t, "8e", "A second vipd on the same host",
		"With A master, a second `vipd run` was started on A with A's configuration (metrics off) and another --socket.",
		"it exits non-zero within 5 s with a one-line error naming the running vipd's PID; the VIP stays on A; no transition on either node; no vipd died but the refused one")
	startPair(t, p, pair.NodeConfig{}, pair.NodeConfig{})
	before := transitionsOf(t, p)
	logPath := filepath.Join(p.Dir, "a-second.log")
	start := time.Now()
	proc, err := p.A.Host.Start(logPath, p.Bin, "run", "--config", p.A.Config, "--socket", filepath.Join(p.Dir, "a-second.sock"))
	must(t, err)
	code, err := proc.Wait(5 * time.Second)
	took := time.Since(start)
	if err != nil {
		t.Errorf("the second vipd still runs after 5 s: %v", err)
		must(t, proc.Kill())
	}
	out, err := os.ReadFile(logPath)
	must(t, err)
	text := strings.TrimSpace(string(out))
	if code == 0 {
		t.Errorf("the second vipd exited 0, want non-zero; output:\n%s", text)
	}
	if pid := "PID " + strconv.Itoa(p.A.Proc.PID); !strings.Contains(text, pid) || strings.Contains(text, "\n") {
		t.Errorf("want one line naming the running vipd (%s); output:\n%s", pid, text)
	}
	must(t, p.WaitHolder(p.A, pair.VIP, 0))
	assertNoTransition(t, p, before)
	assertEnd(t, p, p.A)
	row.Figure = fmt.Sprintf("refused in %s, exit %d: %q", ms(took), code, text)
}
