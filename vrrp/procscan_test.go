package vrrp

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/vipd/vipd/config"
)

// fakeProc is a proc root in a temporary directory.
type fakeProc struct {
	t    *testing.T
	root string
}

func newFakeProc(t *testing.T) *fakeProc {
	p := &fakeProc{t: t, root: t.TempDir()}
	// What else the top of /proc holds, which is not a process.
	for _, d := range []string{"sys", "net", "0x"} {
		p.mkdir(d)
	}
	p.write("version", "Linux")
	if err := os.Symlink("1", filepath.Join(p.root, "self")); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *fakeProc) mkdir(d string) {
	if err := os.MkdirAll(filepath.Join(p.root, d), 0o755); err != nil {
		p.t.Fatal(err)
	}
}

func (p *fakeProc) write(name, data string) {
	if err := os.WriteFile(filepath.Join(p.root, name), []byte(data), 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// proc adds process pid: its comm, its state, its program (exe; "" for
// none, as for a kernel thread, a zombie or another user's process) and
// its argv.
func (p *fakeProc) proc(pid int, comm string, state byte, exe string, argv ...string) {
	d := strconv.Itoa(pid)
	p.mkdir(d)
	p.write(d+"/comm", comm+"\n")
	p.write(d+"/stat", d+" ("+comm+") "+string(state)+" 1 1 1 0 -1 4194560")
	var cmd []byte
	for _, a := range argv {
		cmd = append(append(cmd, a...), 0)
	}
	p.write(d+"/cmdline", string(cmd))
	if exe != "" {
		if err := os.Symlink(exe, filepath.Join(p.root, d, "exe")); err != nil {
			p.t.Fatal(err)
		}
	}
}

func (p *fakeProc) remove(pid int) {
	if err := os.RemoveAll(filepath.Join(p.root, strconv.Itoa(pid))); err != nil {
		p.t.Fatal(err)
	}
}

func procSpec(name, process string, args ...string) config.TrackProcess {
	return config.TrackProcess{Name: name, Process: process, Args: args, MatchArgs: args != nil, Quorum: 1, Interval: time.Second}
}

func TestProcScanMatches(t *testing.T) {
	p := newFakeProc(t)
	p.proc(1, "systemd", 'S', "/usr/lib/systemd/systemd", "/sbin/init", "splash")
	p.proc(2, "kthreadd", 'S', "")
	p.proc(7, "kworker/0:1", 'I', "")
	p.proc(100, "haproxy", 'S', "/usr/sbin/haproxy", "/usr/sbin/haproxy", "-f", "/etc/haproxy/haproxy.cfg")
	p.proc(101, "haproxy", 'S', "/usr/sbin/haproxy", "haproxy", "-f", "/etc/haproxy/haproxy.cfg")
	// Upgraded on disk since it started.
	p.proc(102, "haproxy", 'R', "/usr/sbin/haproxy (deleted)", "/usr/sbin/haproxy", "-W")
	// Not reaped yet: it runs no more.
	p.proc(103, "haproxy", 'Z', "")
	// Another user's process: its program is unreadable, argv[0] counts.
	p.proc(200, "sleep", 'S', "", "/usr/bin/sleep", "3600")
	p.proc(201, "sleep", 'S', "/usr/bin/sleep", "sleep", "3600", "x")
	// Renamed by prctl(PR_SET_NAME): comm differs from the program.
	p.proc(300, "nginx-worker", 'S', "/usr/sbin/nginx", "nginx: worker process")
	// A name of 15 bytes, as the kernel cuts a longer one.
	p.proc(400, "kube-controller", 'S', "/usr/local/bin/kube-controller-manager", "/usr/local/bin/kube-controller-manager", "--v=2")

	for _, tc := range []struct {
		name string
		spec config.TrackProcess
		want int
	}{
		{"by comm, zombie left out", procSpec("a", "haproxy"), 3},
		{"by path: exe, deleted mark off", procSpec("a", "/usr/sbin/haproxy"), 3},
		{"by path with args", procSpec("a", "/usr/sbin/haproxy", "-f", "/etc/haproxy/haproxy.cfg"), 2},
		{"by comm with args", procSpec("a", "haproxy", "-W"), 1},
		{"args must match exactly, not as a prefix", procSpec("a", "haproxy", "-f"), 0},
		{"no args given: any", procSpec("a", "sleep"), 2},
		{"empty args: none at all", procSpec("a", "systemd", []string{}...), 0},
		{"argv[0] when the program is unreadable", procSpec("a", "/usr/bin/sleep", "3600"), 1},
		{"exe when readable, whatever argv[0] says", procSpec("a", "/usr/bin/sleep", "3600", "x"), 1},
		{"the path is not argv[0] when exe is readable", procSpec("a", "/sbin/init"), 0},
		{"comm, not argv[0]", procSpec("a", "nginx-worker"), 1},
		{"argv[0] is not comm", procSpec("a", "nginx"), 0},
		{"a rewritten command line has no args", procSpec("a", "/usr/sbin/nginx", []string{}...), 1},
		{"kernel threads match by comm", procSpec("a", "kthreadd"), 1},
		{"kernel threads never match a path", procSpec("a", "/usr/lib/systemd/systemd"), 1},
		{"15-byte comm", procSpec("a", "kube-controller"), 1},
		{"path of a long-named program", procSpec("a", "/usr/local/bin/kube-controller-manager", "--v=2"), 1},
		{"nothing", procSpec("a", "postgres"), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := newProcScanner(p.root, []config.TrackProcess{tc.spec})
			counts := []int{-1}
			procs, err := sc.scan(counts)
			if err != nil {
				t.Fatal(err)
			}
			if procs != 11 {
				t.Errorf("looked at %d processes, want 11", procs)
			}
			if counts[0] != tc.want {
				t.Errorf("count %d, want %d", counts[0], tc.want)
			}
		})
	}
}

// procSpec with no args leaves MatchArgs off; with an empty (non-nil)
// list on.
func TestProcSpecArgs(t *testing.T) {
	if procSpec("a", "x").MatchArgs || !procSpec("a", "x", []string{}...).MatchArgs {
		t.Fatal("procSpec: nil args must not match args, empty args must")
	}
}

func TestProcScanSeveralTrackersOneScan(t *testing.T) {
	p := newFakeProc(t)
	p.proc(10, "sshd", 'S', "/usr/sbin/sshd", "sshd: /usr/sbin/sshd -D")
	p.proc(11, "sleep", 'S', "/usr/bin/sleep", "sleep", "9")
	p.proc(12, "sleep", 'S', "/usr/bin/sleep", "sleep", "10")
	sc := newProcScanner(p.root, []config.TrackProcess{
		procSpec("ssh", "sshd"), procSpec("s9", "/usr/bin/sleep", "9"), procSpec("sl", "sleep"),
	})
	counts := make([]int, 3)
	if _, err := sc.scan(counts); err != nil {
		t.Fatal(err)
	}
	if counts[0] != 1 || counts[1] != 1 || counts[2] != 2 {
		t.Fatalf("counts %v, want [1 1 2]", counts)
	}
	p.remove(11)
	if _, err := sc.scan(counts); err != nil {
		t.Fatal(err)
	}
	if counts[0] != 1 || counts[1] != 0 || counts[2] != 1 {
		t.Fatalf("after 11 exited: counts %v, want [1 0 1]", counts)
	}
}

func TestProcScanMissingRoot(t *testing.T) {
	sc := newProcScanner(filepath.Join(t.TempDir(), "nope"), []config.TrackProcess{procSpec("a", "x")})
	counts := []int{7}
	if _, err := sc.scan(counts); err == nil {
		t.Fatal("no error for a missing proc root")
	}
	if counts[0] != 0 {
		t.Errorf("count %d after a failed scan, want 0", counts[0])
	}
}

func TestQuorate(t *testing.T) {
	for _, tc := range []struct {
		quorum, max, count int
		up                 bool
	}{
		{1, 0, 0, false}, {1, 0, 1, true}, {1, 0, 500, true},
		{2, 0, 1, false}, {2, 0, 2, true},
		{2, 3, 3, true}, {2, 3, 4, false}, {1, 1, 2, false}, {1, 1, 1, true},
	} {
		spec := config.TrackProcess{Quorum: tc.quorum, QuorumMax: tc.max}
		if got := quorate(spec, tc.count); got != tc.up {
			t.Errorf("quorum %d..%d, %d processes: up %v, want %v", tc.quorum, tc.max, tc.count, got, tc.up)
		}
	}
}

func TestProcStateDelay(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	s := procState{spec: config.TrackProcess{Quorum: 1, Delay: 2 * time.Second}}
	type step struct {
		ms, count int
		changed   bool
		up        bool
	}
	for i, st := range []step{
		{0, 1, true, true},       // the first scan is told at once
		{1000, 1, false, true},   // nothing new
		{2000, 0, true, true},    // the count changes; the verdict waits
		{3000, 0, false, true},   // 1s down: not yet
		{3500, 1, true, true},    // back before the delay: the wait ends
		{4000, 0, true, true},    // down again: the wait starts again
		{5000, 0, false, true},   // 1s
		{6000, 0, true, false},   // 2s: down is told
		{7000, 2, true, false},   // up, waits
		{9000, 2, true, true},    // 2s later: up
		{10000, 2, false, true},  // steady
		{11000, 3, true, true},   // a new count is told
		{11000, 3, false, true},  // the same count is not
		{12000, 0, true, true},   // down, waits
		{14500, 0, true, false},  // told at the first scan past the delay
		{15000, 0, false, false}, // steady
	} {
		changed := s.observe(st.count, at(st.ms))
		if changed != st.changed || s.up != st.up || s.count != st.count {
			t.Fatalf("step %d (%dms, %d processes): changed %v up %v count %d, want %v %v %d",
				i, st.ms, st.count, changed, s.up, s.count, st.changed, st.up, st.count)
		}
	}
}

func TestProcStateNoDelay(t *testing.T) {
	s := procState{spec: config.TrackProcess{Quorum: 2, QuorumMax: 3}}
	now := time.Unix(1000, 0)
	if !s.observe(0, now) || s.up {
		t.Fatal("first scan with 0 processes: want down, told")
	}
	if !s.observe(2, now) || !s.up {
		t.Fatal("2 processes: want up at once")
	}
	if !s.observe(4, now) || s.up {
		t.Fatal("4 processes, above quorum_max: want down at once")
	}
}

func TestProcWatchPoll(t *testing.T) {
	p := newFakeProc(t)
	p.proc(50, "sleep", 'S', "/usr/bin/sleep", "sleep", "3600")
	w := newProcWatch("web", p.root, []config.TrackProcess{procSpec("sl", "sleep"), {Name: "two", Process: "sleep", Quorum: 2, Weight: -10}})
	now := time.Unix(1000, 0)
	rs, err := w.poll(now)
	if err != nil {
		t.Fatal(err)
	}
	want := []TrackResult{
		{Instance: "web", Kind: "process", Name: "sl", Failing: false, Value: 1},
		{Instance: "web", Kind: "process", Name: "two", Failing: true, Value: 1},
	}
	if len(rs) != 2 || rs[0] != want[0] || rs[1] != want[1] {
		t.Fatalf("first poll: %+v, want %+v", rs, want)
	}
	if rs, _ := w.poll(now.Add(time.Second)); len(rs) != 0 {
		t.Fatalf("nothing changed, yet %+v", rs)
	}
	p.remove(50)
	rs, _ = w.poll(now.Add(2 * time.Second))
	want = []TrackResult{
		{Instance: "web", Kind: "process", Name: "sl", Failing: true, Value: 0},
		{Instance: "web", Kind: "process", Name: "two", Failing: true, Value: 0},
	}
	if len(rs) != 2 || rs[0] != want[0] || rs[1] != want[1] {
		t.Fatalf("after the exit: %+v, want %+v", rs, want)
	}
}

// The scanner on the machine's own /proc: a process started here is
// counted by its name, its path and its arguments, and no more once it
// has exited and been reaped; the threads of this test binary are not
// processes of their own.
func TestProcScanHostProc(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep program:", err)
	}
	sleep, _ = filepath.EvalSymlinks(sleep)
	arg := "3599.4242"
	// This test binary by its path, which no other process runs (another
	// test run of the package has a binary of its own), with its threads.
	self, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Skip("no /proc:", err)
	}
	specs := []config.TrackProcess{
		procSpec("name", "sleep", arg),
		procSpec("path", sleep, arg),
		procSpec("self", self),
	}
	sc := newProcScanner("/proc", specs)
	counts := make([]int, len(specs))
	if _, err := sc.scan(counts); err != nil {
		t.Fatal(err)
	}
	if counts[0] != 0 || counts[1] != 0 {
		t.Fatalf("before the start: counts %v", counts)
	}
	if counts[2] != 1 {
		t.Errorf("this test binary counted %d times, want 1 (threads are not processes)", counts[2])
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, sleep, arg)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := sc.scan(counts); err != nil {
		t.Fatal(err)
	}
	if counts[0] != 1 || counts[1] != 1 {
		t.Errorf("while %s %s runs: counts %v, want 1 and 1", sleep, arg, counts)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if _, err := sc.scan(counts); err != nil {
		t.Fatal(err)
	}
	if counts[0] != 0 || counts[1] != 0 {
		t.Errorf("after the kill: counts %v, want 0 and 0", counts)
	}
}

// BenchmarkProcScan measures one scan of this machine's /proc with a
// tracker by name (and arguments) and one by path, the costly kind: it
// reads every process's program.
func BenchmarkProcScan(b *testing.B) {
	for _, bc := range []struct {
		name  string
		specs []config.TrackProcess
	}{
		{"comm", []config.TrackProcess{procSpec("a", "haproxy"), procSpec("b", "sshd", "-D")}},
		{"path", []config.TrackProcess{procSpec("a", "/usr/sbin/haproxy")}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			sc := newProcScanner("/proc", bc.specs)
			counts := make([]int, len(bc.specs))
			procs := 0
			b.ReportAllocs()
			for b.Loop() {
				n, err := sc.scan(counts)
				if err != nil {
					b.Fatal(err)
				}
				procs = n
			}
			b.ReportMetric(float64(procs), "procs")
		})
	}
}
