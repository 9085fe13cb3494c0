package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vipd/vipd/internal/manual"
)

func runCLI(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(good, []byte("instances:\n  - name: web\n    interface: eth0\n    vrid: 51\n    vips: [198.18.0.100]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("instances:\n  - name: web\n    interface: eth0\n    vrid: 0\n    version: 3\n    auth_pass: x\n    vips: [198.18.0.100]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI("check", "--config", good); code != 0 || !strings.Contains(out, "ok, 1 instance") {
		t.Errorf("check good: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, _, errOut := runCLI("check", "--config", bad)
	if code != 1 {
		t.Errorf("check bad: exit %d, want 1", code)
	}
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], bad+":4: ") || !strings.HasPrefix(lines[1], bad+":6: ") {
		t.Errorf("check bad: stderr %q, want one file:line error for line 4 and one for line 6", errOut)
	}
	if code, _, errOut := runCLI("check", "--config", filepath.Join(dir, "missing.yaml")); code != 1 || !strings.Contains(errOut, "missing.yaml") {
		t.Errorf("check missing file: exit %d, stderr %q", code, errOut)
	}

	// A hook that others can change is refused, with its line.
	hook := filepath.Join(dir, "hook")
	if err := os.WriteFile(hook, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(hook, 0o777); err != nil {
		t.Fatal(err)
	}
	unsafe := filepath.Join(dir, "unsafe.yaml")
	if err := os.WriteFile(unsafe, []byte("instances:\n  - name: web\n    interface: eth0\n    vrid: 51\n    vips: [198.18.0.100]\n    notify:\n      command: [\""+hook+"\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runCLI("check", "--config", unsafe)
	if want := unsafe + ":7: notify hook of web: refusing " + hook + ": " + hook + " is writable by its group and others"; code != 1 || !strings.HasPrefix(errOut, want) {
		t.Errorf("check unsafe hook: exit %d, stderr %q; want exit 1 and %q", code, errOut, want)
	}
}

// An owner with preempt: false loads, preempting anyway, and check says so
// on stderr with the file and line.
func TestCheckWarnsOwnerWithoutPreempt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "owner.yaml")
	if err := os.WriteFile(path, []byte("instances:\n  - name: web\n    interface: eth0\n    vrid: 51\n    priority: 255\n    preempt: false\n    vips: [198.18.0.100]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI("check", "--config", path)
	if code != 0 || !strings.Contains(out, "ok, 1 instance") {
		t.Errorf("check: exit %d, stdout %q, stderr %q; want ok", code, out, errOut)
	}
	if want := path + ":6: warning: preempt: false has no effect with priority 255"; !strings.HasPrefix(errOut, want) {
		t.Errorf("check: stderr %q, want a line starting %q", errOut, want)
	}
}

func TestFlagsAfterArguments(t *testing.T) {
	fs := newFlagSet("x", &bytes.Buffer{})
	cfg := fs.String("config", "", "")
	pos, err := parseInterspersed(fs, []string{"web", "--config", "a.yaml", "on"})
	if err != nil || *cfg != "a.yaml" || strings.Join(pos, ",") != "web,on" {
		t.Errorf("got pos %q config %q err %v, want [web on] a.yaml", pos, *cfg, err)
	}
}

func TestUsageErrors(t *testing.T) {
	if code, _, errOut := runCLI("frobnicate"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Errorf("unknown command: exit %d, stderr %q", code, errOut)
	}
	if code, _, _ := runCLI(); code != 2 {
		t.Errorf("no command: exit %d, want 2", code)
	}
	if code, _, errOut := runCLI("check", "extra"); code != 1 || !strings.Contains(errOut, "unexpected argument") {
		t.Errorf("stray argument: exit %d, stderr %q", code, errOut)
	}
	if code, _, _ := runCLI("run", "--no-such-flag"); code != 2 {
		t.Errorf("bad flag: exit %d, want 2", code)
	}
	// Asking for a command's flags is not an error.
	for _, c := range []string{"run", "check", "status", "events", "maintenance", "doctor", "version"} {
		if code, _, errOut := runCLI(c, "-h"); code != 0 || !strings.Contains(errOut, "usage: vipd "+c) {
			t.Errorf("vipd %s -h: exit %d, stderr %q; want 0 and the usage", c, code, errOut)
		}
	}
}

// Every command's flags are the ones internal/manual documents (the source
// of --help, vipd(8), the completions and the README's table), with the
// same defaults (flagSetUsage prints any difference); and every command the manual lists is one vipd runs.
func TestFlagsMatchManual(t *testing.T) {
	for _, c := range manual.Commands {
		code, out, errOut := runCLI(c.Name, "-h")
		if c.Name == "help" {
			if code != 0 || out != manual.Usage() {
				t.Errorf("vipd help: exit %d, stdout %q", code, out)
			}
			continue
		}
		if code != 0 || errOut != c.CommandUsage() {
			t.Errorf("vipd %s -h: exit %d, stderr:\n%s\nwant:\n%s", c.Name, code, errOut, c.CommandUsage())
		}
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI("version")
	if code != 0 || !strings.HasPrefix(out, "vipd ") || !strings.Contains(out, "go1.") {
		t.Errorf("version: exit %d, %q", code, out)
	}
}
