package lab

import (
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: building network namespaces needs root (run go test as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("skipping: iproute2 (ip) is not installed")
	}
}

// namespacesWithPrefix lists /run/netns entries starting with prefix.
func namespacesWithPrefix(t *testing.T, prefix string) []string {
	t.Helper()
	entries, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			names = append(names, e.Name())
		}
	}
	return names
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func pidAlive(pid int) bool {
	return syscall.Kill(pid, 0) == nil
}

func sameNamespace(t *testing.T, pid int, ns string) bool {
	t.Helper()
	a, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid), "ns", "net"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.Stat(filepath.Join(netnsDir, ns))
	if err != nil {
		t.Fatal(err)
	}
	return a.Sys().(*syscall.Stat_t).Ino == b.Sys().(*syscall.Stat_t).Ino
}

func TestLab(t *testing.T) {
	needRoot(t)
	const prefix = "labt"
	goroutines := runtime.NumGoroutine()

	l, err := New(prefix)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			if err := l.Close(); err != nil {
				t.Error(err)
			}
		}
	}()

	a, err := l.AddHost("a", "198.18.0.11/24")
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.AddHost("b", "198.18.0.12/24")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.AddHost("b", "198.18.0.13/24"); err == nil {
		t.Error("AddHost with a duplicate name succeeded")
	}
	if got := namespacesWithPrefix(t, prefix); len(got) != 3 {
		t.Errorf("namespaces %v, want labtbr, labta, labtb", got)
	}

	macA, err := a.MAC()
	if err != nil {
		t.Fatal(err)
	}
	macB, err := b.MAC()
	if err != nil {
		t.Fatal(err)
	}
	if len(macA) != 6 || macA.String() == macB.String() {
		t.Errorf("MACs %s and %s: want two distinct Ethernet addresses", macA, macB)
	}
	if ok, err := b.HasAddr(b.Addr); err != nil || !ok {
		t.Fatalf("b.HasAddr(%s) = %v, %v; want true", b.Addr, ok, err)
	}

	p, err := a.StartProbe(b.Addr, 5*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}

	// Replies flow. Replies carry the kernel's arrival time, so a busy
	// machine only thins them out (the sender's ticker drops ticks) and
	// the bounds below leave room for that.
	waitFor(t, "the first reply", 5*time.Second, func() bool { return p.Snapshot().Received > 0 })
	t0 := time.Now()
	time.Sleep(300 * time.Millisecond)
	t1 := time.Now()
	r := p.Snapshot()
	healthy := r.LongestGap(t0, t1)
	if n := r.RepliesBetween(t0, t1); n < 10 {
		t.Errorf("%d replies in 300ms at 5ms, want at least 10", n)
	}
	if healthy > 250*time.Millisecond {
		t.Errorf("longest gap %s with the link up, want under 250ms", healthy)
	}

	// checkOutage cuts b off, sees replies stop, restores, and sees them
	// come back.
	checkOutage := func(name string, carrier bool, cut, restore func() error) {
		t.Helper()
		if err := cut(); err != nil {
			t.Fatal(err)
		}
		tCut := time.Now()
		if up, err := b.Carrier(); err != nil || up != carrier {
			t.Errorf("%s: b carrier = %v, %v; want %v", name, up, err, carrier)
		}
		time.Sleep(400 * time.Millisecond)
		tEnd := time.Now()
		r := p.Snapshot()
		if n := r.RepliesBetween(tCut.Add(20*time.Millisecond), tEnd); n != 0 {
			t.Errorf("%s: %d replies while cut off, want 0", name, n)
		}
		if gap := r.LongestGap(tCut, tEnd); gap < 380*time.Millisecond || gap <= healthy {
			t.Errorf("%s: longest gap %s (healthy %s), want it to grow past 380ms", name, gap, healthy)
		}

		tRestore := time.Now()
		if err := restore(); err != nil {
			t.Fatal(err)
		}
		var back time.Time
		waitFor(t, name+": replies to resume", 5*time.Second, func() bool {
			var ok bool
			back, ok = p.Snapshot().FirstReplyAfter(tRestore)
			return ok
		})
		t.Logf("%s: replies resumed %s after restoring", name, back.Sub(tRestore))
		if up, err := b.Carrier(); err != nil || !up {
			t.Errorf("%s: b carrier after restoring = %v, %v; want true", name, up, err)
		}
	}
	checkOutage("cut link", false, b.CutLink, b.RestoreLink)
	checkOutage("detach", true, b.Detach, b.Attach)

	res := p.Stop()
	if res.Sent < res.Received || res.Received == 0 || len(res.Replies) != res.Received {
		t.Errorf("result: sent %d, received %d, %d replies", res.Sent, res.Received, len(res.Replies))
	}
	if res.Err != nil {
		t.Errorf("probe receive error: %v", res.Err)
	}
	for _, rep := range res.Replies {
		if rep.RTT() < 0 {
			t.Errorf("reply %d has negative RTT %s", rep.Seq, rep.RTT())
		}
	}
	t.Logf("probe: sent %d, received %d, duplicates %d, send errors %d",
		res.Sent, res.Received, res.Duplicates, res.SendErrors)

	// An address added behind the host's back is seen at once.
	vip := netip.MustParseAddr("198.18.0.100")
	w, err := b.WatchAddr(vip)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := b.HasAddr(vip); err != nil || ok {
		t.Fatalf("b.HasAddr(%s) before adding = %v, %v; want false", vip, ok, err)
	}
	tAdd := time.Now()
	if _, err := b.Run("ip", "addr", "add", "198.18.0.100/32", "dev", "eth0"); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.HasAddr(vip); err != nil || !ok {
		t.Errorf("b.HasAddr(%s) = %v, %v; want true", vip, ok, err)
	}
	waitFor(t, "the add event", 2*time.Second, func() bool { return len(w.Events()) >= 1 })
	ev := w.Events()[0]
	if !ev.Added || ev.Time.Before(tAdd) || ev.Time.After(tAdd.Add(time.Second)) || ev.LinkIndex == 0 {
		t.Errorf("first event %+v, want an add within a second after %s", ev, tAdd.Format(time.RFC3339Nano))
	}
	if !w.Present() {
		t.Error("watch does not report the address present")
	}
	if _, err := b.Run("ip", "addr", "del", "198.18.0.100/32", "dev", "eth0"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the remove event", 2*time.Second, func() bool { return len(w.Events()) >= 2 })
	if evs := w.Events(); len(evs) != 2 || evs[1].Added || evs[1].Time.Before(ev.Time) {
		t.Errorf("events %+v, want one add then one remove", evs)
	}

	// A watch started while the address is there reports it at once.
	if _, err := b.Run("ip", "addr", "add", "198.18.0.100/32", "dev", "eth0"); err != nil {
		t.Fatal(err)
	}
	w2, err := b.WatchAddr(vip)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the listed address", 2*time.Second, func() bool { return w2.Present() })
	w.Stop()
	// w2 is left for Close to stop.

	// Processes: exit codes, signals, and Close ending them.
	logPath := filepath.Join(t.TempDir(), "proc.log")
	exit3, err := a.Start(logPath, "sh", "-c", "echo hello; exit 3")
	if err != nil {
		t.Fatal(err)
	}
	if code, err := exit3.Wait(5 * time.Second); err != nil || code != 3 {
		t.Errorf("Wait = %d, %v; want 3", code, err)
	}
	if !exit3.Exited() {
		t.Error("Exited is false after Wait")
	}
	if out, err := os.ReadFile(logPath); err != nil || string(out) != "hello\n" {
		t.Errorf("log = %q, %v; want hello", out, err)
	}

	termed, err := a.Start(logPath, "sleep", "30")
	if err != nil {
		t.Fatal(err)
	}
	if code, err := termed.Wait(0); err == nil {
		t.Fatalf("sleep exited at once with %d", code)
	}
	if err := termed.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, err := termed.Wait(5 * time.Second); err != nil || code != 128+int(syscall.SIGTERM) {
		t.Errorf("Wait after SIGTERM = %d, %v; want %d", code, err, 128+int(syscall.SIGTERM))
	}

	sleeper, err := b.Start(logPath, "sleep", "30")
	if err != nil {
		t.Fatal(err)
	}
	if !sameNamespace(t, sleeper.PID, b.NS) {
		t.Errorf("pid %d is not in namespace %s", sleeper.PID, b.NS)
	}
	// A shell that ignores SIGTERM, with a child that ignores it too: Close
	// must escalate to SIGKILL and also sweep the orphaned child.
	stubborn, err := a.Start(logPath, "sh", "-c", `trap "" TERM; sleep 30; true`)
	if err != nil {
		t.Fatal(err)
	}
	var inA []int
	waitFor(t, "the stubborn shell's child", 5*time.Second, func() bool {
		inA, err = pidsIn(a.NS)
		return err == nil && len(inA) >= 2
	})

	start := time.Now()
	closed = true
	if err := l.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	took := time.Since(start)
	if took < termGrace || took > termGrace+5*time.Second {
		t.Errorf("Close took %s, want a little over %s (SIGTERM grace)", took, termGrace)
	}
	for _, pr := range []*Proc{sleeper, stubborn} {
		if !pr.Exited() {
			t.Errorf("%s not reaped after Close", pr)
		}
		if pidAlive(pr.PID) {
			t.Errorf("%s still alive after Close", pr)
		}
	}
	if code, _ := stubborn.Wait(0); code != 128+int(syscall.SIGKILL) {
		t.Errorf("stubborn shell exit %d, want %d (SIGKILL)", code, 128+int(syscall.SIGKILL))
	}
	for _, pid := range inA {
		// The orphaned child is reaped by init, which may take a moment.
		waitFor(t, "pid to disappear", 5*time.Second, func() bool { return !pidAlive(pid) || isZombie(pid) })
	}
	if got := namespacesWithPrefix(t, prefix); len(got) != 0 {
		t.Errorf("namespaces left after Close: %v", got)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if other := threadsOutsideInitialNamespace(t); len(other) > 0 {
		t.Errorf("threads %v are not in the process's network namespace", other)
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > goroutines && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > goroutines {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines after Close, %d before:\n%s", n, goroutines, buf[:runtime.Stack(buf, true)])
	}
	if _, err := l.AddHost("c", "198.18.0.13/24"); !errors.Is(err, ErrClosed) {
		t.Errorf("AddHost after Close: %v, want ErrClosed", err)
	}
	if _, err := a.Start(logPath, "true"); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Close: %v, want ErrClosed", err)
	}
}

// threadsOutsideInitialNamespace lists the threads of this process that
// are not in the network namespace the process started in.
func threadsOutsideInitialNamespace(t *testing.T) []string {
	t.Helper()
	want, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	var other []string
	for _, task := range tasks {
		got, err := os.Readlink(filepath.Join("/proc/self/task", task.Name(), "ns", "net"))
		if err == nil && got != want {
			other = append(other, task.Name()+": "+got)
		}
	}
	return other
}

func isZombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// pid (comm) S ...: the state follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}

// New removes namespaces, and the processes in them, that a crashed run
// with the same prefix left behind.
func TestNewRemovesLeftovers(t *testing.T) {
	needRoot(t)
	const prefix = "labz"
	leftover := prefix + "old"
	if out, err := exec.Command("ip", "netns", "add", leftover).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", leftover, err, out)
	}
	defer exec.Command("ip", "netns", "del", leftover).Run()
	orphan := exec.Command("ip", "netns", "exec", leftover, "sleep", "30")
	if err := orphan.Start(); err != nil {
		t.Fatal(err)
	}
	defer orphan.Process.Kill()
	waitFor(t, "the orphan to enter "+leftover, 5*time.Second, func() bool {
		pids, err := pidsIn(leftover)
		return err == nil && len(pids) == 1
	})

	l, err := New(prefix)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got := namespacesWithPrefix(t, prefix); len(got) != 1 || got[0] != prefix+"br" {
		t.Errorf("namespaces after New: %v, want only %sbr", got, prefix)
	}
	done := make(chan error, 1)
	go func() { done <- orphan.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Error("the process in the leftover namespace survived New")
	}
	if err := l.Close(); err != nil {
		t.Error(err)
	}
	if got := namespacesWithPrefix(t, prefix); len(got) != 0 {
		t.Errorf("namespaces left after Close: %v", got)
	}
}

