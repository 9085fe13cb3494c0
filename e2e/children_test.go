package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/e2e/lab"
	"github.com/vipd/vipd/e2e/pair"
)

// vipd run as the shipped unit runs it (a non-root user with ambient
// CAP_NET_ADMIN and CAP_NET_RAW, no new privileges, systemd's variables in
// its environment): its notify hook and track script run with no
// capability and none of that environment; a hook that others can change
// is refused at start-up and at reload.
func TestReliabilityChildPrivileges(t *testing.T) {
	row := relRecord(t, "6d", "Access: hooks and track scripts under the unit's privileges",
		"vipd run as uid 65534 with ambient, inheritable and bounding capabilities net_admin+net_raw and no_new_privs (setpriv, as deploy/vipd.service sets them), with NOTIFY_SOCKET, WATCHDOG_USEC and INVOCATION_ID set; a notify hook and a track script that save their /proc/PID/status and initial environment. First with the hook group-writable (0775), then 0755; then made group-writable again and SIGHUP.",
		"the 0775 start is refused, exit 1, with the config's file:line for the hook; at 0755 the hook and the script run with CapInh, CapPrm, CapEff and CapAmb all 0 and NoNewPrivs 1, and their environment is exactly PATH and LANG (plus VIPD_* for the hook); the reload with the 0775 hook is refused with its file:line and vipd keeps the VIP; no vipd died")
	p := newPair(t, "cp")
	dir, run, bin := unprivilegedDir(t, "vipd-children")

	// What systemd puts in a service's environment; the datagram socket
	// takes the watchdog pings.
	notifySock := filepath.Join(dir, "notify.sock")
	nc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifySock, Net: "unixgram"})
	must(t, err)
	t.Cleanup(func() { nc.Close() })
	must(t, os.Chmod(notifySock, 0o666))

	save := func(name string) string {
		p := filepath.Join(dir, name)
		must(t, os.WriteFile(p, []byte(fmt.Sprintf("#!/bin/sh\ncat /proc/$$/status > %[1]s/%[2]s.status\ntr '\\0' '\\n' < /proc/$$/environ > %[1]s/%[2]s.env\n", run, name)), 0o755))
		return p
	}
	hook, check := save("hook"), save("check")
	cfg := filepath.Join(dir, "vipd.yaml")
	sock := filepath.Join(run, "vipd.sock")
	body := "control_socket: " + sock + "\nmetrics_listen: \"\"\nstate_dir: " + run + "\ninstances:\n" +
		"  - name: web\n    interface: eth0\n    vrid: 51\n    advert_interval: 100ms\n    vips: [198.18.0.100]\n" +
		"    track:\n      scripts:\n        - name: check\n          command: [\"" + check + "\"]\n          interval: 100ms\n" +
		"    notify:\n      command: [\"" + hook + "\"]\n"
	must(t, os.WriteFile(cfg, []byte(body), 0o644))
	hookLine := 1 + slices.Index(strings.Split(body, "\n"), "      command: [\""+hook+"\"]")

	start := func() (*lab.Proc, error) {
		return p.A.Host.Start(p.A.Log, "env", "NOTIFY_SOCKET="+notifySock, "WATCHDOG_USEC=10000000", "INVOCATION_ID=0123456789abcdef",
			"setpriv", "--reuid="+strconv.Itoa(nobody), "--regid="+strconv.Itoa(nobody),
			"--clear-groups", "--inh-caps=-all,+net_admin,+net_raw", "--ambient-caps=-all,+net_admin,+net_raw",
			"--bounding-set=-all,+net_admin,+net_raw", "--no-new-privs", bin, "run", "--config", cfg)
	}
	logHas := func(s string) bool {
		b, _ := os.ReadFile(p.A.Log)
		return strings.Contains(string(b), s)
	}
	refusal := fmt.Sprintf("%s:%d: notify hook of web: refusing %s: %s is writable by its group", cfg, hookLine, hook, hook)

	// Group-writable: refused before anything is touched.
	must(t, os.Chmod(hook, 0o775))
	proc, err := start()
	must(t, err)
	code, err := proc.Wait(5 * time.Second)
	must(t, err)
	if code != 1 || !logHas(refusal) {
		b, _ := os.ReadFile(p.A.Log)
		t.Fatalf("start with a group-writable hook: exit %d; want 1 and %q in the log:\n%s", code, refusal, b)
	}
	row.Figure = fmt.Sprintf("0775 start: exit %d", code)

	must(t, os.Chmod(hook, 0o755))
	proc, err = start()
	must(t, err)
	t.Cleanup(func() { proc.Kill() })
	must(t, p.WaitHolder(p.A, pair.VIP, 3*time.Second))
	for _, name := range []string{"hook", "check"} {
		var status []byte
		deadline := time.Now().Add(3 * time.Second)
		for {
			status, _ = os.ReadFile(filepath.Join(run, name+".status"))
			env, _ := os.ReadFile(filepath.Join(run, name+".env"))
			if strings.Contains(string(status), "NoNewPrivs") && strings.HasSuffix(string(env), "\n") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the %s did not run", name)
			}
			time.Sleep(20 * time.Millisecond)
		}
		fields := statusFields(string(status))
		const none = "0000000000000000"
		for _, k := range []string{"CapInh", "CapPrm", "CapEff", "CapAmb"} {
			if fields[k] != none {
				t.Errorf("%s runs with %s %s, want %s", name, k, fields[k], none)
			}
		}
		if fields["NoNewPrivs"] != "1" || !strings.HasPrefix(fields["Uid"], strconv.Itoa(nobody)) {
			t.Errorf("%s runs with NoNewPrivs %s, Uid %s; want 1 and %d", name, fields["NoNewPrivs"], fields["Uid"], nobody)
		}
		env, _ := os.ReadFile(filepath.Join(run, name+".env"))
		var names []string
		for _, l := range strings.Split(strings.TrimSpace(string(env)), "\n") {
			k, _, _ := strings.Cut(l, "=")
			names = append(names, k)
		}
		slices.Sort(names)
		want := []string{"LANG", "PATH"}
		if name == "hook" {
			want = []string{"LANG", "PATH", "VIPD_INSTANCE", "VIPD_PREVIOUS_STATE", "VIPD_PRIORITY", "VIPD_STATE", "VIPD_VIPS"}
		}
		if !slices.Equal(names, want) {
			t.Errorf("%s's environment has %v; want exactly %v", name, names, want)
		}
		row.Figure += fmt.Sprintf("; %s: CapEff %s CapPrm %s CapAmb %s NoNewPrivs %s, env %v", name, fields["CapEff"], fields["CapPrm"], fields["CapAmb"], fields["NoNewPrivs"], names)
	}
	// vipd itself kept its two capabilities.
	st, err := os.ReadFile("/proc/" + strconv.Itoa(proc.PID) + "/status")
	must(t, err)
	if f := statusFields(string(st)); f["CapEff"] != "0000000000003000" {
		t.Errorf("vipd runs with CapEff %s after starting its children, want 0000000000003000", f["CapEff"])
	}

	// A reload with the hook group-writable again is refused.
	transitions := func() uint64 {
		out, err := exec.Command(bin, "status", "--json", "--socket", sock).Output()
		must(t, err)
		var s relStatus
		must(t, json.Unmarshal(out, &s))
		return s.transitions()
	}
	before := transitions()
	must(t, os.Chmod(hook, 0o775))
	must(t, proc.Signal(syscall.SIGHUP))
	deadline := time.Now().Add(3 * time.Second)
	for !logHas("reload refused") {
		if time.Now().After(deadline) {
			t.Fatal("no reload refusal logged")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !logHas(refusal) {
		t.Errorf("the reload refusal does not name %q", refusal)
	}
	row.Figure += "; 0775 reload refused"
	if n := transitions() - before; n != 0 {
		t.Errorf("%d state transitions across the refused reload, want none", n)
	}
	must(t, p.WaitHolder(p.A, pair.VIP, time.Second))
	must(t, proc.Signal(syscall.SIGTERM))
	if code, err := proc.Wait(5 * time.Second); err != nil || code != 0 {
		t.Errorf("exit %d, %v after SIGTERM, want 0", code, err)
	}
}

// statusFields parses a /proc/PID/status file.
func statusFields(status string) map[string]string {
	fields := map[string]string{}
	for _, l := range strings.Split(status, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			fields[k] = strings.TrimSpace(v)
		}
	}
	return fields
}
