package config

import (
	"errors"
	"net/netip"
	"os"
	"path"
	"strings"
	"testing"
	"time"
)

// FuzzParse checks that no input makes Parse panic and that it always
// returns exactly one of a config or a non-empty, line-ordered Errors; a
// config it does return must satisfy the schema's invariants.
func FuzzParse(f *testing.F) {
	var files []string
	for _, name := range []string{"testdata/valid.yaml", "testdata/full.yaml"} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		files = append(files, string(data))
	}
	for _, seed := range append(files,
		designExample,
		minimal,
		"",
		"---\n~\n",
		"instances: [\n",
		"instances: b: c\n",
		"instances:\n\t- name: web\n",
		one("advert_interval: 1", "priority: 0"),
		one("version: 2", "advert_interval: 1500ms", "v3_checksum: message-only"),
		one("garp: *nope"),
		"instances:\n  - &web\n    name: web\n    interface: eth0\n    vrid: 51\n    vips: [198.51.100.10]\n  - *web\n",
		"instances: &x [*x]\n",
		"instances:\n  - name: web\n    interface: eth0\n    vrid: 51\n    vips: &v [*v]\n",
		minimal+"---\ninstances: []\n",
		"state_dir: var/lib\n"+minimal,
		one("unicast_peers: [198.18.0.12, 198.18.0.12, 224.0.0.18, 198.51.100.10]"),
		one("unicast_peers: []"),
		script("interval: 100ms"),
		script("interval: 500ms", "timeout: 600ms", "rise: 0", "weight: 255"),
		one("track:", "  interfaces: [{name: eth0}, {name: eth1}, {name: eth1}]", "  files: [{path: /run/w}, {path: /run//w}]"),
		one("track:", "  scripts:", "    - {name: hc, command: /bin/true}", "    - {name: hc, command: [bin/true]}"),
		one("track: &t {scripts: [{name: hc, command: [/bin/true]}]}", "notify: {command: [/bin/true], timeout: 1h}")+
			"  - {name: db, interface: eth1, vrid: 51, vips: [198.51.100.20], track: *t}\n",
		withDB+"sync_groups: [{name: edge, instances: [web, db]}]\n",
		four+"sync_groups: [{name: edge, instances: [web, db]}, {name: edge, instances: [web, nope]}, {instances: []}]\n",
	) {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("f.yaml", data)
		if (cfg == nil) == (err == nil) {
			t.Fatalf("Parse returned config %v and error %v; want exactly one", cfg, err)
		}
		if err != nil {
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("Parse error %#v is not a non-empty Errors", err)
			}
			for i, e := range errs {
				if e.File != "f.yaml" || e.Msg == "" || e.Line < 0 {
					t.Errorf("malformed error %#v", e)
				}
				if i > 0 && e.Line < errs[i-1].Line {
					t.Errorf("errors out of line order: %v", errs)
				}
			}
			return
		}
		checkInvariants(t, cfg)
	})
}

func checkInvariants(t *testing.T, cfg *Config) {
	t.Helper()
	if cfg.File != "f.yaml" || cfg.ControlSocket == "" || len(cfg.Instances) == 0 {
		t.Fatalf("bad config %+v", cfg)
	}
	for _, in := range cfg.Instances {
		switch {
		case !validName(in.Name), !validIfname(in.Interface), in.VRID == 0, in.Priority == 0:
			t.Errorf("bad identity in %+v", in)
		case in.Version != 2 && in.Version != 3:
			t.Errorf("bad version in %+v", in)
		case in.Version == 3 && in.AuthPass != "", len(in.AuthPass) > 8:
			t.Errorf("bad auth_pass in %+v", in)
		case in.PreemptDelay < 0 || in.GARP.Repeat < 0 || in.GARP.Interval <= 0 || in.GARP.Refresh < 0:
			t.Errorf("bad timing in %+v", in)
		}
		for _, v := range in.VIPs {
			if !v.Address.IsValid() || !v.Address.Addr().Is4() {
				t.Errorf("bad VIP %+v in %s", v, in.Name)
			}
		}
		checkTracking(t, in)
	}
	if !path.IsAbs(cfg.StateDir) {
		t.Errorf("bad state_dir %q", cfg.StateDir)
	}
	member := make(map[string]bool)
	for _, g := range cfg.SyncGroups {
		if !validName(g.Name) || len(g.Instances) < 2 {
			t.Errorf("bad sync group %+v", g)
		}
		for _, name := range g.Instances {
			if member[name] || cfg.Instance(name) == nil {
				t.Errorf("sync group %s: member %s is unknown or in two groups", g.Name, name)
			}
			member[name] = true
		}
	}
}

// checkTracking checks what an instance's peers, trackers and hook must be.
func checkTracking(t *testing.T, in Instance) {
	t.Helper()
	peers := make(map[netip.Addr]bool)
	for _, a := range in.UnicastPeers {
		if !a.Is4() || a.IsMulticast() || a.IsUnspecified() || a.IsLoopback() || peers[a] {
			t.Errorf("bad unicast peer %s in %s", a, in.Name)
		}
		peers[a] = true
	}
	if in.UnicastPeers != nil && len(in.UnicastPeers) == 0 {
		t.Errorf("empty unicast peers in %s", in.Name)
	}
	weight := func(w int) bool { return -254 <= w && w <= 254 }
	ifnames := make(map[string]bool)
	for _, ti := range in.Track.Interfaces {
		if !validIfname(ti.Name) || ti.Name == in.Interface || ifnames[ti.Name] || !weight(ti.Weight) {
			t.Errorf("bad tracked interface %+v in %s", ti, in.Name)
		}
		ifnames[ti.Name] = true
	}
	scripts := make(map[string]bool)
	for _, ts := range in.Track.Scripts {
		switch {
		case !validName(ts.Name), scripts[ts.Name], !validCommand(ts.Command), !weight(ts.Weight):
			t.Errorf("bad track script %+v in %s", ts, in.Name)
		case ts.Interval < 100*time.Millisecond, ts.Interval > time.Hour, ts.Timeout < 10*time.Millisecond, ts.Timeout > ts.Interval:
			t.Errorf("bad track script timing %+v in %s", ts, in.Name)
		case ts.Rise < 1, ts.Rise > 100, ts.Fall < 1, ts.Fall > 100:
			t.Errorf("bad track script counts %+v in %s", ts, in.Name)
		}
		scripts[ts.Name] = true
	}
	files := make(map[string]bool)
	for _, tf := range in.Track.Files {
		if !path.IsAbs(tf.Path) || files[path.Clean(tf.Path)] || !weight(tf.Weight) {
			t.Errorf("bad tracked file %+v in %s", tf, in.Name)
		}
		files[path.Clean(tf.Path)] = true
	}
	if n := in.Notify; n != nil && (!validCommand(n.Command) || n.Timeout < 100*time.Millisecond || n.Timeout > time.Hour) {
		t.Errorf("bad notify %+v in %s", n, in.Name)
	}
}

func validCommand(argv []string) bool {
	if len(argv) == 0 || !path.IsAbs(argv[0]) {
		return false
	}
	for _, a := range argv {
		if strings.IndexByte(a, 0) >= 0 {
			return false
		}
	}
	return true
}
