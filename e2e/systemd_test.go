package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/e2e/pair"
)

func repoFile(t *testing.T, rel string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", rel))
	must(t, err)
	return p
}

// The shipped unit passes systemd-analyze verify (with the binary where the
// unit expects it rewritten to the built one).
func TestSystemdUnitVerifies(t *testing.T) {
	needLab(t)
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("VIPD_LAB") == "required" {
			t.Fatal("systemd-analyze not found (package systemd)")
		}
		t.Skip("systemd-analyze not installed")
	}
	unit, err := os.ReadFile(repoFile(t, "deploy/vipd.service"))
	must(t, err)
	dir := t.TempDir()
	bin := filepath.Join(dir, "vipd")
	copyFile(t, vipdBin(t), bin, 0o755)
	path := filepath.Join(dir, "vipd.service")
	must(t, os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), "/usr/local/sbin/vipd", bin)), 0o644))
	out, err := exec.Command(sa, "verify", path).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	for _, want := range []string{"Type=notify", "WatchdogSec=", "ExecReload=", "Restart=on-failure",
		"AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW", "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW",
		"NoNewPrivileges=yes", "ProtectSystem=strict", "RuntimeDirectory=vipd"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("unit lacks %q", want)
		}
	}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	must(t, err)
	must(t, os.WriteFile(to, b, mode))
}

// nobody is the unprivileged user the unit-like tests run vipd as.
const nobody = 65534

// unprivilegedDir makes what a vipd run as nobody under setpriv needs: a
// directory that everyone can enter (removed when t ends), in it a runtime
// directory "run" that nobody owns, and a copy of the vipd binary there,
// since the test's own build may sit where nobody cannot reach it.
func unprivilegedDir(t *testing.T, pattern string) (dir, run, bin string) {
	t.Helper()
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Fatal("setpriv not found (package util-linux)")
	}
	dir, err := os.MkdirTemp("", pattern)
	must(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	must(t, os.Chmod(dir, 0o755))
	run = filepath.Join(dir, "run")
	must(t, os.Mkdir(run, 0o750))
	must(t, os.Chown(run, nobody, nobody))
	bin = filepath.Join(dir, "vipd")
	copyFile(t, vipdBin(t), bin, 0o755)
	return dir, run, bin
}

// vipd started as the unit starts it — an unprivileged user holding only
// CAP_NET_ADMIN and CAP_NET_RAW, no new privileges — elects itself, serves
// status, and resigns cleanly.
func TestRunsUnprivilegedWithTwoCapabilities(t *testing.T) {
	p := newPair(t, "up")
	dir, run, bin := unprivilegedDir(t, "vipd-unpriv")
	cfg := filepath.Join(dir, "vipd.yaml")
	sock := filepath.Join(run, "vipd.sock")
	must(t, os.WriteFile(cfg, []byte("control_socket: "+sock+"\nstate_dir: "+run+"\nmetrics_listen: \"\"\ninstances:\n"+
		"  - name: web\n    interface: eth0\n    vrid: 51\n    advert_interval: 100ms\n    vips: [198.18.0.100]\n"), 0o644))

	proc, err := p.A.Host.Start(p.A.Log, "setpriv", "--reuid="+strconv.Itoa(nobody), "--regid="+strconv.Itoa(nobody),
		"--clear-groups", "--inh-caps=-all,+net_admin,+net_raw", "--ambient-caps=-all,+net_admin,+net_raw",
		"--bounding-set=-all,+net_admin,+net_raw", "--no-new-privs", bin, "run", "--config", cfg)
	must(t, err)
	must(t, p.WaitHolder(p.A, pair.VIP, 3*time.Second))

	st, err := os.ReadFile("/proc/" + strconv.Itoa(proc.PID) + "/status")
	must(t, err)
	fields := map[string]string{}
	for _, l := range strings.Split(string(st), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			fields[k] = strings.TrimSpace(v)
		}
	}
	// CAP_NET_ADMIN is bit 12, CAP_NET_RAW bit 13.
	if fields["CapEff"] != "0000000000003000" || fields["CapBnd"] != "0000000000003000" || fields["NoNewPrivs"] != "1" {
		t.Errorf("running with CapEff %s CapBnd %s NoNewPrivs %s, want only net_admin+net_raw and no new privileges",
			fields["CapEff"], fields["CapBnd"], fields["NoNewPrivs"])
	}
	if !strings.HasPrefix(fields["Uid"], strconv.Itoa(nobody)) {
		t.Errorf("running as uid %s, want %d", fields["Uid"], nobody)
	}
	out, err := exec.Command(bin, "status", "--socket", sock).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "master") {
		t.Errorf("status: %v\n%s", err, out)
	}
	assertClientAt(t, p, p.A)
	must(t, proc.Signal(syscall.SIGTERM))
	code, err := proc.Wait(5 * time.Second)
	must(t, err)
	if code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0", code)
	}
	must(t, p.WaitHolder(nil, pair.VIP, time.Second))
}
