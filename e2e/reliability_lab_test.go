package e2e

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/e2e/inject"
	"github.com/vipd/vipd/e2e/lab"
	"github.com/vipd/vipd/e2e/pair"
)

// gapSlack is what the reliability cases allow beyond a client gap that
// should be close to the probe interval (no outage, or a planned move):
// scheduling noise on a loaded two-core machine, not a protocol bound.
const gapSlack = 50 * time.Millisecond

// relRow is one row of RELIABILITY.md. With VIPD_RELIABILITY_OUT set, each
// reliability case appends its row to that file as one JSON line when it
// ends; `go run ./e2e/reliability-report` turns the lines into the table
// (its row type mirrors this one).
type relRow struct {
	ID       string  `json:"id"`       // case number and part, "4b"
	Case     string  `json:"case"`     // short title
	Done     string  `json:"done"`     // what the test did
	Asserted string  `json:"asserted"` // what it checked
	Figure   string  `json:"figure"`   // the measured figure(s)
	Pass     bool    `json:"pass"`
	Test     string  `json:"test"`
	Seconds  float64 `json:"seconds"`
}

// relRecord starts t's row; the row is written, with t's outcome, when t
// ends. The test fills in Figure as it measures.
func relRecord(t *testing.T, id, title, done, asserted string) *relRow {
	t.Helper()
	row := &relRow{ID: id, Case: title, Done: done, Asserted: asserted, Test: t.Name()}
	start := time.Now()
	t.Cleanup(func() {
		row.Pass = !t.Failed()
		row.Seconds = time.Since(start).Round(10 * time.Millisecond).Seconds()
		t.Logf("reliability %s (%s): %s", row.ID, passFail(row.Pass), row.Figure)
		path := os.Getenv("VIPD_RELIABILITY_OUT")
		if path == "" {
			return
		}
		b, err := json.Marshal(row)
		if err != nil {
			t.Errorf("encoding the reliability row: %v", err)
			return
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			t.Errorf("recording the reliability row: %v", err)
			return
		}
		defer f.Close()
		if _, err := f.Write(append(b, '\n')); err != nil {
			t.Errorf("recording the reliability row: %v", err)
		}
	})
	return row
}

func passFail(ok bool) string {
	if ok {
		return "pass"
	}
	return "FAIL"
}

// ms renders a duration in milliseconds with one decimal.
func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + " ms"
}

// dur renders a bound: whole milliseconds as "150 ms", others to 0.1 ms.
func dur(d time.Duration) string {
	if d%time.Millisecond == 0 {
		return strconv.FormatInt(d.Milliseconds(), 10) + " ms"
	}
	return ms(d)
}

// relStatus is the part of `vipd status --json` the reliability cases read.
type relStatus struct {
	Goroutines int `json:"goroutines"`
	Reload     struct {
		OK       bool   `json:"ok"`
		Failures uint64 `json:"failures"`
	} `json:"reload"`
	Instances []struct {
		Name          string `json:"name"`
		State         string `json:"state"`
		MasterAddress string `json:"master_address"`
		Maintenance   bool   `json:"maintenance"`
		Counters      struct {
			AdvertsSent     uint64            `json:"adverts_sent"`
			AdvertsReceived uint64            `json:"adverts_received"`
			GARPSent        uint64            `json:"garp_sent"`
			VIPsRestored    uint64            `json:"vips_restored"`
			Transitions     map[string]uint64 `json:"transitions"`
		} `json:"counters"`
		Dropped map[string]uint64 `json:"dropped"`
	} `json:"instances"`
}

// relStatusOf is n's status; n must run exactly one instance.
func relStatusOf(t *testing.T, p *pair.Pair, n *pair.Node) relStatus {
	t.Helper()
	s := statusInto[relStatus](t, p, n)
	if len(s.Instances) != 1 {
		t.Fatalf("status of %s has %d instances, want 1", n.Host.Name, len(s.Instances))
	}
	return s
}

// transitions is the number of state changes the instance has made.
func (s relStatus) transitions() uint64 {
	var sum uint64
	for _, c := range s.Instances[0].Counters.Transitions {
		sum += c
	}
	return sum
}

// transitionsOf counts the state changes of both nodes.
func transitionsOf(t *testing.T, p *pair.Pair) map[string]uint64 {
	t.Helper()
	m := map[string]uint64{}
	for _, n := range p.Nodes() {
		m[n.Host.Name] = relStatusOf(t, p, n).transitions()
	}
	return m
}

