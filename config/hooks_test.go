package config

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseHooksAndUsers(t *testing.T) {
	in := `script_user: nobody
script_group: nogroup
instances:
  - name: web
    interface: eth0
    vrid: 51
    vips: [198.51.100.10]
    track:
      scripts:
        - name: hc
          command: [/bin/true]
          user: www-data
          group: adm
    notify:
      master: [/etc/vipd/master.sh, up]
      backup: [/etc/vipd/backup.sh]
      fault: [/etc/vipd/fault.sh]
      stop: [/etc/vipd/stop.sh]
      keepalived: [/etc/keepalived/notify.sh]
      timeout: 3s
      user: keepalived_script
      group: staff
  - name: db
    interface: eth1
    vrid: 51
    vips: [198.51.100.20]
    notify: {keepalived: [/etc/keepalived/notify.sh]}
sync_groups:
  - name: edge
    instances: [web, db]
    notify:
      master: [/etc/vipd/group-master.sh]
      keepalived: [/etc/keepalived/notify.sh, extra]
`
	cfg, err := Parse("t.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := [2]Account{cfg.ScriptUser, cfg.ScriptGroup}, [2]Account{{"nobody", "script_user", 1}, {"nogroup", "script_group", 2}}; got != want {
		t.Errorf("script_user, script_group = %v; want %v", got, want)
	}
	s := cfg.Instances[0].Track.Scripts[0]
	if got, want := [2]Account{s.User, s.Group}, [2]Account{{"www-data", "track.scripts.user", 12}, {"adm", "track.scripts.group", 13}}; got != want {
		t.Errorf("track script user, group = %v; want %v", got, want)
	}
	want := &Notify{
		Master: []string{"/etc/vipd/master.sh", "up"}, Backup: []string{"/etc/vipd/backup.sh"},
		Fault: []string{"/etc/vipd/fault.sh"}, Stop: []string{"/etc/vipd/stop.sh"},
		Keepalived: []string{"/etc/keepalived/notify.sh"}, Timeout: 3 * time.Second,
		User: Account{"keepalived_script", "notify.user", 21}, Group: Account{"staff", "notify.group", 22}, Line: 15,
	}
	if diff := cmp.Diff(want, cfg.Instances[0].Notify); diff != "" {
		t.Errorf("web notify (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(&Notify{Keepalived: []string{"/etc/keepalived/notify.sh"}, Timeout: 10 * time.Second, Line: 27}, cfg.Instances[1].Notify); diff != "" {
		t.Errorf("db notify (-want +got):\n%s", diff)
	}
	gw := &Notify{Master: []string{"/etc/vipd/group-master.sh"}, Keepalived: []string{"/etc/keepalived/notify.sh", "extra"}, Timeout: 10 * time.Second, Line: 32}
	if diff := cmp.Diff(gw, cfg.SyncGroups[0].Notify); diff != "" {
		t.Errorf("sync group notify (-want +got):\n%s", diff)
	}
	// Hooks lists them in the order of one state change.
	var keys []string
	for _, h := range cfg.Instances[0].Notify.Hooks() {
		keys = append(keys, h.Key)
	}
	if diff := cmp.Diff([]string{"master", "backup", "fault", "stop", "keepalived"}, keys); diff != "" {
		t.Errorf("Hooks keys (-want +got):\n%s", diff)
	}
}

func TestParseHookErrors(t *testing.T) {
	const group = withDB + "sync_groups:\n  - name: edge\n    instances: [web, db]\n"
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"keepalived a string", one("notify:", "  keepalived: /etc/keepalived/notify.sh"), []string{
			`t.yaml:7: notify.keepalived: expected a list, got "/etc/keepalived/notify.sh"; the command is argv and never goes through a shell, ` +
				`so give each argument as its own item, e.g. ["/usr/bin/pgrep", "-x", "haproxy"]`}},
		{"master relative", one("notify:", "  master: [master.sh]"),
			[]string{`t.yaml:7: notify.master: "master.sh" is not an absolute path; the program is run directly, with no shell and no $PATH search`}},
		{"backup empty", one("notify:", "  backup: []"),
			[]string{"t.yaml:7: notify.backup: must not be empty; give the program's absolute path, then its arguments"}},
		{"fault null", one("notify:", "  fault:"),
			[]string{"t.yaml:7: notify.fault: must not be empty; give the program's absolute path, then its arguments"}},
		{"stop a number", one("notify:", "  stop: 5"), []string{
			`t.yaml:7: notify.stop: expected a list, got 5; the command is argv and never goes through a shell, ` +
				`so give each argument as its own item, e.g. ["/usr/bin/pgrep", "-x", "haproxy"]`}},
		{"only user", one("notify:", "  user: nobody"),
			[]string{"t.yaml:7: notify: no hook; give at least one of master, backup, fault, stop, keepalived, command"}},
		{"notify user with a colon", one("notify:", "  master: [/bin/true]", "  user: a:b"),
			[]string{`t.yaml:8: notify.user: "a:b" is not a valid user name (1 to 32 bytes, no ':', '/', whitespace or NUL)`}},
		{"notify group empty", one("notify:", "  master: [/bin/true]", `  group: ""`),
			[]string{`t.yaml:8: notify.group: "" is not a valid group name (1 to 32 bytes, no ':', '/', whitespace or NUL)`}},
		{"notify user a list", one("notify:", "  master: [/bin/true]", "  user: [a]"),
			[]string{"t.yaml:8: notify.user: expected a string, got a list"}},
		{"script_user too long", "script_user: " + strings.Repeat("u", 33) + "\n" + minimal,
			[]string{`t.yaml:1: script_user: "` + strings.Repeat("u", 33) + `" is not a valid user name (1 to 32 bytes, no ':', '/', whitespace or NUL)`}},
		{"script_group with a space", "script_group: a b\n" + minimal,
			[]string{`t.yaml:1: script_group: "a b" is not a valid group name (1 to 32 bytes, no ':', '/', whitespace or NUL)`}},
		{"track script user with a slash", script("user: ../x"),
			[]string{`t.yaml:10: track.scripts.user: "../x" is not a valid user name (1 to 32 bytes, no ':', '/', whitespace or NUL)`}},
		{"track script group a number list", script("group: {a: 1}"),
			[]string{"t.yaml:10: track.scripts.group: expected a string, got a mapping"}},
		{"unknown notify key", one("notify:", "  master: [/bin/true]", "  notify_master: [/bin/true]"),
			[]string{`t.yaml:8: unknown key "notify_master" in notify`}},
		{"group notify empty", group + "    notify:\n",
			[]string{"t.yaml:13: sync_groups.notify: no hook; give at least one of master, backup, fault, stop, keepalived, command"}},
		{"group notify relative", group + "    notify:\n      keepalived: [notify.sh]\n",
			[]string{`t.yaml:14: sync_groups.notify.keepalived: "notify.sh" is not an absolute path; the program is run directly, with no shell and no $PATH search`}},
		{"group notify timeout", group + "    notify: {master: [/bin/true], timeout: 10ms}\n",
			[]string{"t.yaml:13: sync_groups.notify.timeout: 10ms is out of range 100ms..1h"}},
		{"group notify a list", group + "    notify: [/bin/true]\n",
			[]string{"t.yaml:13: sync_groups.notify: expected a mapping, got a list"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("t.yaml", []byte(tt.in))
			if cfg != nil {
				t.Fatalf("Parse accepted it")
			}
			if diff := cmp.Diff(tt.want, errorLines(t, err)); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

// fakeAccounts is a user database for resolveCredentials.
type fakeAccounts struct {
	euid, egid uint32
}

var fakeUsers = map[string]*user.User{
	"root":   {Uid: "0", Gid: "0", Username: "root"},
	"nobody": {Uid: "65534", Gid: "65534", Username: "nobody"},
	"app":    {Uid: "1000", Gid: "1000", Username: "app"},
	"vipd":   {Uid: "990", Gid: "990", Username: "vipd"},
}

var fakeGroups = map[string]*user.Group{
	"root": {Gid: "0", Name: "root"}, "nogroup": {Gid: "65534", Name: "nogroup"},
	"app": {Gid: "1000", Name: "app"}, "adm": {Gid: "4", Name: "adm"}, "vipd": {Gid: "990", Name: "vipd"},
}

func (f fakeAccounts) lookupUser(name string) (*user.User, error) {
	if u, ok := fakeUsers[name]; ok {
		return u, nil
	}
	return nil, user.UnknownUserError(name)
}

func (f fakeAccounts) lookupUserID(uid uint32) (*user.User, error) {
	for _, u := range fakeUsers {
		if u.Uid == strconv.FormatUint(uint64(uid), 10) {
			return u, nil
		}
	}
	return nil, user.UnknownUserIdError(int(uid))
}

func (f fakeAccounts) lookupGroup(name string) (*user.Group, error) {
	if g, ok := fakeGroups[name]; ok {
		return g, nil
	}
	return nil, user.UnknownGroupError(name)
}

func (f fakeAccounts) groupIDs(u *user.User) ([]string, error) {
	switch u.Username {
	case "app":
		return []string{"1000", "4"}, nil // app is also in adm
	}
	return []string{u.Gid}, nil
}

func (f fakeAccounts) ids() (uint32, uint32) { return f.euid, f.egid }

func TestResolveCredentials(t *testing.T) {
	const hooks = `instances:
  - name: web
    interface: eth0
    vrid: 51
    vips: [198.51.100.10]
    track:
      scripts:
        - {name: own, command: [/bin/true], user: app}
        - {name: grp, command: [/bin/true], group: adm}
        - {name: dflt, command: [/bin/true]}
    notify:
      master: [/bin/true]
      user: root
sync_groups:
  - name: edge
    instances: [web, db]
    notify: {master: [/bin/true], group: nogroup}
`
	db := "  - {name: db, interface: eth1, vrid: 51, vips: [198.51.100.20]}\n"
	file := strings.Replace(hooks, "sync_groups:", db+"sync_groups:", 1)
	type runs struct{ Own, Grp, Dflt, Notify, Group *Credential }
	get := func(c *Config) runs {
		s := c.Instances[0].Track.Scripts
		return runs{s[0].Run, s[1].Run, s[2].Run, c.Instances[0].Notify.Run, c.SyncGroups[0].Notify.Run}
	}
	root := &Credential{User: "root", Group: "0", UID: 0, GID: 0, Groups: []uint32{0}}
	tests := []struct {
		name   string
		top    string
		self   fakeAccounts
		want   runs
		errors []string
	}{
		{"no script_user: only what is set", "", fakeAccounts{0, 0}, runs{
			Own:    &Credential{User: "app", Group: "1000", UID: 1000, GID: 1000, Groups: []uint32{1000, 4}},
			Grp:    &Credential{User: "root", Group: "adm", UID: 0, GID: 4, Groups: []uint32{4, 0}},
			Notify: root,
			Group:  &Credential{User: "root", Group: "nogroup", UID: 0, GID: 65534, Groups: []uint32{65534, 0}},
		}, nil},
		{"script_user and script_group as defaults", "script_user: nobody\nscript_group: adm\n", fakeAccounts{0, 0}, runs{
			// A script's own user brings its own primary group, not script_group.
			Own: &Credential{User: "app", Group: "1000", UID: 1000, GID: 1000, Groups: []uint32{1000, 4}},
			// Its own group alone goes with script_user.
			Grp:    &Credential{User: "nobody", Group: "adm", UID: 65534, GID: 4, Groups: []uint32{4, 65534}},
			Dflt:   &Credential{User: "nobody", Group: "adm", UID: 65534, GID: 4, Groups: []uint32{4, 65534}},
			Notify: root,
			Group:  &Credential{User: "nobody", Group: "nogroup", UID: 65534, GID: 65534, Groups: []uint32{65534}},
		}, nil},
		{"unknown names", "script_user: ghost\n", fakeAccounts{0, 0}, runs{}, []string{
			`t.yaml:1: script_user: no user named "ghost" on this system`,
		}},
		{"not root: another user refused", "", fakeAccounts{990, 990}, runs{}, []string{
			"t.yaml:8: track.scripts.user: hooks and scripts cannot run as user app (uid 1000) and group 1000 (gid 1000): vipd runs as uid 990, gid 990, not as root, and cannot switch to another user or group; run vipd as root or remove the setting",
			"t.yaml:9: track.scripts.group: hooks and scripts cannot run as user vipd (uid 990) and group adm (gid 4): vipd runs as uid 990, gid 990, not as root, and cannot switch to another user or group; run vipd as root or remove the setting",
			"t.yaml:13: notify.user: hooks and scripts cannot run as user root (uid 0) and group 0 (gid 0): vipd runs as uid 990, gid 990, not as root, and cannot switch to another user or group; run vipd as root or remove the setting",
			"t.yaml:18: sync_groups.notify.group: hooks and scripts cannot run as user vipd (uid 990) and group nogroup (gid 65534): vipd runs as uid 990, gid 990, not as root, and cannot switch to another user or group; run vipd as root or remove the setting",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.top + file
			cfg, err := Parse("t.yaml", []byte(in))
			if err != nil {
				t.Fatal(err)
			}
			errs := resolveCredentials(cfg, tt.self)
			if tt.errors != nil {
				if diff := cmp.Diff(tt.errors, lines(errs)); diff != "" {
					t.Errorf("errors (-want +got):\n%s", diff)
				}
				return
			}
			if len(errs) > 0 {
				t.Fatalf("errors: %v", errs)
			}
			if diff := cmp.Diff(tt.want, get(cfg)); diff != "" {
				t.Errorf("credentials (-want +got):\n%s", diff)
			}
		})
	}

	// Not root, vipd's own user named: accepted, nothing to switch.
	cfg, err := Parse("t.yaml", []byte("script_user: vipd\n"+minimal+"    notify: {master: [/bin/true]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if errs := resolveCredentials(cfg, fakeAccounts{990, 990}); len(errs) > 0 {
		t.Fatalf("own user refused: %v", errs)
	}
	if diff := cmp.Diff(&Credential{User: "vipd", Group: "990", UID: 990, GID: 990}, cfg.Instances[0].Notify.Run); diff != "" {
		t.Errorf("own user's credential (-want +got):\n%s", diff)
	}
	// An unknown group names its own line, once per setting.
	cfg, err = Parse("t.yaml", []byte(minimal+"    notify: {master: [/bin/true], group: ghosts}\n    track: {scripts: [{name: a, command: [/bin/true], group: ghosts}]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`t.yaml:6: notify.group: no group named "ghosts" on this system`, `t.yaml:7: track.scripts.group: no group named "ghosts" on this system`}
	if diff := cmp.Diff(want, lines(resolveCredentials(cfg, fakeAccounts{0, 0}))); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}

// Load resolves names against this system's /etc/passwd and /etc/group
// and reports an unknown one with the file and line.
func TestLoadResolvesUsers(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vipd.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("script_user: vipd-no-such-user\n" + minimal + "    notify: {master: [/bin/true]}\n")
	_, err := Load(path)
	want := []string{path + `:1: script_user: no user named "vipd-no-such-user" on this system`}
	if diff := cmp.Diff(want, errorLines(t, err)); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}

	self, err := user.Current()
	if err != nil {
		t.Skip("no passwd entry for the test's user:", err)
	}
	write("script_user: " + self.Username + "\n" + minimal + "    notify: {master: [/bin/true]}\n")
	cfg, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if r := cfg.Instances[0].Notify.Run; r == nil || strconv.FormatUint(uint64(r.UID), 10) != self.Uid {
		t.Errorf("Run = %+v; want uid %s", r, self.Uid)
	}
}

// A program its configured user owns is refused: that user could change
// what runs. Root and vipd's own files stay trusted.
func TestCheckCommandsScriptUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a file to another user")
	}
	root := cmdTree(t, "bin/ 755", "bin/hook 755", "bin/mine 755")
	if err := os.Chown(filepath.Join(root, "bin/hook"), 65534, 65534); err != nil {
		t.Fatal(err)
	}
	nobody := &Credential{User: "nobody", Group: "nogroup", UID: 65534, GID: 65534, Groups: []uint32{65534}}
	cfg := &Config{File: "t.yaml", Instances: []Instance{{Name: "web", Notify: &Notify{
		Master: []string{root + "/bin/hook"}, Keepalived: []string{root + "/bin/mine"}, Run: nobody, Line: 7,
	}}}, SyncGroups: []SyncGroup{{Name: "edge", Notify: &Notify{Stop: []string{root + "/bin/hook"}, Line: 20}}}}
	want := []string{
		"t.yaml:7: notify.master hook of web: refusing " + root + "/bin/hook: " + root + "/bin/hook is owned by nobody (uid 65534), the user it runs as, who could change what runs; it must belong to root",
		// Run as vipd (root) itself, nobody's file is simply foreign.
		"t.yaml:20: notify.stop hook of sync group edge: refusing " + root + "/bin/hook: " + root + "/bin/hook is owned by uid 65534; it must belong to root or to the user vipd runs as (uid 0)",
	}
	if diff := cmp.Diff(want, lines(checkCommands(cfg))); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
	// The directory on the way too.
	if err := os.Chown(filepath.Join(root, "bin"), 65534, 65534); err != nil {
		t.Fatal(err)
	}
	got := lines(checkCommands(&Config{File: "t.yaml", Instances: []Instance{{Name: "web", Track: Track{Scripts: []TrackScript{{Name: "hc", Command: []string{root + "/bin/mine"}, Run: nobody, Line: 9}}}}}}))
	if len(got) != 1 || !strings.Contains(got[0], root+"/bin is owned by nobody (uid 65534), the user it runs as") {
		t.Errorf("errors %q; want the directory refused", got)
	}
}
