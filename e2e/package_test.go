package e2e

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// debRoot is a throwaway root for dpkg: an overlay whose lower layer is
// this host's root file system and whose upper layer is a directory on
// /dev/shm (a tmpfs, so the two layers never overlap). Every command runs
// in a mount namespace of its own that mounts the overlay, /dev and /proc
// and chroots into it: nothing is ever mounted in the host's namespace,
// and the host's files are never written. The upper layer holds every
// change dpkg and the maintainer scripts made.
type debRoot struct {
	t          *testing.T
	dir, upper string
}

func newDebRoot(t *testing.T) *debRoot {
	t.Helper()
	dir, err := os.MkdirTemp("/dev/shm", "vipd-deb-")
	must(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	r := &debRoot{t: t, dir: dir, upper: filepath.Join(dir, "upper")}
	for _, d := range []string{"upper", "work", "merged"} {
		must(t, os.Mkdir(filepath.Join(dir, d), 0o755))
	}
	return r
}

const debRootScript = `set -e
m=$1/merged
mount -t overlay overlay -o lowerdir=/,upperdir=$1/upper,workdir=$1/work "$m"
mount --rbind /dev "$m/dev"
mount -t proc proc "$m/proc"
shift
exec chroot "$m" "$@"`

// run runs argv in the root and returns its exit code, stdout and stderr.
func (r *debRoot) run(argv ...string) (int, string, string) {
	r.t.Helper()
	args := append([]string{"--mount", "--propagation", "private", "sh", "-c", debRootScript, "sh", r.dir}, argv...)
	cmd := exec.Command("unshare", args...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C.UTF-8", "DEBIAN_FRONTEND=noninteractive", "HOME=/root", "MANWIDTH=80"}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, o.String(), e.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), o.String(), e.String()
	}
	r.t.Fatalf("%v: %v", argv, err)
	return -1, "", ""
}

// ok runs argv in the root and fails the test unless it exits 0.
func (r *debRoot) ok(argv ...string) string {
	r.t.Helper()
	code, out, errOut := r.run(argv...)
	if code != 0 {
		r.t.Fatalf("%s: exit %d\nstdout: %s\nstderr: %s", strings.Join(argv, " "), code, out, errOut)
	}
	return out
}

// sh runs a shell command line in the root.
func (r *debRoot) sh(line string) string {
	r.t.Helper()
	return r.ok("sh", "-c", line)
}

// write puts a file straight into the upper layer (read the next time
// the overlay is mounted).
func (r *debRoot) write(path, text string, mode os.FileMode) {
	r.t.Helper()
	p := filepath.Join(r.upper, path)
	must(r.t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(r.t, os.WriteFile(p, []byte(text), mode))
}

func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("VIPD_LAB") == "required" {
				t.Fatalf("%s not found: run 'make deps' as root (DEB_PKGS)", tool)
			}
			t.Skipf("%s not installed", tool)
		}
	}
}

// buildDeb runs `make deb`'s script for a version and returns the file.
func buildDeb(t *testing.T, out, version string) string {
	t.Helper()
	cmd := exec.Command("deploy/debian/build.sh", out, version)
	cmd.Dir = repoFile(t, ".")
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("deploy/debian/build.sh %s: %v\n%s", version, err, b)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

func cmdOut(t *testing.T, name string, args ...string) string {
	t.Helper()
	b, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, b)
	}
	return string(b)
}

