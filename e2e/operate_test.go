package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/e2e/pair"
)

// statusJSON is the part of `vipd status --json` the tests read.
type statusJSON struct {
	Reload struct {
		OK       bool   `json:"ok"`
		Failures uint64 `json:"failures"`
	} `json:"reload"`
	Instances []struct {
		Name          string `json:"name"`
		State         string `json:"state"`
		MasterAddress string `json:"master_address"`
		VIPs          []struct {
			Address string `json:"address"`
			Present bool   `json:"present"`
		} `json:"vips"`
		Counters struct {
			Transitions map[string]uint64 `json:"transitions"`
		} `json:"counters"`
		Dropped map[string]uint64 `json:"dropped"`
	} `json:"instances"`
}

func socketOf(p *pair.Pair, n *pair.Node) string {
	return filepath.Join(p.Dir, n.Host.Name+".sock")
}

func status(t *testing.T, p *pair.Pair, n *pair.Node) statusJSON {
	t.Helper()
	s := statusAll(t, p, n)
	if len(s.Instances) != 1 {
		t.Fatalf("status of %s has %d instances, want 1", n.Host.Name, len(s.Instances))
	}
	return s
}

// statusAll is `vipd status --json` of a node with any number of instances.
func statusAll(t *testing.T, p *pair.Pair, n *pair.Node) statusJSON {
	t.Helper()
	return statusInto[statusJSON](t, p, n)
}

// statusInto decodes `vipd status --json` of n into a T, which names the
// fields a test reads.
func statusInto[T any](t *testing.T, p *pair.Pair, n *pair.Node) T {
	t.Helper()
	out, err := exec.Command(p.Bin, "status", "--json", "--socket", socketOf(p, n)).CombinedOutput()
	if err != nil {
		t.Fatalf("vipd status on %s: %v\n%s", n.Host.Name, err, out)
	}
	var s T
	if err := json.Unmarshal(out, &s); err != nil {
		t.Fatalf("decoding status of %s: %v\n%s", n.Host.Name, err, out)
	}
	return s
}

// assertStatus checks that n's status says state and agrees with where the
// VIP really is.
func assertStatus(t *testing.T, p *pair.Pair, n *pair.Node, state, master string) {
	t.Helper()
	s := status(t, p, n)
	in := s.Instances[0]
	if in.State != state || in.MasterAddress != master {
		t.Errorf("%s: status says %s with master %q, want %s with master %q", n.Host.Name, in.State, in.MasterAddress, state, master)
	}
	has, err := n.Host.HasAddr(pair.VIP)
	must(t, err)
	if len(in.VIPs) != 1 || in.VIPs[0].Present != has {
		t.Errorf("%s: status VIPs %+v, but the VIP is present=%v on the interface", n.Host.Name, in.VIPs, has)
	}
	if (state == "master") != has {
		t.Errorf("%s: state %s but VIP present=%v", n.Host.Name, state, has)
	}
}