// assertNoTransition checks that neither node changed state since before.
func assertNoTransition(t *testing.T, p *pair.Pair, before map[string]uint64) {
	t.Helper()
	for name, now := range transitionsOf(t, p) {
		if now != before[name] {
			t.Errorf("%s made %d state transitions, want none", name, now-before[name])
		}
	}
}

// assertAlive checks that every node's vipd is still running.
func assertAlive(t *testing.T, nodes ...*pair.Node) {
	t.Helper()
	for _, n := range nodes {
		if n.Proc == nil {
			t.Errorf("vipd on %s was never started", n.Host.Name)
			continue
		}
		if code, err := n.Proc.Wait(0); err == nil {
			t.Errorf("vipd on %s died (exit %d)", n.Host.Name, code)
		}
	}
}

// assertEnd is how every reliability case ends: holder alone has the VIP,
// the client reaches it at holder's MAC, and both daemons are alive.
func assertEnd(t *testing.T, p *pair.Pair, holder *pair.Node) {
	t.Helper()
	must(t, p.WaitHolder(holder, pair.VIP, 3*time.Second))
	assertClientAt(t, p, holder)
	assertAlive(t, p.A, p.B)
}

// procSample is what /proc says about a vipd process at one moment.
type procSample struct {
	at      time.Time
	cpu     time.Duration // user + system time so far
	fds     int           // open descriptors
	sockets int           // of which sockets
	logSize int64         // bytes in the node's log file
}

// clockTick is the unit of /proc/PID/stat's times (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

func sampleProc(t *testing.T, n *pair.Node) procSample {
	t.Helper()
	s := procSample{at: time.Now()}
	pid := n.Proc.PID
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	must(t, err)
	// The command name may hold spaces; the fields after it do not.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		t.Fatalf("/proc/%d/stat: %q", pid, b)
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("/proc/%d/stat times %q %q", pid, f[11], f[12])
	}
	s.cpu = time.Duration(utime+stime) * clockTick
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(fdDir)
	must(t, err)
	for _, e := range ents {
		s.fds++
		if target, err := os.Readlink(filepath.Join(fdDir, e.Name())); err == nil && strings.HasPrefix(target, "socket:") {
			s.sockets++
		}
	}
	if fi, err := os.Stat(n.Log); err == nil {
		s.logSize = fi.Size()
	}
	return s
}

// stable waits until the goroutine count and descriptors of n have settled
// (equal in two readings 200 ms apart) and returns them.
func stable(t *testing.T, p *pair.Pair, n *pair.Node) (goroutines int, s procSample) {
	t.Helper()
	prevG, prev := -1, procSample{}
	deadline := time.Now().Add(3 * time.Second)
	for {
		// Descriptors first: the status call's own connection is gone
		// by the next reading, 200 ms later.
		s = sampleProc(t, n)
		g := relStatusOf(t, p, n).Goroutines
		if g == prevG && s.fds == prev.fds && s.sockets == prev.sockets || time.Now().After(deadline) {
			return g, s
		}
		prevG, prev = g, s
		time.Sleep(200 * time.Millisecond)
	}
}

// rawDrops sums the kernel's drop counts of vipd's VRRP sockets (IP
// protocol 112): datagrams that arrived while the socket's buffer was full.
func rawDrops(t *testing.T, n *pair.Node) uint64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/raw", n.Proc.PID))
	must(t, err)
	var sum uint64
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 13 || !strings.HasSuffix(f[1], ":0070") {
			continue
		}
		d, err := strconv.ParseUint(f[12], 10, 64)
		if err != nil {
			t.Fatalf("/proc/net/raw drops %q: %v", f[12], err)
		}
		sum += d
	}
	return sum
}

// tcpListeners lists the TCP addresses listening in n's namespace.
func tcpListeners(t *testing.T, n *pair.Node) []netip.AddrPort {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/tcp", n.Proc.PID))
	must(t, err)
	var out []netip.AddrPort
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 4 || f[3] != "0A" { // TCP_LISTEN
			continue
		}
		ipHex, portHex, ok := strings.Cut(f[1], ":")
		ip, err1 := strconv.ParseUint(ipHex, 16, 32)
		port, err2 := strconv.ParseUint(portHex, 16, 16)
		if !ok || err1 != nil || err2 != nil {
			t.Fatalf("/proc/net/tcp address %q", f[1])
		}
		// The kernel prints the address as an integer in host order.
		var a [4]byte
		binary.NativeEndian.PutUint32(a[:], uint32(ip))
		out = append(out, netip.AddrPortFrom(netip.AddrFrom4(a), uint16(port)))
	}
	return out
}