// A failed AddHost leaves no namespace behind, and neither does Close.
func TestAddHostFailureCleansUp(t *testing.T) {
	needRoot(t)
	const prefix = "labf"
	l, err := New(prefix)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// A link already in the bridge namespace under the host's name makes
	// AddHost fail after it has made the host's namespace.
	if _, err := l.Bridge().Run("ip", "link", "add", "name", "clash", "type", "veth", "peer", "name", "clashpeer"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.AddHost("clash", "198.18.0.20/24"); err == nil {
		t.Error("AddHost over an existing bridge-side link succeeded")
	} else {
		t.Logf("AddHost failed as it should: %v", err)
	}
	if got := namespacesWithPrefix(t, prefix); len(got) != 1 {
		t.Errorf("namespaces after a failed AddHost: %v, want only labfbr", got)
	}
	if _, err := l.AddHost("ok", "198.18.0.21/24"); err != nil {
		t.Fatal(err)
	}
	if got := namespacesWithPrefix(t, prefix); len(got) != 2 {
		t.Errorf("namespaces %v, want labfbr and labfok", got)
	}
	if err := l.Close(); err != nil {
		t.Error(err)
	}
	if got := namespacesWithPrefix(t, prefix); len(got) != 0 {
		t.Errorf("namespaces left after Close: %v", got)
	}
}

func TestValidation(t *testing.T) {
	for _, p := range []string{"", "Upper", "toolongprefix", "a-b", "a/b"} {
		if _, err := New(p); err == nil {
			t.Errorf("New(%q) succeeded", p)
		}
	}
	l := &Lab{prefix: "x", hosts: map[string]*Host{}, stoppers: map[stopper]struct{}{}}
	l.bridge = &Host{Name: bridgeHost, NS: "xbr", lab: l}
	for _, n := range []string{"", "br", "br0", "lo", "UPPER", "sixteencharslong", "a.b"} {
		if _, err := l.AddHost(n, "198.18.0.1/24"); err == nil {
			t.Errorf("AddHost(%q) succeeded", n)
		}
	}
	for _, a := range []string{"198.18.0.1", "198.18.0.1/33", "fd00::1/64"} {
		if _, err := l.AddHost("h", a); err == nil {
			t.Errorf("AddHost with address %s succeeded", a)
		}
	}
	if err := l.Bridge().CutLink(); err == nil {
		t.Error("CutLink on the bridge succeeded")
	}
}

func TestLongestGap(t *testing.T) {
	base := time.Now()
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	result := func(ms ...int) Result {
		var r Result
		for i, m := range ms {
			r.Replies = append(r.Replies, Reply{Seq: i, Sent: at(m - 1), Received: at(m)})
		}
		r.Received = len(r.Replies)
		return r
	}
	ms := time.Millisecond
	tests := []struct {
		name     string
		r        Result
		from, to int
		want     time.Duration
	}{
		{"no replies", result(), 0, 100, 100 * ms},
		{"empty window", result(10, 20), 50, 50, 0},
		{"reversed window", result(10, 20), 100, 0, 0},
		{"gap in the middle", result(0, 10, 60, 70, 80), 0, 80, 50 * ms},
		{"gap at the start", result(40, 50, 60), 0, 60, 40 * ms},
		{"gap at the end", result(0, 10, 20), 0, 100, 80 * ms},
		{"single reply", result(30), 0, 100, 70 * ms},
		{"replies outside the window ignored", result(0, 5, 200, 300), 100, 250, 100 * ms},
		{"no reply inside the window", result(0, 300), 100, 200, 100 * ms},
		{"replies on the edges count", result(100, 150, 200), 100, 200, 50 * ms},
		{"out of order", result(70, 10, 40), 0, 80, 30 * ms},
		{"duplicate times", result(10, 10, 10), 0, 20, 10 * ms},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.LongestGap(at(tt.from), at(tt.to)); got != tt.want {
				t.Errorf("LongestGap = %s, want %s", got, tt.want)
			}
		})
	}
}

