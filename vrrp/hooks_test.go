package vrrp

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vipd/vipd/config"
)

// hookRecorder stands in for runCommand: it records each hook run (argv,
// then the VIPD_* variables) and succeeds.
type hookRecorder struct {
	mu    sync.Mutex
	calls []string
	creds []*config.Credential
	// inFlight counts runs in progress; overlap records whether two ever
	// ran at once.
	inFlight int
	overlap  bool
}

func (r *hookRecorder) run(argv, vars []string, timeout time.Duration, cred *config.Credential) commandRun {
	r.mu.Lock()
	r.inFlight++
	if r.inFlight > 1 {
		r.overlap = true
	}
	r.mu.Unlock()
	time.Sleep(100 * time.Microsecond) // long enough for an overlap to show
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inFlight--
	r.calls = append(r.calls, strings.Join(argv, " ")+" | "+strings.Join(vars, " "))
	r.creds = append(r.creds, cred)
	return commandRun{started: true}
}

func (r *hookRecorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// argvs returns the argv part of each call.
func (r *hookRecorder) argvs() []string {
	var out []string
	for _, c := range r.got() {
		a, _, _ := strings.Cut(c, " | ")
		out = append(out, a)
	}
	return out
}

func (r *hookRecorder) waitFor(t *testing.T, n int) {
	t.Helper()
	trkPoll(t, 5*time.Second, fmt.Sprintf("%d hook runs", n), func() bool { return len(r.got()) >= n })
}

var allHooks = config.Notify{
	Master: []string{"/h/master", "m"}, Backup: []string{"/h/backup"}, Fault: []string{"/h/fault"}, Stop: []string{"/h/stop"},
	Keepalived: []string{"/h/ka", "-x"}, Command: []string{"/h/cmd"}, Timeout: time.Second,
}

// For one event: the state's own hook, then keepalived with keepalived's
// arguments, then command, each with the VIPD_* environment; events one
// after the other, never overlapping.
func TestNotifyHookOrderAndKeepalivedArgs(t *testing.T) {
	log, _ := trkNewLog()
	rec := &hookRecorder{}
	cred := &config.Credential{User: "nobody", UID: 65534, GID: 65534}
	spec := allHooks
	spec.Run = cred
	n := startNotifier(&notifier{instance: "web", spec: spec, log: log, run: rec.run}, nil)
	for _, ev := range []NotifyEvent{
		{State: "backup", PreviousState: "stopped", Priority: 100, VIPs: []string{"192.0.2.1"}},
		{State: "master", PreviousState: "backup", Priority: 100, VIPs: []string{"192.0.2.1"}},
		{State: "fault", PreviousState: "master", Priority: 90},
		{State: "stopped", PreviousState: "fault", Priority: 90},
	} {
		ev.Instance = "web"
		n.Notify(ev)
	}
	ntfCloseWithin(t, n, true, 5*time.Second)
	env := func(state, prev, prio, vips string) string {
		return fmt.Sprintf(" | VIPD_INSTANCE=web VIPD_STATE=%s VIPD_PREVIOUS_STATE=%s VIPD_PRIORITY=%s VIPD_VIPS=%s", state, prev, prio, vips)
	}
	b, m := env("backup", "stopped", "100", "192.0.2.1"), env("master", "backup", "100", "192.0.2.1")
	f, s := env("fault", "master", "90", ""), env("stopped", "fault", "90", "")
	want := []string{
		"/h/backup" + b, "/h/ka -x INSTANCE web BACKUP 100" + b, "/h/cmd" + b,
		"/h/master m" + m, "/h/ka -x INSTANCE web MASTER 100" + m, "/h/cmd" + m,
		"/h/fault" + f, "/h/ka -x INSTANCE web FAULT 90" + f, "/h/cmd" + f,
		"/h/stop" + s, "/h/ka -x INSTANCE web STOP 90" + s, "/h/cmd" + s,
	}
	if diff := cmp.Diff(want, rec.got()); diff != "" {
		t.Errorf("hook runs (-want +got):\n%s", diff)
	}
	if rec.overlap {
		t.Error("hooks ran at the same time")
	}
	for i, c := range rec.creds {
		if c != cred {
			t.Errorf("run %d with credential %v; want the hooks' %v", i, c, cred)
		}
	}
	// The keepalived hook's own list is not grown in place across runs.
	if !slices.Equal(spec.Keepalived, []string{"/h/ka", "-x"}) {
		t.Errorf("spec.Keepalived changed to %q", spec.Keepalived)
	}
}

// Only the hooks that are set run; a state without its own hook runs the
// others.
func TestNotifyPartialHooks(t *testing.T) {
	for _, tc := range []struct {
		spec config.Notify
		want []string
	}{
		{config.Notify{Master: []string{"/m"}}, []string{"/m"}},
		{config.Notify{Keepalived: []string{"/ka"}}, []string{"/ka INSTANCE web BACKUP 7", "/ka INSTANCE web MASTER 7"}},
		{config.Notify{Backup: []string{"/b"}, Command: []string{"/c"}}, []string{"/b", "/c", "/c"}},
	} {
		log, _ := trkNewLog()
		rec := &hookRecorder{}
		n := startNotifier(&notifier{instance: "web", spec: tc.spec, log: log, run: rec.run}, nil)
		n.Notify(NotifyEvent{Instance: "web", State: "backup", PreviousState: "stopped", Priority: 7})
		n.Notify(NotifyEvent{Instance: "web", State: "master", PreviousState: "backup", Priority: 7})
		ntfCloseWithin(t, n, true, 5*time.Second)
		if diff := cmp.Diff(tc.want, rec.argvs()); diff != "" {
			t.Errorf("%+v: hook runs (-want +got):\n%s", tc.spec, diff)
		}
	}
}

// A group's keepalived hook gets GROUP, its name, the state and 0, and
// its environment names the group and its members.
func TestNotifyGroupArgs(t *testing.T) {
	log, _ := trkNewLog()
	rec := &hookRecorder{}
	n := newGroupNotifier("edge", allHooks, log)
	n.Close(false)
	n = startNotifier(&notifier{instance: "edge", group: true, spec: allHooks, log: log, run: rec.run}, nil)
	n.Notify(NotifyEvent{Group: "edge", Members: []string{"web", "api"}, State: "master", PreviousState: "backup", VIPs: []string{"192.0.2.1", "192.0.2.2"}})
	ntfCloseWithin(t, n, true, 5*time.Second)
	e := " | VIPD_GROUP=edge VIPD_INSTANCES=web api VIPD_STATE=master VIPD_PREVIOUS_STATE=backup VIPD_PRIORITY=0 VIPD_VIPS=192.0.2.1 192.0.2.2"
	want := []string{"/h/master m" + e, "/h/ka -x GROUP edge MASTER 0" + e, "/h/cmd" + e}
	if diff := cmp.Diff(want, rec.got()); diff != "" {
		t.Errorf("hook runs (-want +got):\n%s", diff)
	}
}

func TestGroupState(t *testing.T) {
	const (
		I = StateInit
		B = StateBackup
		M = StateMaster
		F = StateFault
	)
	for _, tc := range []struct {
		members []State
		want    State
	}{
		{[]State{I, I}, I},
		{[]State{B, I}, B},    // starting: the members that run
		{[]State{M, I}, M},    // stopping one by one
		{[]State{M, B}, B},    // one has not followed yet, or one left
		{[]State{M, M}, M},    // all master
		{[]State{B, B}, B},    // all backup
		{[]State{F, M}, F},    // any fault
		{[]State{I, F}, F},    // fault also beside a stopped member
		{[]State{M, M, B}, B}, // three
	} {
		if got := groupState(tc.members); got != tc.want {
			t.Errorf("groupState(%v) = %v; want %v", tc.members, got, tc.want)
		}
	}
}

// hkStart creates a host's Node with its hooks recorded, then starts it.
func hkStart(h *simNode, cfg *config.Config) *hookRecorder {
	h.net.t.Helper()
	if err := h.create(cfg); err != nil {
		h.net.t.Fatalf("%s: %v", h.name, err)
	}
	rec := &hookRecorder{}
	h.n.hookRun = rec.run
	h.run()
	return rec
}

const hkNotify = `notify: {master: [/h/master], backup: [/h/backup], fault: [/h/fault], stop: [/h/stop], keepalived: [/h/ka]}`

// An instance's hooks across backup → master → (a peer preempts) → backup
// → fault → backup → stop, with keepalived's arguments, in order.
func TestScenarioInstanceHooks(t *testing.T) {
	s := newSimNet(t)
	a := s.host("a", "10.0.0.1")
	b := s.host("b", "10.0.0.2")
	rec := hkStart(a, s.config(scnConfig(scnInstance("web", 51, 150, hkNotify))))
	b.start(s.config(scnConfig(scnInstance("web", 51, 100))))
	s.run(2 * time.Second)
	a.expect("web", StateMaster)
	// b preempts.
	if err := b.n.reload(s.config(scnConfig(scnInstance("web", 51, 200))), s.now); err != nil {
		t.Fatal(err)
	}
	b.after()
	s.run(2 * time.Second)
	a.expect("web", StateBackup)
	a.setLink("eth0", false, nil)
	s.run(time.Second)
	a.expect("web", StateFault)
	a.setLink("eth0", true, nil)
	s.run(time.Second)
	a.expect("web", StateBackup)
	a.stop()
	s.run(time.Second)
	a.n.awaitHooks(5 * time.Second)
	want := []string{
		"/h/backup", "/h/ka INSTANCE web BACKUP 150",
		"/h/master", "/h/ka INSTANCE web MASTER 150",
		"/h/backup", "/h/ka INSTANCE web BACKUP 150",
		"/h/fault", "/h/ka INSTANCE web FAULT 150",
		"/h/backup", "/h/ka INSTANCE web BACKUP 150",
		"/h/stop", "/h/ka INSTANCE web STOP 150",
	}
	if diff := cmp.Diff(want, rec.argvs()); diff != "" {
		t.Errorf("hook runs (-want +got):\n%s", diff)
	}
	if rec.overlap {
		t.Error("hooks of one instance overlapped")
	}
}

// An instance removed by reload runs its stop hooks (STOP), and a new
// notifier for the same name waits for them.
func TestScenarioInstanceHooksRemovedByReload(t *testing.T) {
	s := newSimNet(t)
	a := s.host("a", "10.0.0.1")
	rec := hkStart(a, s.config(scnConfig(scnInstance("web", 51, 150, hkNotify))))
	s.run(2 * time.Second)
	a.expect("web", StateMaster)
	if err := a.n.reload(s.config(scnConfig(scnInstance("api", 52, 150, "vips: [198.51.100.20]"))), s.now); err != nil {
		t.Fatal(err)
	}
	a.after()
	a.stop()
	s.run(time.Second)
	a.n.awaitHooks(5 * time.Second)
	want := []string{"/h/backup", "/h/ka INSTANCE web BACKUP 150", "/h/master", "/h/ka INSTANCE web MASTER 150", "/h/stop", "/h/ka INSTANCE web STOP 150"}
	if diff := cmp.Diff(want, rec.argvs()); diff != "" {
		t.Errorf("hook runs (-want +got):\n%s", diff)
	}
}

// hkGroup is scnGroup with hooks on the sync group of host a.
func hkGroup(t *testing.T, groupNotify string, apiExtra ...string) (*simNet, *simNode, *simNode, *hookRecorder) {
	s := newSimNet(t)
	a := s.host("a", "10.0.0.1")
	b := s.host("b", "10.0.0.2")
	for _, h := range []*simNode{a, b} {
		h.links["eth2"] = &LinkInfo{Name: "eth2", Index: 4, Up: true}
	}
	cfg := func(prio int, notify string, extra []string) string {
		api := strings.Replace(scnInstance("api", 52, prio, append(extra, "vips: [198.51.100.20]")...), "interface: eth0", "interface: eth1", 1)
		g := "sync_groups:\n  - name: edge\n    instances: [web, api]\n"
		if notify != "" {
			g += "    " + notify + "\n"
		}
		return g + scnConfig(scnInstance("web", 51, prio), api)
	}
	rec := hkStart(a, s.config(cfg(150, groupNotify, apiExtra)))
	b.start(s.config(cfg(100, "", nil)))
	s.run(2 * time.Second)
	a.expect("web", StateMaster)
	a.expect("api", StateMaster)
	return s, a, b, rec
}

// A sync group's hooks run when the group as a whole changes state:
// BACKUP once its members run, MASTER once all are master, FAULT when a
// member fails, BACKUP and MASTER again when it recovers, STOP at stop;
// never for the passing states of one member.
func TestScenarioGroupHooks(t *testing.T) {
	s, a, _, rec := hkGroup(t, hkNotify, "track: {interfaces: [{name: eth2, weight: 0}]}")
	a.setLink("eth2", false, nil)
	s.run(time.Second)
	a.expect("api", StateFault)
	a.setLink("eth2", true, nil)
	s.run(2 * time.Second)
	a.expect("web", StateMaster)
	a.expect("api", StateMaster)
	a.stop()
	s.run(time.Second)
	a.n.awaitHooks(5 * time.Second)
	want := []string{
		"/h/backup", "/h/ka GROUP edge BACKUP 0",
		"/h/master", "/h/ka GROUP edge MASTER 0",
		"/h/fault", "/h/ka GROUP edge FAULT 0",
		"/h/backup", "/h/ka GROUP edge BACKUP 0",
		"/h/master", "/h/ka GROUP edge MASTER 0",
		"/h/stop", "/h/ka GROUP edge STOP 0",
	}
	if diff := cmp.Diff(want, rec.argvs()); diff != "" {
		t.Errorf("group hook runs (-want +got):\n%s", diff)
	}
	for _, g := range a.n.groups {
		select {
		case <-g.notify.Done():
		default:
			t.Errorf("group %s's notifier still running after the stop", g.name)
		}
	}
}

// A reload that keeps a group and its hooks keeps its runner and state (no
// hook runs); one that removes the group runs its stop hooks.
func TestScenarioGroupHooksReload(t *testing.T) {
	s, a, _, rec := hkGroup(t, hkNotify)
	rec.waitFor(t, 4) // BACKUP, MASTER
	before := len(rec.got())
	nt := a.n.groups[0].notify
	same := a.n.cfg
	cfgCopy := *same
	if err := a.n.reload(&cfgCopy, s.now); err != nil {
		t.Fatal(err)
	}
	a.after()
	s.run(time.Second)
	if a.n.groups[0].notify != nt || a.n.groups[0].state != StateMaster {
		t.Errorf("an unchanged group got a new runner or lost its state (%v)", a.n.groups[0].state)
	}
	noGroup := cfgCopy
	noGroup.SyncGroups = nil
	if err := a.n.reload(&noGroup, s.now); err != nil {
		t.Fatal(err)
	}
	a.after()
	a.n.awaitHooks(5 * time.Second)
	got := rec.argvs()[before:]
	if diff := cmp.Diff([]string{"/h/stop", "/h/ka GROUP edge STOP 0"}, got); diff != "" {
		t.Errorf("hook runs after the reloads (-want +got):\n%s", diff)
	}
	if len(a.n.groups) != 0 {
		t.Errorf("%d groups left", len(a.n.groups))
	}
}

// A hook or script run with a credential runs as that user, with its
// groups, and with no capability; so does one run as uid 0 with another
// group (SECBIT_NOROOT).
func TestChildCredential(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch users")
	}
	dir := t.TempDir()
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil { // nobody reaches the script
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil { // and writes its status here
		t.Fatal(err)
	}
	script := trkScript(t, dir, "who", `cat /proc/$$/status > "@DIR@/status.$(id -u).$(id -g)"`)
	const none = "0000000000000000"
	for _, c := range []*config.Credential{
		{User: "nobody", UID: 65534, GID: 65534, Groups: []uint32{65534, 4}},
		{User: "root", UID: 0, GID: 65534, Groups: []uint32{65534}},
	} {
		r := runCommand(t.Context(), []string{script}, nil, 5*time.Second, c)
		if r.err != nil {
			t.Fatalf("%s: %v (%s)", c.User, r.err, r.output)
		}
		b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("status.%d.%d", c.UID, c.GID)))
		if err != nil {
			t.Fatal(err)
		}
		f := capFields(string(b))
		for _, k := range []string{"CapInh", "CapPrm", "CapEff", "CapAmb"} {
			if f[k] != none {
				t.Errorf("%s: %s = %s; want none", c.User, k, f[k])
			}
		}
		if f["NoNewPrivs"] != "1" {
			t.Errorf("%s: NoNewPrivs = %s", c.User, f["NoNewPrivs"])
		}
		fields := map[string]string{}
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok {
				fields[k] = strings.Join(strings.Fields(v), " ")
			}
		}
		var wantGroups []string
		for _, g := range slices.Sorted(slices.Values(c.Groups)) { // the kernel sorts them
			wantGroups = append(wantGroups, fmt.Sprint(g))
		}
		id := func(v uint32) string { return strings.TrimSpace(strings.Repeat(fmt.Sprint(v)+" ", 4)) } // real, effective, saved, fs
		if fields["Uid"] != id(c.UID) || fields["Gid"] != id(c.GID) || fields["Groups"] != strings.Join(wantGroups, " ") {
			t.Errorf("%s: Uid %q Gid %q Groups %q; want %d, %d, %v", c.User, fields["Uid"], fields["Gid"], fields["Groups"], c.UID, c.GID, wantGroups)
		}
	}
}

// A tracker script with a user runs as that user.
func TestTrackScriptRunsAsUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch users")
	}
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Chmod(filepath.Dir(dir), 0o755))
	must(os.Chmod(dir, 0o777))
	script := trkScript(t, dir, "check", `id -u > "@DIR@/uid"`)
	log, _ := trkNewLog()
	out := make(chan TrackResult, 1)
	spec := config.TrackScript{Name: "chk", Command: []string{script}, Interval: time.Hour, Timeout: 5 * time.Second, Rise: 1, Fall: 1,
		Run: &config.Credential{User: "nobody", UID: 65534, GID: 65534, Groups: []uint32{65534}}}
	trkStart(t, func(ctx context.Context) { runScriptTracker(ctx, "web", spec, out, log) })
	if r := trkRecv(t, out, 5*time.Second); r.Failing {
		t.Fatalf("result %+v; want healthy", r)
	}
	b, err := os.ReadFile(filepath.Join(dir, "uid"))
	must(err)
	if strings.TrimSpace(string(b)) != "65534" {
		t.Errorf("the script ran as uid %q; want 65534", b)
	}
}
