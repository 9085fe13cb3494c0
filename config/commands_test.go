package config

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// cmdTree builds files under a fresh directory from a list of entries
// "path mode" (a trailing / makes a directory, "->target" a symbolic
// link), with exactly those modes, and returns the directory.
func cmdTree(t *testing.T, entries ...string) string {
	t.Helper()
	root := t.TempDir()
	for _, e := range entries {
		name, spec, _ := strings.Cut(e, " ")
		p := filepath.Join(root, strings.TrimSuffix(name, "/"))
		var err error
		switch {
		case strings.HasPrefix(spec, "->"):
			err = os.Symlink(strings.ReplaceAll(spec[2:], "@ROOT@", root), p)
		case strings.HasSuffix(name, "/"):
			err = os.Mkdir(p, 0o700)
		case spec == "fifo":
			err = syscall.Mkfifo(p, 0o600)
		default:
			err = os.WriteFile(p, []byte("#!/bin/sh\n"), 0o700)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	// Modes last, so that a read-only directory does not stop its entries.
	for _, e := range entries {
		name, spec, _ := strings.Cut(e, " ")
		if spec == "" || spec == "fifo" || strings.HasPrefix(spec, "->") {
			continue
		}
		var mode uint32
		for _, c := range spec {
			mode = mode<<3 | uint32(c-'0')
		}
		if err := syscall.Chmod(filepath.Join(root, strings.TrimSuffix(name, "/")), mode); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestCommandSecure(t *testing.T) {
	trusted := map[uint32]bool{0: true, uint32(os.Geteuid()): true}
	tests := []struct {
		name    string
		entries []string
		prog    string // under the tree's root
		wantErr string // "" means accepted; else a substring of the error, @ROOT@ replaced
	}{
		{"owner-only file and directories", []string{"d/ 755", "d/hook 755"}, "d/hook", ""},
		{"read-only file", []string{"d/ 755", "d/hook 555"}, "d/hook", ""},
		{"group-writable file", []string{"d/ 755", "d/hook 775"}, "d/hook", "@ROOT@/d/hook is writable by its group (mode -rwxrwxr-x)"},
		{"world-writable file", []string{"d/ 755", "d/hook 757"}, "d/hook", "@ROOT@/d/hook is writable by others"},
		{"group-writable directory", []string{"d/ 775", "d/hook 755"}, "d/hook", "directory @ROOT@/d is writable by its group"},
		{"world-writable ancestor", []string{"a/ 777", "a/b/ 755", "a/b/hook 755"}, "a/b/hook", "directory @ROOT@/a is writable by its group and others"},
		{"sticky world-writable directory", []string{"tmp/ 1777", "tmp/d/ 700", "tmp/d/hook 700"}, "tmp/d/hook", ""},
		{"world-writable directory without the sticky bit", []string{"tmp/ 777", "tmp/hook 700"}, "tmp/hook", "directory @ROOT@/tmp is writable"},
		{"missing program in an owner-only directory", []string{"d/ 755"}, "d/hook", ""},
		{"missing program others could create", []string{"tmp/ 1777"}, "tmp/hook", "@ROOT@/tmp/hook does not exist, and users other than root and vipd's could create it in @ROOT@/tmp"},
		{"missing directory on the way", []string{"d/ 755"}, "d/nope/hook", ""},
		{"symbolic link to a safe program", []string{"d/ 755", "d/real 755", "d/hook ->real"}, "d/hook", ""},
		{"symbolic link with ..", []string{"d/ 755", "e/ 755", "e/real 755", "d/hook ->../e/real"}, "d/hook", ""},
		{"symbolic link into a writable directory", []string{"d/ 755", "w/ 777", "w/real 755", "d/hook ->@ROOT@/w/real"}, "d/hook", "directory @ROOT@/w is writable"},
		{"symbolic link chain through a writable directory", []string{"d/ 755", "w/ 777", "d/real 755", "w/link ->@ROOT@/d/real", "d/hook ->@ROOT@/w/link"}, "d/hook", "directory @ROOT@/w is writable"},
		{"symbolic link loop", []string{"d/ 755", "d/a ->b", "d/b ->a"}, "d/a", "too many levels of symbolic links"},
		{"a directory", []string{"d/ 755", "d/hook/ 755"}, "d/hook", "@ROOT@/d/hook is a directory"},
		{"a FIFO", []string{"d/ 755", "d/hook fifo"}, "d/hook", "@ROOT@/d/hook is not a regular file"},
		{"a file on the way", []string{"d/ 755", "d/f 755"}, "d/f/hook", "@ROOT@/d/f is not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := cmdTree(t, tt.entries...)
			err := commandSecure(filepath.Join(root, tt.prog), trust{uids: trusted})
			want := strings.ReplaceAll(tt.wantErr, "@ROOT@", root)
			switch {
			case want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case want != "" && err == nil:
				t.Errorf("accepted; want an error containing %q", want)
			case want != "" && !strings.Contains(err.Error(), want):
				t.Errorf("error %q; want it to contain %q", err, want)
			}
		})
	}
}

func TestCommandSecureOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files to another user")
	}
	const stranger = 54321
	for _, tc := range []struct{ name, chown, want string }{
		{"program owned by another user", "d/hook", "@ROOT@/d/hook is owned by uid 54321"},
		{"directory owned by another user", "d", "@ROOT@/d is owned by uid 54321"},
		{"symbolic link owned by another user", "d/link", "@ROOT@/d/link is owned by uid 54321"},
		{"entry of a sticky directory owned by another user", "tmp/hook", "@ROOT@/tmp/hook is owned by uid 54321"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := cmdTree(t, "d/ 755", "d/hook 755", "d/link ->hook", "tmp/ 1777", "tmp/hook 755")
			if err := os.Lchown(filepath.Join(root, tc.chown), stranger, stranger); err != nil {
				t.Fatal(err)
			}
			prog := filepath.Join(root, tc.chown)
			if !strings.HasPrefix(tc.chown, "tmp/") && tc.chown != "d/link" {
				prog = filepath.Join(root, "d/hook")
			}
			err := commandSecure(prog, trust{uids: map[uint32]bool{0: true}})
			if want := strings.ReplaceAll(tc.want, "@ROOT@", root); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("error %v; want one containing %q", err, want)
			}
		})
	}
}