func TestStatusAndEvents(t *testing.T) {
	p := newPair(t, "st")
	startPair(t, p, pair.NodeConfig{}, pair.NodeConfig{})
	assertStatus(t, p, p.A, "master", p.A.Host.Addr.String())
	assertStatus(t, p, p.B, "backup", p.A.Host.Addr.String())

	// The table fits 100 columns and shows the VIP with its description.
	out, err := exec.Command(p.Bin, "status", "--socket", socketOf(p, p.A)).CombinedOutput()
	must(t, err)
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if n := len([]rune(line)); n > 100 {
			t.Errorf("status line is %d columns wide: %q", n, line)
		}
	}
	if !strings.Contains(string(out), "master") || !strings.Contains(string(out), "198.18.0.100 on lab service") {
		t.Errorf("status table lacks the state or the VIP:\n%s", out)
	}

	// Follow B's events while A stops.
	ev := exec.Command(p.Bin, "events", "--json", "--socket", socketOf(p, p.B))
	stdout, err := ev.StdoutPipe()
	must(t, err)
	must(t, ev.Start())
	t.Cleanup(func() { ev.Process.Kill(); ev.Wait() })
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	time.Sleep(200 * time.Millisecond) // let the stream subscribe
	must(t, p.Stop(p.A))
	must(t, p.WaitHolder(p.B, pair.VIP, 2*time.Second))
	select {
	case l := <-lines:
		var e struct{ Instance, From, To, Reason string }
		if err := json.Unmarshal([]byte(l), &e); err != nil || e.Instance != "web" || e.From != "backup" || e.To != "master" || e.Reason != "master_down_timer" {
			t.Errorf("event %q (err %v), want web backup→master by master_down_timer", l, err)
		}
	case <-time.After(2 * time.Second):
		t.Error("no event streamed for B's takeover")
	}
	assertStatus(t, p, p.B, "master", p.B.Host.Addr.String())
	if got := status(t, p, p.B).Instances[0].Counters.Transitions["backup->master"]; got != 1 {
		t.Errorf("B counts %d backup->master transitions, want 1", got)
	}

	// A stopped daemon: a one-line error naming the socket, exit 1, and
	// the socket file is gone.
	cmd := exec.Command(p.Bin, "status", "--socket", socketOf(p, p.A))
	out, err = cmd.CombinedOutput()
	if code := exitCode(err); code != 1 || strings.Count(strings.TrimSpace(string(out)), "\n") != 0 || !strings.Contains(string(out), socketOf(p, p.A)) {
		t.Errorf("status of a stopped vipd: exit %d, output %q; want exit 1 and one line naming the socket", code, out)
	}
	if _, err := os.Stat(socketOf(p, p.A)); !os.IsNotExist(err) {
		t.Errorf("control socket left behind after stop (stat err %v)", err)
	}

	// A restarted: status asked the moment the control socket accepts,
	// which is before the protocol loop runs, waits for the loop and
	// answers rather than failing.
	must(t, p.Start(p.A))
	unix := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socketOf(p, p.A))
		}}}
	code, body := firstAnswer(t, unix, "http://vipd/v1/status")
	var early statusJSON
	if code != http.StatusOK || json.Unmarshal(body, &early) != nil || len(early.Instances) != 1 {
		t.Errorf("status the moment the socket accepted: %d %s", code, body)
	}
}

