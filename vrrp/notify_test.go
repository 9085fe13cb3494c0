package vrrp

import (
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vipd/vipd/config"
)

// ntfRecordingHook writes a hook that appends $VIPD_PRIORITY to dir/log. The
// event with priority 0 also touches dir/started and then waits until
// dir/release exists, so a test can hold the hook busy.
func ntfRecordingHook(t *testing.T, dir string) []string {
	t.Helper()
	return []string{trkScript(t, dir, "hook", `
d=@DIR@
echo "$VIPD_PRIORITY" >> "$d/log"
if [ "$VIPD_PRIORITY" = 0 ]; then
	touch "$d/started"
	while [ ! -e "$d/release" ]; do sleep 0.005; done
fi
`)}
}

// ntfHookLog returns the priorities the recording hook saw, in order.
func ntfHookLog(t *testing.T, dir string) []int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "log"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var got []int
	for _, l := range strings.Fields(string(b)) {
		v, err := strconv.Atoi(l)
		if err != nil {
			t.Fatalf("hook log line %q", l)
		}
		got = append(got, v)
	}
	return got
}

func ntfTouch(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

func ntfExists(path string) bool { _, err := os.Stat(path); return err == nil }

// ntfBusy returns a notifier whose hook is running the priority-0
// event and will go on until dir/release is touched.
func ntfBusy(t *testing.T, dir string, log *slog.Logger) *notifier {
	t.Helper()
	n := newNotifier("web", config.Notify{Command: ntfRecordingHook(t, dir), Timeout: 5 * time.Second}, log)
	t.Cleanup(func() { ntfTouch(t, filepath.Join(dir, "release")); n.Close(false) })
	n.Notify(NotifyEvent{Instance: "web", State: "master", PreviousState: "backup", Priority: 0})
	trkPoll(t, 3*time.Second, "the hook to start", func() bool { return ntfExists(filepath.Join(dir, "started")) })
	return n
}

func ntfInts(from, to int) []int {
	var s []int
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

// ntfCloseWithin calls n.Close(drain) and fails if it takes longer than d.
func ntfCloseWithin(t *testing.T, n *notifier, drain bool, d time.Duration) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); n.Close(drain) }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("Close(%v) did not return within %s", drain, d)
	}
}

// ntfWaitClosed waits until Close has marked n closed.
func ntfWaitClosed(t *testing.T, n *notifier) {
	t.Helper()
	trkPoll(t, time.Second, "Close to take effect", func() bool {
		n.mu.Lock()
		defer n.mu.Unlock()
		return n.closed
	})
}

func TestNotifyOrder(t *testing.T) {
	dir := t.TempDir()
	log, _ := trkNewLog()
	n := newNotifier("web", config.Notify{Command: ntfRecordingHook(t, dir), Timeout: 5 * time.Second}, log)
	for i := 1; i <= 100; i++ {
		n.Notify(NotifyEvent{Instance: "web", State: "master", PreviousState: "backup", Priority: i})
	}
	ntfCloseWithin(t, n, true, 8*time.Second)
	if diff := cmp.Diff(ntfInts(1, 100), ntfHookLog(t, dir)); diff != "" {
		t.Errorf("hook runs (-want +got):\n%s", diff)
	}
}