// Load refuses an unsafe hook or script with the file and line of its
// definition, every one of them, in line order.
func TestLoadRefusesWritableCommands(t *testing.T) {
	root := cmdTree(t, "bin/ 755", "bin/check 775", "bin/hook 757", "bin/ok 755")
	cfg := `instances:
  - name: web
    interface: eth0
    vrid: 51
    vips: [198.51.100.10]
    track:
      scripts:
        - name: svc
          command: ["` + root + `/bin/check", "-x"]
        - name: fine
          command: ["` + root + `/bin/ok"]
    notify:
      command: ["` + root + `/bin/hook"]
`
	path := filepath.Join(root, "vipd.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if got != nil {
		t.Errorf("Load returned a config")
	}
	want := []string{
		path + ":8: track script svc: refusing " + root + "/bin/check: " + root + "/bin/check is writable by its group (mode -rwxrwxr-x); make it writable by its owner only",
		path + ":13: notify hook of web: refusing " + root + "/bin/hook: " + root + "/bin/hook is writable by others (mode -rwxr-xrwx); make it writable by its owner only",
	}
	if diff := cmp.Diff(want, errorLines(t, err)); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}

	// Made safe, the same file loads.
	for _, p := range []string{"bin/check", "bin/hook"} {
		if err := os.Chmod(filepath.Join(root, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Load(path); err != nil {
		t.Errorf("Load after chmod 755: %v", err)
	}
}