// firstAnswer sends GET url with c again and again, 0.1 ms apart, until
// a connection is accepted, and returns that first answer: it lands
// within a fraction of a millisecond of the listener opening.
func firstAnswer(t *testing.T, c *http.Client, url string) (int, []byte) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		resp, err := c.Get(url)
		if err == nil {
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			must(t, err)
			return resp.StatusCode, bytes.TrimSpace(body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: nothing accepted within 3s: %v", url, err)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// A second vipd on the same socket refuses to start; a stale socket file
// left by kill -9 is replaced.
func TestControlSocketOwnership(t *testing.T) {
	p := newPair(t, "cs")
	startPair(t, p, pair.NodeConfig{}, pair.NodeConfig{})
	out, err := exec.Command("ip", "netns", "exec", p.A.Host.NS, p.Bin, "run", "--config", p.A.Config).CombinedOutput()
	if exitCode(err) != 1 || !strings.Contains(string(out), "another vipd is answering") {
		t.Errorf("second vipd on one socket: err %v, output %q; want exit 1, another vipd is answering", err, out)
	}
	must(t, p.WaitHolder(p.A, pair.VIP, 0)) // the first one is untouched
	assertStatus(t, p, p.A, "master", p.A.Host.Addr.String())

	must(t, p.Kill(p.B))
	if _, err := os.Stat(socketOf(p, p.B)); err != nil {
		t.Fatalf("kill -9 should leave the socket file: %v", err)
	}
	must(t, p.Start(p.B))
	deadline := time.Now().Add(3 * time.Second)
	for {
		out, err := exec.Command(p.Bin, "status", "--json", "--socket", socketOf(p, p.B)).CombinedOutput()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("restarted vipd does not answer on the stale socket's path: %v %s", err, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	fi, err := os.Stat(socketOf(p, p.B))
	must(t, err)
	if fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode %v, want 0660", fi.Mode().Perm())
	}
}

// SIGHUP with the same config, with a broken one, and with one VIP added:
// no transition on either node; only the added VIP appears, on the master.
func TestReloadWithoutFailover(t *testing.T) {
	p := newPair(t, "rl")
	startPair(t, p, pair.NodeConfig{}, pair.NodeConfig{})
	vip2 := netip.MustParseAddr("198.18.0.101")
	monitors := map[*pair.Node]string{}
	for _, n := range p.Nodes() {
		path := filepath.Join(p.Dir, n.Host.Name+".monitor")
		_, err := n.Host.Start(path, "ip", "-o", "monitor", "address", "dev", "eth0")
		must(t, err)
		monitors[n] = path
	}
	time.Sleep(200 * time.Millisecond)
	probe, err := p.Client.StartProbe(pair.VIP, pair.ProbeInterval)
	must(t, err)
	start := time.Now()
	hup := func() {
		for _, n := range p.Nodes() {
			must(t, n.Proc.Signal(syscall.SIGHUP))
		}
		time.Sleep(300 * time.Millisecond)
	}

	hup() // unchanged
	for _, n := range p.Nodes() {
		if s := status(t, p, n); !s.Reload.OK {
			t.Errorf("%s: unchanged reload reported as failed", n.Host.Name)
		}
	}

	good := map[*pair.Node][]byte{}
	for _, n := range p.Nodes() {
		b, err := os.ReadFile(n.Config)
		must(t, err)
		good[n] = b
		must(t, os.WriteFile(n.Config, append(b, []byte("    bogus_key: 1\n")...), 0o600))
	}
	hup() // broken
	for _, n := range p.Nodes() {
		s := status(t, p, n)
		if s.Reload.OK || s.Reload.Failures != 1 {
			t.Errorf("%s: broken reload: ok=%v failures=%d, want false, 1", n.Host.Name, s.Reload.OK, s.Reload.Failures)
		}
		logb, _ := os.ReadFile(n.Log)
		if !strings.Contains(string(logb), "bogus_key") {
			t.Errorf("%s: the refused reload's error is not logged", n.Host.Name)
		}
	}

	must(t, p.Configure(p.A, pair.NodeConfig{Priority: 150, AdvertInterval: interval, VIPs: []netip.Addr{pair.VIP, vip2}}))
	must(t, p.Configure(p.B, pair.NodeConfig{Priority: 100, AdvertInterval: interval, VIPs: []netip.Addr{pair.VIP, vip2}}))
	hup() // one VIP added
	r := probe.Stop()

	for _, n := range p.Nodes() {
		s := status(t, p, n)
		if !s.Reload.OK {
			t.Errorf("%s: reload with an added VIP failed", n.Host.Name)
		}
		logb, _ := os.ReadFile(n.Log)
		if c := strings.Count(string(logb), "msg=transition"); c != 2 && n == p.A || c != 1 && n == p.B {
			t.Errorf("%s: %d transitions logged; reloads must cause none:\n%s", n.Host.Name, c, logb)
		}
	}
	if ok, _ := p.A.Host.HasAddr(vip2); !ok {
		t.Error("the master did not add the new VIP")
	}
	if ok, _ := p.B.Host.HasAddr(vip2); ok {
		t.Error("the backup added the new VIP")
	}
	if gap := r.LongestGap(start, r.End); gap > 50*time.Millisecond {
		t.Errorf("client gap %v during reloads, want none", gap)
	}
	for n, path := range monitors {
		b, _ := os.ReadFile(path)
		var lines []string
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if l != "" {
				lines = append(lines, l)
			}
		}
		want := 0
		if n == p.A {
			want = 1
		}
		if len(lines) != want || (want == 1 && !strings.Contains(lines[0], vip2.String())) {
			t.Errorf("%s: ip monitor saw %q; want only the added VIP %s on the master", n.Host.Name, lines, vip2)
		}
	}
}
