package vrrp

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vipd/vipd/config"
)

// chdEnvScript writes a script that saves the environment it was started
// with (not the shell's own additions) to dir/env.
func chdEnvScript(t *testing.T, dir string) string {
	return trkScript(t, dir, "env", `tr '\0' '\n' < /proc/$$/environ > "@DIR@/env"`)
}

// chdReadEnv reads what chdEnvScript saved, sorted.
func chdReadEnv(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "env"))
	if err != nil {
		t.Fatal(err)
	}
	env := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	slices.Sort(env)
	return env
}

// A tracker script gets PATH and LANG and nothing of the daemon's
// environment.
func TestTrackScriptEnvironment(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "/run/systemd/notify")
	t.Setenv("WATCHDOG_USEC", "10000000")
	t.Setenv("VIPD_TEST_MARKER", "daemon's")
	dir := t.TempDir()
	script := chdEnvScript(t, dir)
	log, _ := trkNewLog()
	out := make(chan TrackResult, 1)
	spec := config.TrackScript{Name: "env", Command: []string{script}, Interval: time.Hour, Timeout: 5 * time.Second, Rise: 1, Fall: 1}
	trkStart(t, func(ctx context.Context) { runScriptTracker(ctx, "web", spec, out, log) })
	if r := trkRecv(t, out, 5*time.Second); r.Failing {
		t.Fatalf("result %+v; want healthy", r)
	}
	want := []string{"LANG=C", "PATH=" + childPath}
	if diff := cmp.Diff(want, chdReadEnv(t, dir)); diff != "" {
		t.Errorf("script environment (-want +got):\n%s", diff)
	}
}

// capFields returns the capability and no_new_privs lines of a
// /proc/…/status file.
func capFields(status string) map[string]string {
	f := map[string]string{}
	for _, l := range strings.Split(status, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && (strings.HasPrefix(k, "Cap") || k == "NoNewPrivs") {
			f[k] = strings.TrimSpace(v)
		}
	}
	return f
}

// A child holds no capability and cannot gain one, even when vipd runs as
// root with every capability; vipd's own threads keep theirs.
func TestChildHasNoCapabilities(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: checks that a root vipd's capabilities do not reach a child")
	}
	self, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	parent := capFields(string(self))
	if parent["CapEff"] == "0000000000000000" {
		t.Skip("the test process itself has no capabilities")
	}
	dir := t.TempDir()
	script := trkScript(t, dir, "caps", `cat /proc/$$/status > "@DIR@/status"`)
	for range 5 {
		if r := runCommand(context.Background(), []string{script}, nil, 5*time.Second, nil); r.err != nil {
			t.Fatalf("run: %v (output %q)", r.err, r.output)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "status"))
	if err != nil {
		t.Fatal(err)
	}
	got := capFields(string(b))
	const none = "0000000000000000"
	want := map[string]string{"CapInh": none, "CapPrm": none, "CapEff": none, "CapAmb": none, "CapBnd": parent["CapBnd"], "NoNewPrivs": "1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("child's capabilities (-want +got):\n%s", diff)
	}

	// The threads that started the children are gone, not back in the
	// runtime's pool: every thread left has the process's capabilities.
	trkPoll(t, 3*time.Second, "every thread to have vipd's capabilities", func() bool {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range tasks {
			b, err := os.ReadFile(filepath.Join("/proc/self/task", task.Name(), "status"))
			if err != nil {
				continue // exited meanwhile
			}
			f := capFields(string(b))
			if f["CapEff"] != parent["CapEff"] || f["CapPrm"] != parent["CapPrm"] || f["NoNewPrivs"] != parent["NoNewPrivs"] {
				return false
			}
		}
		return true
	})
}