// httpIn returns a client whose connections are made inside h's namespace.
func httpIn(h *lab.Host) *http.Client {
	return &http.Client{
		Timeout: 3 * time.Second,
		Transport: &http.Transport{DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				var c net.Conn
				err := inject.InNamespace(h.NS, func() error {
					var err error
					c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
					return err
				})
				return c, err
			}},
	}
}

// scrapeDrops reads vipd's metrics at addr inside n's namespace and returns
// the drops counted against the interface rather than an instance (VRIDs
// not configured here, datagrams too short to name one), by reason.
func scrapeDrops(t *testing.T, n *pair.Node, addr string) map[string]uint64 {
	t.Helper()
	resp, err := httpIn(n.Host).Get("http://" + addr + "/metrics")
	must(t, err)
	defer resp.Body.Close()
	drops := map[string]uint64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "vipd_vrrp_adverts_dropped_total{") || !strings.Contains(line, `instance=""`) {
			continue
		}
		_, rest, _ := strings.Cut(line, `reason="`)
		reason, _, _ := strings.Cut(rest, `"`)
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		drops[reason] += uint64(v)
	}
	must(t, sc.Err())
	return drops
}

// relConfig writes n's configuration with one instance "web" (VRID 51,
// 100 ms adverts) at prio. metrics is the metrics_listen line to write,
// or "" to leave the key out and get the default.
func relConfig(t *testing.T, p *pair.Pair, n *pair.Node, metrics string, prio int, extra string) {
	t.Helper()
	body := fmt.Sprintf("%scontrol_socket: %s\nstate_dir: %s\ninstances:\n%s",
		metrics, socketOf(p, n), filepath.Join(p.Dir, n.Host.Name+"-state"),
		instanceYAML("web", 51, prio, pair.VIP.String(), extra))
	must(t, os.WriteFile(n.Config, []byte(body), 0o600))
}

// deleteEth0 deletes h's eth0; its veth peer in the bridge namespace goes
// with it.
func deleteEth0(h *lab.Host) error {
	_, err := h.Run("ip", "link", "del", "dev", "eth0")
	return err
}

// createEth0 builds h's eth0 again as the lab does: a veth pair named as
// before, the peer a port of br0 in the bridge namespace, eth0 with h's
// address, up. The new eth0 has a new index and a new MAC.
func createEth0(p *pair.Pair, h *lab.Host) error {
	br := p.Lab.Bridge()
	steps := []struct {
		on   *lab.Host
		args []string
	}{
		{br, []string{"ip", "link", "add", "name", h.Name, "type", "veth", "peer", "name", "eth0", "netns", h.NS}},
		{br, []string{"ip", "link", "set", "dev", h.Name, "master", "br0", "up"}},
		{h, []string{"ip", "addr", "add", h.Prefix.String(), "dev", "eth0"}},
		{h, []string{"ip", "link", "set", "dev", "eth0", "up"}},
	}
	for _, s := range steps {
		if _, err := s.on.Run(s.args...); err != nil {
			return fmt.Errorf("recreating eth0 of %s: %w", h.Name, err)
		}
	}
	return nil
}

// mountTinyTmpfs mounts a tmpfs of size at dir (created if missing) and
// unmounts it when t ends. Mount it before starting the vipd that uses
// it: `ip netns exec` gives that vipd a copy of the mount table.
func mountTinyTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	must(t, os.MkdirAll(dir, 0o750))
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0750", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs on %s: %v: %s", dir, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			if out2, err2 := exec.Command("umount", "-l", dir).CombinedOutput(); err2 != nil {
				t.Errorf("unmount %s: %v: %s; lazily: %v: %s", dir, err, out, err2, out2)
			}
		}
	})
}

// fillDir writes zeros into dir/fill until the file system is full and
// returns how much it wrote.
func fillDir(t *testing.T, dir string) int64 {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "fill"))
	must(t, err)
	defer f.Close()
	var n int64
	for _, size := range []int{4096, 1} {
		chunk := make([]byte, size)
		for {
			w, err := f.Write(chunk)
			n += int64(w)
			if err != nil {
				break
			}
		}
	}
	return n
}

// maintenance runs `vipd maintenance web on|off` against n and returns
// its combined output and exit code.
func maintenance(p *pair.Pair, n *pair.Node, onOff string) (string, int) {
	out, err := exec.Command(p.Bin, "maintenance", "web", onOff, "--socket", socketOf(p, n)).CombinedOutput()
	return strings.TrimSpace(string(out)), exitCode(err)
}
