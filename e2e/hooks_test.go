package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/e2e/pair"
)

// Notify scripts written for keepalived, in a keepalived.conf that
// `vipd convert` turns into vipd's configuration, run under vipd with the arguments
// keepalived passes them, as the configured script_user, in transition
// order: a keepalived-style "notify" script (it logs "$@" and `id -un`)
// as notify.keepalived, and small notify_master/notify_backup scripts as
// notify.master and notify.backup, across backup → master → (the peer
// preempts) → backup → stop.
func TestHooksKeepalivedScriptsAsScriptUser(t *testing.T) {
	p := newPair(t, "hk")

	// The scripts live where vipd's script-security check accepts them
	// (root's, writable by root only); their log in a directory that
	// nobody, whom they run as, may write.
	dir, err := os.MkdirTemp("", "vipd-hooks")
	must(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	must(t, os.Chmod(dir, 0o755))
	logDir := filepath.Join(dir, "log")
	must(t, os.Mkdir(logDir, 0o755))
	must(t, os.Chown(logDir, nobody, nobody))
	logFile := filepath.Join(logDir, "notify.log")
	script := func(name, body string) string {
		path := filepath.Join(dir, name)
		must(t, os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755))
		return path
	}
	// As keepalived users write them: `notify /etc/keepalived/notify.sh`
	// gets TYPE NAME STATE PRIORITY.
	notify := script("notify.sh", `echo "$@ $(id -un)" >> `+logFile)
	master := script("notify_master.sh", `echo "notify_master $(id -un)" >> `+logFile)
	backup := script("notify_backup.sh", `echo "notify_backup $(id -un)" >> `+logFile)

	// A runs what `vipd convert` makes of a keepalived.conf with these
	// hooks and script_user.
	hooks := fmt.Sprintf("    notify_master %q\n    notify_backup %s\n    notify %s\n", master, backup, notify)
	must(t, p.ConfigureConverted(p.A, pair.KeepalivedConfig{Priority: 100, AdvertInterval: interval,
		Extra: hooks, Global: "    script_user nobody\n    enable_script_security\n"}))
	cfg, err := os.ReadFile(p.A.Config)
	must(t, err)
	for _, want := range []string{"script_user: nobody", "keepalived: [" + notify + "]"} {
		if !strings.Contains(string(cfg), want) {
			t.Fatalf("the converted configuration lacks %q:\n%s", want, cfg)
		}
	}
	must(t, p.Configure(p.B, pair.NodeConfig{Priority: 200, AdvertInterval: interval}))

	readLog := func() []string {
		b, _ := os.ReadFile(logFile)
		return strings.Split(strings.TrimSpace(string(b)), "\n")
	}
	waitLines := func(n int, what string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for len(readLog()) < n || readLog()[0] == "" {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the hooks logged %q; want %d lines", what, readLog(), n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// A alone: backup at start, master once the Master_Down_Timer runs out.
	must(t, p.Start(p.A))
	must(t, p.WaitHolder(p.A, pair.VIP, 3*time.Second))
	waitLines(4, "A became master")
	// B, at a higher priority, preempts: A goes back to backup.
	must(t, p.Start(p.B))
	must(t, p.WaitHolder(p.B, pair.VIP, 3*time.Second))
	waitLines(6, "B preempted")
	// A stops: keepalived's notify gets STOP (there is no notify_stop here).
	must(t, p.Stop(p.A))

	want := []string{
		"notify_backup nobody",
		"INSTANCE web BACKUP 100 nobody",
		"notify_master nobody",
		"INSTANCE web MASTER 100 nobody",
		"notify_backup nobody",
		"INSTANCE web BACKUP 100 nobody",
		"INSTANCE web STOP 100 nobody",
	}
	got := readLog()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("the hooks logged, in order:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