func TestNotifyEnvironment(t *testing.T) {
	// The hook's whole environment is PATH, LANG and the event's
	// variables: nothing of the daemon's reaches it, not even a stale
	// VIPD_* of its own.
	t.Setenv("NOTIFY_SOCKET", "/run/systemd/notify")
	t.Setenv("WATCHDOG_USEC", "10000000")
	t.Setenv("VIPD_TEST_MARKER", "daemon's")
	t.Setenv("VIPD_STATE", "stale")
	dir := t.TempDir()
	hook := trkScript(t, dir, "hook", `tr '\0' '\n' < /proc/$$/environ > "@DIR@/env.$VIPD_PRIORITY"`)
	log, _ := trkNewLog()
	n := newNotifier("web", config.Notify{Command: []string{hook}, Timeout: 5 * time.Second}, log)
	n.Notify(NotifyEvent{Instance: "web", State: "master", PreviousState: "backup", Priority: 100, VIPs: []string{"192.0.2.1", "192.0.2.2"}})
	n.Notify(NotifyEvent{Instance: "web", State: "stopped", PreviousState: "master", Priority: 7})
	ntfCloseWithin(t, n, true, 5*time.Second)

	base := map[string]string{"PATH": childPath, "LANG": "C"}
	for prio, want := range map[int]map[string]string{
		100: {
			"VIPD_INSTANCE": "web", "VIPD_STATE": "master", "VIPD_PREVIOUS_STATE": "backup",
			"VIPD_PRIORITY": "100", "VIPD_VIPS": "192.0.2.1 192.0.2.2",
		},
		7: {
			"VIPD_INSTANCE": "web", "VIPD_STATE": "stopped", "VIPD_PREVIOUS_STATE": "master",
			"VIPD_PRIORITY": "7", "VIPD_VIPS": "",
		},
	} {
		maps.Copy(want, base)
		b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("env.%d", prio)))
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			k, v, _ := strings.Cut(l, "=")
			if _, dup := got[k]; dup {
				t.Errorf("event %d: %s set twice", prio, k)
			}
			got[k] = v
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("event %d: hook environment (-want +got):\n%s", prio, diff)
		}
	}
}

func TestNotifySlowHookDoesNotBlock(t *testing.T) {
	dir := t.TempDir()
	log, _ := trkNewLog()
	n := ntfBusy(t, dir, log)
	var took []time.Duration
	for i := 1; i <= 50; i++ {
		start := time.Now()
		n.Notify(NotifyEvent{Instance: "web", State: "backup", PreviousState: "master", Priority: i})
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	// The median shows the normal cost; the slowest is allowed scheduler
	// noise but nothing like waiting for the hook, which is still running.
	if med := took[len(took)/2]; med >= time.Millisecond {
		t.Errorf("median Notify took %s while the hook runs; want < 1ms", med)
	}
	if slowest := took[len(took)-1]; slowest >= 50*time.Millisecond {
		t.Errorf("slowest Notify took %s while the hook runs", slowest)
	}
	if ntfExists(filepath.Join(dir, "release")) {
		t.Fatal("hook released early")
	}
}

func TestNotifyTimeoutKillsGroup(t *testing.T) {
	dir := t.TempDir()
	hook := trkScript(t, dir, "hook", `
sleep 30 &
echo $! > @DIR@/child
echo $$ > @DIR@/pid
wait
`)
	log, rec := trkNewLog()
	n := newNotifier("web", config.Notify{Command: []string{hook}, Timeout: 100 * time.Millisecond}, log)
	start := time.Now()
	n.Notify(NotifyEvent{Instance: "web", State: "master", PreviousState: "backup", Priority: 100})
	ntfCloseWithin(t, n, true, 3*time.Second)
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("hook ran %s; want it killed at the 100ms timeout", elapsed)
	}
	trkWaitGone(t, "hook", trkReadPID(t, filepath.Join(dir, "pid")))
	trkWaitGone(t, "hook's child", trkReadPID(t, filepath.Join(dir, "child")))
	errs := rec.find(slog.LevelError, "notify hook timed out after 100ms; killed")
	if len(errs) != 1 {
		t.Fatalf("%d timeout errors logged; want 1", len(errs))
	}
	if a := errs[0].Attrs; a["instance"] != "web" || a["state"] != "master" {
		t.Errorf("timeout error fields %v; want instance and state", a)
	}
}

func TestNotifyCloseDrain(t *testing.T) {
	for _, drain := range []bool{true, false} {
		t.Run(fmt.Sprintf("drain=%v", drain), func(t *testing.T) {
			dir := t.TempDir()
			log, rec := trkNewLog()
			n := ntfBusy(t, dir, log)
			for i := 1; i <= 5; i++ {
				n.Notify(NotifyEvent{Instance: "web", State: "backup", PreviousState: "master", Priority: i})
			}
			done := make(chan struct{})
			go func() { defer close(done); n.Close(drain) }()
			ntfWaitClosed(t, n)
			// Closed: later events are refused, even with drain.
			n.Notify(NotifyEvent{Instance: "web", State: "master", PreviousState: "backup", Priority: 6})
			select {
			case <-done:
				t.Fatal("Close returned while the hook was still running")
			case <-time.After(10 * time.Millisecond):
			}
			ntfTouch(t, filepath.Join(dir, "release"))
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("Close did not return after the hook finished")
			}
			want := []int{0}
			if drain {
				want = ntfInts(0, 5)
			} else if recs := rec.find(slog.LevelInfo, "not run for queued events"); len(recs) != 1 || recs[0].Attrs["discarded"] != "5" {
				t.Errorf("discard records %+v; want one with discarded=5", recs)
			}
			if diff := cmp.Diff(want, ntfHookLog(t, dir)); diff != "" {
				t.Errorf("hook runs (-want +got):\n%s", diff)
			}
			n.Close(true) // a second Close only waits
		})
	}
}