// A gap between replies that the probe made by sending late is not
// counted; one made by requests that went unanswered is, and so is the
// part of a gap that is not the sender's.
func TestLongestGapDiscountsLateSends(t *testing.T) {
	base := time.Now()
	ms := time.Millisecond
	at := func(m float64) time.Time { return base.Add(time.Duration(m * float64(ms))) }
	// reply(seq, sent, received) in ms.
	reply := func(seq int, sent, rcvd float64) Reply { return Reply{Seq: seq, Sent: at(sent), Received: at(rcvd)} }
	for _, tt := range []struct {
		name string
		reps []Reply
		want time.Duration
	}{
		{"on time", []Reply{reply(0, 0, 0.1), reply(1, 5, 5.1), reply(2, 10, 10.1)}, 5 * ms},
		{"the second request sent 5 ms late", []Reply{reply(0, 0, 0.1), reply(1, 10, 10.1), reply(2, 15, 15.1)}, 5 * ms},
		{"two requests lost, sent on time", []Reply{reply(0, 0, 0.1), reply(3, 15, 15.1), reply(4, 20, 20.1)}, 15 * ms},
		{"two lost, the next sent 4 ms late", []Reply{reply(0, 0, 0.1), reply(3, 19, 19.1), reply(4, 24, 24.1)}, 15 * ms},
		{"a slow answer is counted", []Reply{reply(0, 0, 0.1), reply(1, 5, 13.1), reply(2, 10, 13.2)}, 13 * ms},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := Result{Interval: 5 * ms, Replies: tt.reps}
			if got := r.LongestGap(at(0.1), at(tt.reps[len(tt.reps)-1].Received.Sub(base).Seconds()*1000)); got != tt.want {
				t.Errorf("LongestGap = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFirstReplyAfterAndRepliesBetween(t *testing.T) {
	base := time.Now()
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	var r Result
	for i, m := range []int{50, 10, 30} {
		r.Replies = append(r.Replies, Reply{Seq: i, Received: at(m)})
	}
	if got, ok := r.FirstReplyAfter(at(15)); !ok || !got.Equal(at(30)) {
		t.Errorf("FirstReplyAfter(15) = %v, %v; want 30ms", got.Sub(base), ok)
	}
	if got, ok := r.FirstReplyAfter(at(30)); !ok || !got.Equal(at(30)) {
		t.Errorf("FirstReplyAfter(30) = %v, %v; want 30ms (inclusive)", got.Sub(base), ok)
	}
	if _, ok := r.FirstReplyAfter(at(51)); ok {
		t.Error("FirstReplyAfter past the last reply found one")
	}
	for _, tt := range []struct{ from, to, want int }{
		{0, 100, 3}, {10, 30, 2}, {11, 29, 0}, {30, 30, 1}, {60, 100, 0}, {50, 0, 0},
	} {
		if got := r.RepliesBetween(at(tt.from), at(tt.to)); got != tt.want {
			t.Errorf("RepliesBetween(%d, %d) = %d, want %d", tt.from, tt.to, got, tt.want)
		}
	}
	r.Sent, r.Received = 5, 3
	if r.Lost() != 2 {
		t.Errorf("Lost = %d, want 2", r.Lost())
	}
}

func TestModuleRoot(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root, err := moduleRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Join(root, "e2e", "lab") != wd {
		t.Errorf("module root %s, want two levels above %s", root, wd)
	}
	if _, err := moduleRoot(t.TempDir()); err == nil {
		t.Error("moduleRoot found a module above a temporary directory")
	}
}

// A subscription that ends by itself is replaced, and a removal missed in
// between is still recorded.
func TestWatchResubscribes(t *testing.T) {
	needRoot(t)
	l, err := New("labw")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	}()
	h, err := l.AddHost("w", "198.18.0.31/24")
	if err != nil {
		t.Fatal(err)
	}
	vip := netip.MustParseAddr("198.18.0.101")
	ns, err := netns.GetFromName(h.NS)
	if err != nil {
		t.Fatal(err)
	}
	w := &AddrWatch{
		addr: vip, nsName: h.NS, ns: ns, lab: l,
		quit: make(chan struct{}), done: make(chan struct{}),
		// As if vip had been seen on link 2 before the subscription broke.
		links: map[int]bool{2: true},
	}
	if err := l.register(w); err != nil {
		t.Fatal(err)
	}
	broken := make(chan netlink.AddrUpdate)
	close(broken)
	go w.run(broken, make(chan struct{}))

	waitFor(t, "the missed removal", 2*time.Second, func() bool { return len(w.Events()) == 1 })
	if ev := w.Events()[0]; ev.Added || ev.LinkIndex != 2 {
		t.Errorf("event after resubscribing %+v, want the removal from link 2", ev)
	}
	if _, err := h.Run("ip", "addr", "add", "198.18.0.101/32", "dev", "eth0"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the add on the new subscription", 2*time.Second, func() bool { return len(w.Events()) == 2 })
	if ev := w.Events()[1]; !ev.Added {
		t.Errorf("second event %+v, want an add", ev)
	}
	w.mu.Lock()
	resubs := w.resubs
	w.mu.Unlock()
	if resubs != 1 {
		t.Errorf("resubscribed %d times, want 1", resubs)
	}
	w.Stop()
}