// The .deb: its metadata and contents, lintian, then installed into a
// throwaway root with its maintainer scripts run for real: the files, their
// modes, the conffile, the shipped configuration, the unit, the man pages
// and the completion; then an upgrade to a newer build that keeps an edited
// configuration and restarts the unit, a removal that stops it, and a purge
// after which only the vipd user is left.
func TestDebianPackage(t *testing.T) {
	needLab(t)
	needTools(t, "dpkg-deb", "dpkg", "unshare", "chroot", "lintian", "man", "systemd-analyze", "zsh", "go")
	start := time.Now()
	out := t.TempDir()
	v1, v2 := "0.0~test1-1", "0.0~test2-1"
	deb1 := buildDeb(t, out, v1)
	deb2 := buildDeb(t, out, v2)
	t.Logf("built %s and %s in %v", filepath.Base(deb1), filepath.Base(deb2), time.Since(start).Round(time.Second))

	// Metadata and contents.
	info := cmdOut(t, "dpkg-deb", "--info", deb1)
	for _, want := range []string{"Package: vipd", "Version: " + v1, "Depends: adduser", " conffiles", " postinst", " prerm", " postrm"} {
		if !strings.Contains(info, want) {
			t.Errorf("dpkg-deb --info lacks %q:\n%s", want, info)
		}
	}
	if c := cmdOut(t, "dpkg-deb", "--info", deb1, "conffiles"); c != "/etc/vipd/vipd.yaml\n" {
		t.Errorf("conffiles: %q, want /etc/vipd/vipd.yaml", c)
	}
	contents := cmdOut(t, "dpkg-deb", "--contents", deb1)
	unitPath := ""
	for _, want := range []struct{ mode, path string }{
		{"-rwxr-xr-x", "./usr/sbin/vipd"},
		{"-rw-r-----", "./etc/vipd/vipd.yaml"},
		{"-rw-r--r--", "/systemd/system/vipd.service"},
		{"-rw-r--r--", "./usr/lib/sysusers.d/vipd.conf"},
		{"-rw-r--r--", "./usr/share/vipd/prometheus/alerts.yml"},
		{"-rw-r--r--", "./usr/share/vipd/prometheus/scrape.yml"},
		{"-rw-r--r--", "./usr/share/man/man8/vipd.8.gz"},
		{"-rw-r--r--", "./usr/share/man/man5/vipd.yaml.5.gz"},
		{"-rw-r--r--", "./usr/share/bash-completion/completions/vipd"},
		{"-rw-r--r--", "./usr/share/zsh/vendor-completions/_vipd"},
		{"-rw-r--r--", "./usr/share/doc/vipd/copyright"},
		{"-rw-r--r--", "./usr/share/doc/vipd/changelog.Debian.gz"},
	} {
		m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(want.mode) + ` root/root +\d+ \S+ \S+ (\.\S*` + regexp.QuoteMeta(strings.TrimPrefix(want.path, ".")) + `)$`).FindStringSubmatch(contents)
		if m == nil {
			t.Errorf("dpkg-deb --contents: no %s %s:\n%s", want.mode, want.path, contents)
		} else if strings.HasSuffix(want.path, "vipd.service") {
			unitPath = strings.TrimPrefix(m[1], ".")
		}
	}

	// lintian: no errors.
	lint, err := exec.Command("lintian", "--pedantic", deb1).CombinedOutput()
	t.Logf("lintian --pedantic:\n%s", lint)
	if err != nil || regexp.MustCompile(`(?m)^E: `).Match(lint) {
		t.Errorf("lintian: %v, errors in:\n%s", err, lint)
	}
	if t.Failed() {
		return
	}

	// A throwaway root where systemctl only records what it is asked, as
	// if systemd ran: the maintainer scripts' calls can be checked.
	r := newDebRoot(t)
	// What works offline (with --root, as deb-systemd-helper's preset on
	// first install) goes to the real systemctl.
	r.write("vipd-test/systemctl.log", "", 0o644)
	sc, err := exec.LookPath("systemctl")
	must(t, err)
	copyFile(t, sc, filepath.Join(r.upper, "vipd-test/systemctl.real"), 0o755)
	r.write("usr/bin/systemctl", `#!/bin/sh
echo "$*" >>/vipd-test/systemctl.log
case "$*" in
*--root=*) exec /vipd-test/systemctl.real "$@" ;;
*is-enabled*) echo enabled ;;
esac
exit 0
`, 0o755)
	must(t, os.MkdirAll(filepath.Join(r.upper, "run/systemd/system"), 0o755))
	// A container's policy-rc.d (exit 101) would keep deb-systemd-invoke
	// from acting; this root allows every action.
	r.write("usr/sbin/policy-rc.d", "#!/bin/sh\nexit 0\n", 0o755)
	copyFile(t, deb1, filepath.Join(r.upper, "vipd-test", filepath.Base(deb1)), 0o644)
	copyFile(t, deb2, filepath.Join(r.upper, "vipd-test", filepath.Base(deb2)), 0o644)
	if r.sh("getent passwd vipd || true") != "" {
		t.Fatal("this host already has a user vipd: the package's user creation cannot be checked")
	}
	systemctlLog := func() string { return r.sh("cat /vipd-test/systemctl.log; : >/vipd-test/systemctl.log") }

	// Install.
	r.ok("dpkg", "-i", "/vipd-test/"+filepath.Base(deb1))
	if log := systemctlLog(); regexp.MustCompile(`(?m)\b(start|restart|try-restart|reload-or-restart)\b`).MatchString(log) {
		t.Errorf("first install started the unit; systemctl calls:\n%s", log)
	}
	if pw := r.sh("getent passwd vipd"); !strings.Contains(pw, ":/var/lib/vipd:") {
		t.Errorf("user vipd: %q", pw)
	}
	for path, want := range map[string]string{
		"/usr/sbin/vipd":                          "755 root:root",
		"/etc/vipd/vipd.yaml":                     "640 root:vipd",
		unitPath:                                  "644 root:root",
		"/usr/lib/sysusers.d/vipd.conf":           "644 root:root",
		"/usr/share/vipd/prometheus":              "755 root:root",
		"/usr/share/doc/vipd/copyright":           "644 root:root",
		"/usr/share/man/man8/vipd.8.gz":           "644 root:root",
		"/usr/share/zsh/vendor-completions/_vipd": "644 root:root",
	} {
		if got := strings.TrimSpace(r.sh("stat -c '%a %U:%G' " + path)); got != want {
			t.Errorf("%s: %s, want %s", path, got, want)
		}
	}
	if c := r.ok("dpkg-query", "-W", "-f=${Conffiles}", "vipd"); !strings.Contains(c, "/etc/vipd/vipd.yaml ") {
		t.Errorf("dpkg-query Conffiles: %q", c)
	}
	if l := r.sh("readlink /etc/systemd/system/multi-user.target.wants/vipd.service"); strings.TrimSpace(l) != unitPath {
		t.Errorf("the unit is not enabled: wants link -> %q", l)
	}
	if out := r.ok("vipd", "check", "--config", "/etc/vipd/vipd.yaml"); !strings.Contains(out, "ok, 1 instance") {
		t.Errorf("vipd check of the shipped configuration: %q", out)
	}
	if code, out, errOut := r.run("systemd-analyze", "verify", unitPath); code != 0 || strings.TrimSpace(errOut) != "" {
		t.Errorf("systemd-analyze verify %s: exit %d\n%s%s", unitPath, code, out, errOut)
	}
	for page, want := range map[string]string{"/usr/share/man/man8/vipd.8.gz": "vipd maintenance INSTANCE on|off", "/usr/share/man/man5/vipd.yaml.5.gz": "advert_interval"} {
		code, out, errOut := r.run("man", "--warnings", "-l", page)
		if code != 0 || errOut != "" || !strings.Contains(out, want) {
			t.Errorf("man -l %s: exit %d, stderr %q, %d bytes, want %q in it", page, code, errOut, len(out), want)
		}
	}
	complete := func(line string) string {
		words := strings.Fields(line)
		if strings.HasSuffix(line, " ") {
			words = append(words, "")
		}
		script := `source /usr/share/bash-completion/completions/vipd; COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); _vipd; printf '%s\n' "${COMPREPLY[@]}"`
		return strings.TrimSpace(r.ok(append([]string{"bash", "-c", script, "bash"}, words...)...))
	}
	for line, want := range map[string]string{
		"vipd st":                        "status",
		"vipd status --j":                "--json",
		"vipd maintenance web o":         "on\noff",
		"vipd check --config /etc/vipd/": "/etc/vipd/vipd.yaml",
	} {
		if got := complete(line); got != want {
			t.Errorf("bash completion of %q: %q, want %q", line, got, want)
		}
	}
	r.ok("zsh", "-n", "/usr/share/zsh/vendor-completions/_vipd")

	// Started unedited (here in a network namespace of its own), vipd
	// refuses, naming the interface to edit, and adds nothing.
	code, _, errOut := r.run("unshare", "--net", "vipd", "run", "--config", "/etc/vipd/vipd.yaml")
	if code != 1 || !strings.Contains(errOut, "interface EDIT-ME") {
		t.Errorf("vipd run with the shipped configuration: exit %d, stderr %q; want 1 and the interface EDIT-ME", code, errOut)
	}
	r.sh("test -f /var/lib/vipd/vipd.lock") // the state directory purge must remove

	// Upgrade, with the configuration edited meanwhile.
	r.sh("echo '# edited by the administrator' >>/etc/vipd/vipd.yaml")
	r.ok("dpkg", "-i", "/vipd-test/"+filepath.Base(deb2))
	if log := systemctlLog(); !strings.Contains(log, "try-restart vipd.service") || strings.Contains(log, "stop vipd.service") {
		t.Errorf("upgrade: want a try-restart and no stop; systemctl calls:\n%s", log)
	}
	if v := r.ok("dpkg-query", "-W", "-f=${Version}", "vipd"); v != v2 {
		t.Errorf("after the upgrade: version %q, want %q", v, v2)
	}
	if out := r.ok("vipd", "version"); !strings.HasPrefix(out, "vipd 0.0~test2 ") {
		t.Errorf("vipd version after the upgrade: %q", out)
	}
	if c := r.sh("tail -1 /etc/vipd/vipd.yaml; stat -c '%a %U:%G' /etc/vipd/vipd.yaml"); c != "# edited by the administrator\n640 root:vipd\n" {
		t.Errorf("the edited configuration after the upgrade: %q", c)
	}
	r.sh("test -L /etc/systemd/system/multi-user.target.wants/vipd.service")

	// Remove, then purge.
	r.ok("dpkg", "-r", "vipd")
	if log := systemctlLog(); !strings.Contains(log, "stop vipd.service") {
		t.Errorf("remove: no stop; systemctl calls:\n%s", log)
	}
	r.sh("test ! -e /usr/sbin/vipd && test -f /etc/vipd/vipd.yaml")
	r.ok("dpkg", "--purge", "vipd")
	if st := r.sh("dpkg-query -W -f='${db:Status-Status}' vipd 2>&1 || true"); strings.Contains(st, "installed") && !strings.Contains(st, "not-installed") {
		t.Errorf("after purge: %q", st)
	}
	if pw := r.sh("getent passwd vipd || true"); pw == "" {
		t.Errorf("purge removed the user vipd; Debian keeps system users")
	}

	// What is left in the upper layer: only dpkg's own records, logs and
	// caches, the user in the account files, and this test's files.
	keep := regexp.MustCompile(`^(var/lib/dpkg/|var/log/|var/cache/|var/lib/man-db/|etc/(passwd|group|shadow|gshadow)-?$|etc/\.pwd\.lock$|vipd-test(/|$)|usr/bin/systemctl$|usr/sbin/policy-rc\.d$|run/systemd/|proc$|dev$|tmp/)`)
	var left []string
	must(t, filepath.WalkDir(r.upper, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(r.upper, p)
		if rel == "." || keep.MatchString(rel) {
			return nil
		}
		if d.IsDir() {
			if _, err := os.Lstat("/" + rel); err == nil {
				return nil // a directory of the host, copied up
			}
		}
		left = append(left, rel)
		return nil
	}))
	if len(left) > 0 {
		t.Errorf("left after purge: %s", strings.Join(left, ", "))
	}
	t.Logf("package test took %v", time.Since(start).Round(time.Second))
}