func TestNotifyOverflowDropsOldest(t *testing.T) {
	dir := t.TempDir()
	log, rec := trkNewLog()
	n := ntfBusy(t, dir, log)
	const extra = 500
	for i := 1; i <= maxNotifyPending+extra; i++ {
		n.Notify(NotifyEvent{Instance: "web", State: "backup", PreviousState: "master", Priority: i})
	}
	n.mu.Lock()
	var pending []int
	for _, ev := range n.queue {
		pending = append(pending, ev.Priority)
	}
	n.mu.Unlock()
	if diff := cmp.Diff(ntfInts(extra+1, maxNotifyPending+extra), pending); diff != "" {
		t.Errorf("pending events (-want +got):\n%s", diff)
	}
	// Let the hook finish and take the next event, which logs the count,
	// then close without running the rest: running 1000 hooks would only
	// show again what TestNotifyOrder shows.
	ntfTouch(t, filepath.Join(dir, "release"))
	trkPoll(t, 3*time.Second, "the next hook run", func() bool { return len(ntfHookLog(t, dir)) >= 2 })
	ntfCloseWithin(t, n, false, 5*time.Second)
	got := ntfHookLog(t, dir)
	if diff := cmp.Diff([]int{0, extra + 1}, got[:2]); diff != "" {
		t.Errorf("first hook runs (-want +got):\n%s", diff)
	}
	recs := rec.find(slog.LevelWarn, "dropped the oldest")
	if len(recs) != 1 || recs[0].Attrs["dropped"] != strconv.Itoa(extra) {
		t.Errorf("drop records %+v; want one with dropped=%d", recs, extra)
	}
}

func TestNotifyLogs(t *testing.T) {
	dir := t.TempDir()
	hook := trkScript(t, dir, "hook", `
echo "hook says $VIPD_STATE"
[ "$VIPD_STATE" = fault ] && { echo "cannot" >&2; exit 3; }
exit 0
`)
	log, rec := trkNewLog()
	n := newNotifier("web", config.Notify{Command: []string{hook}, Timeout: 5 * time.Second}, log)
	n.Notify(NotifyEvent{Instance: "web", State: "master", PreviousState: "backup", Priority: 100})
	n.Notify(NotifyEvent{Instance: "web", State: "fault", PreviousState: "master", Priority: 100})
	ntfCloseWithin(t, n, true, 5*time.Second)

	info := rec.find(slog.LevelInfo, "notify hook ran")
	if len(info) != 1 || info[0].Attrs["output"] != "hook says master" || info[0].Attrs["state"] != "master" || info[0].Attrs["instance"] != "web" {
		t.Errorf("info records %+v; want one with the hook's output", info)
	}
	warn := rec.find(slog.LevelWarn, "notify hook failed")
	if len(warn) != 1 || warn[0].Attrs["output"] != "hook says fault\ncannot" || warn[0].Attrs["err"] != "exit status 3" {
		t.Errorf("warn records %+v; want one with output and exit status", warn)
	}

	missing := newNotifier("web", config.Notify{Command: []string{"/nonexistent/vipd-hook"}, Timeout: time.Second}, log)
	missing.Notify(NotifyEvent{Instance: "web", State: "master", PreviousState: "backup", Priority: 100})
	ntfCloseWithin(t, missing, true, 3*time.Second)
	if errs := rec.find(slog.LevelError, "could not be started"); len(errs) != 1 {
		t.Errorf("%d start errors logged; want 1", len(errs))
	}
}
