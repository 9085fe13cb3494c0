package config

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// cmpOpts lets cmp look inside netip values, whose fields are unexported.
var cmpOpts = cmp.Options{
	cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func TestLoadValid(t *testing.T) {
	want := &Config{
		File:          "testdata/valid.yaml",
		ControlSocket: "/run/vipd/vipd.sock",
		MetricsListen: "127.0.0.1:9654",
		StateDir:      "/var/lib/vipd",
		Instances: []Instance{
			{
				Name:           "web",
				Interface:      "eth0",
				VRID:           51,
				Priority:       150,
				Version:        3,
				AdvertInterval: 100 * time.Millisecond,
				Preempt:        true,
				PreemptDelay:   30 * time.Second,
				V3Checksum:     ChecksumPseudoHeader,
				VIPs: []VIP{
					{Address: mustPrefix("198.51.100.10/32"), Description: "public web", Owner: "web team", Line: 16},
					{Address: mustPrefix("198.51.100.11/24"), Description: "public api", Owner: "api team", Line: 19},
				},
				GARP: GARP{Repeat: 3, Interval: 2 * time.Second, Refresh: time.Minute},
				Line: 6,
			},
			{
				Name:           "db_legacy-2",
				Interface:      "eth1",
				VRID:           52,
				Priority:       255,
				Version:        2,
				AdvertInterval: 2 * time.Second,
				Preempt:        true, // preempt: false is overridden for the owner
				AuthPass:       "s3cret",
				VIPs: []VIP{
					{Address: mustPrefix("203.0.113.5/32"), Line: 35},
					{Address: mustPrefix("203.0.113.6/32"), Line: 36},
				},
				GARP: GARP{Repeat: 5, Interval: time.Second},
				Line: 26,
			},
		},
		Warnings: []Error{{File: "testdata/valid.yaml", Line: 32, Msg: "preempt: false has no effect with priority 255: the address owner always preempts"}},
	}
	got, err := Load("testdata/valid.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
		t.Errorf("Load (-want +got):\n%s", diff)
	}
}

func TestLoadFull(t *testing.T) {
	want := &Config{
		File:          "testdata/full.yaml",
		ControlSocket: "/run/vipd/vipd.sock",
		MetricsListen: "127.0.0.1:9654",
		StateDir:      "/var/lib/vipd-test",
		Instances: []Instance{
			{
				Name:           "web",
				Interface:      "eth0",
				VRID:           51,
				Priority:       150,
				Version:        3,
				AdvertInterval: 100 * time.Millisecond,
				Preempt:        true,
				V3Checksum:     ChecksumPseudoHeader,
				VIPs:           []VIP{{Address: mustPrefix("198.51.100.10/32"), Line: 13}},
				GARP:           GARP{Repeat: 5, Interval: time.Second},
				UnicastPeers:   addrs("198.18.0.12", "198.18.1.12"),
				Track: Track{
					Interfaces: []TrackInterface{
						{Name: "eth1", Weight: 0, Line: 17},
						{Name: "bond0.100", Weight: -20, Line: 19},
					},
					Scripts: []TrackScript{
						{
							Name:     "haproxy",
							Command:  []string{"/usr/bin/pgrep", "-x", "haproxy"},
							Interval: 2 * time.Second,
							Timeout:  time.Second,
							Rise:     2,
							Fall:     2,
							Weight:   -60,
							Line:     22,
						},
						{
							Name:     "backend",
							Command:  []string{"/usr/local/bin/check-backend", "--port", "8080"},
							Interval: 2 * time.Second,
							Timeout:  time.Second,
							Rise:     1,
							Fall:     1,
							Line:     29,
						},
					},
					Files: []TrackFile{{Path: "/run/vipd/web.weight", Weight: 1, Line: 35}},
				},
				Notify: &Notify{Command: []string{"/etc/vipd/notify.sh", "web"}, Timeout: 10 * time.Second, Line: 38},
				Line:   8,
			},
			{
				Name:           "api",
				Interface:      "eth0",
				VRID:           52,
				Priority:       100,
				Version:        3,
				AdvertInterval: time.Second,
				Preempt:        true,
				V3Checksum:     ChecksumPseudoHeader,
				VIPs:           []VIP{{Address: mustPrefix("198.51.100.11/32"), Line: 43}},
				GARP:           GARP{Repeat: 5, Interval: time.Second},
				UnicastPeers:   addrs("198.18.0.12"),
				Notify:         &Notify{Command: []string{"/etc/vipd/notify.sh", "api"}, Timeout: 500 * time.Millisecond, Line: 46},
				Line:           40,
			},
		},
		SyncGroups: []SyncGroup{{Name: "edge", Instances: []string{"web", "api"}, Line: 5}},
	}
	got, err := Load("testdata/full.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
		t.Errorf("Load (-want +got):\n%s", diff)
	}
}

// The example of the first design contract (../shared/DESIGN.md) must stay
// valid; docs_test.go checks the examples of the repo's DESIGN.md and README.
const designExample = `control_socket: /run/vipd/vipd.sock   # default; --socket overrides
metrics_listen: 127.0.0.1:9654        # default; "" turns the HTTP listener off
instances:
  - name: web                 # required, unique, [a-z0-9_-]+
    interface: eth0           # required
    vrid: 51                  # required, 1..255
    priority: 100             # 1..255, default 100 (255 = address owner)
    version: 3                # 2 or 3, default 3
    advert_interval: 1s       # default 1s; v3: 10ms..40.95s in 10ms steps; v2: whole seconds 1..255
    preempt: true             # default true
    preempt_delay: 0s         # default 0
    auth_pass: ""             # v2 only, at most 8 bytes
    vips:
      - address: 198.51.100.10      # a bare address means /32
        description: public web     # free text, shown by status (document every alias)
        owner: web team
    garp:
      repeat: 5               # announcements after the first one on becoming master
      interval: 1s            # spacing of those repeats (>1s beats the receiver's ARP locktime)
      refresh: 0s             # periodic re-announcement while master; 0 = off
`

// minimal is the smallest valid file; everything else is a default.
const minimal = `instances:
  - name: web
    interface: eth0
    vrid: 51
    vips: [198.51.100.10]
`

func defaultInstance() Instance {
	return Instance{
		Name:           "web",
		Interface:      "eth0",
		VRID:           51,
		Priority:       100,
		Version:        3,
		AdvertInterval: time.Second,
		Preempt:        true,
		V3Checksum:     ChecksumPseudoHeader,
		VIPs:           []VIP{{Address: mustPrefix("198.51.100.10/32"), Line: 5}},
		GARP:           GARP{Repeat: 5, Interval: time.Second},
		Line:           2,
	}
}

func TestParseDefaults(t *testing.T) {
	want := &Config{
		File:          "t.yaml",
		ControlSocket: "/run/vipd/vipd.sock",
		MetricsListen: "127.0.0.1:9654",
		StateDir:      "/var/lib/vipd",
		Instances:     []Instance{defaultInstance()},
	}
	got, err := Parse("t.yaml", []byte(minimal))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
		t.Errorf("Parse (-want +got):\n%s", diff)
	}
}

// inst returns a file with one instance made of the given lines; the first
// is on line 2, the next on line 3 and so on.
func inst(lines ...string) string {
	return "instances:\n  - " + strings.Join(lines, "\n    ") + "\n"
}

// one returns minimal with extra lines appended to its instance, starting
// at line 6.
func one(extra ...string) string {
	return inst(append([]string{"name: web", "interface: eth0", "vrid: 51", "vips: [198.51.100.10]"}, extra...)...)
}

// script returns minimal with one track script, hc running /bin/true on
// line 9, and extra lines of that script starting at line 10.
func script(extra ...string) string {
	lines := []string{"track:", "  scripts:", "    - name: hc", "      command: [/bin/true]"}
	for _, l := range extra {
		lines = append(lines, "      "+l)
	}
	return one(lines...)
}

// withDB is minimal with a second instance, db, on lines 6 to 9.
const withDB = minimal + "  - name: db\n    interface: eth1\n    vrid: 51\n    vips: [198.51.100.20]\n"

func dbInstance() Instance {
	db := defaultInstance()
	db.Name, db.Interface, db.Line = "db", "eth1", 6
	db.VIPs = []VIP{{Address: mustPrefix("198.51.100.20/32"), Line: 9}}
	return db
}

// four is a file with the instances web, db, api and dns on lines 2 to
// 17; what is appended to it starts at line 18.
var four = func() string {
	s := "instances:\n"
	for i, name := range []string{"web", "db", "api", "dns"} {
		s += fmt.Sprintf("  - name: %s\n    interface: eth0\n    vrid: %d\n    vips: [198.51.100.%d]\n", name, 51+i, 10+i)
	}
	return s
}()

func TestParseAccepts(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		modify func(*Config) // turns the minimal result into the expected one
	}{
		{
			name: "design example",
			in:   designExample,
			modify: func(c *Config) {
				c.Instances[0].Line = 4
				c.Instances[0].VIPs = []VIP{{Address: mustPrefix("198.51.100.10/32"), Description: "public web", Owner: "web team", Line: 14}}
			},
		},
		{
			name:   "metrics off with an explicit empty string",
			in:     "metrics_listen: \"\"\n" + minimal,
			modify: func(c *Config) { c.MetricsListen = ""; shiftLines(c, 1) },
		},
		{
			name:   "metrics off with a null value",
			in:     "metrics_listen:\n" + minimal,
			modify: func(c *Config) { c.MetricsListen = ""; shiftLines(c, 1) },
		},
		{
			name:   "metrics on all addresses",
			in:     "metrics_listen: \":9654\"\ncontrol_socket: /tmp/v.sock\n" + minimal,
			modify: func(c *Config) { c.MetricsListen = ":9654"; c.ControlSocket = "/tmp/v.sock"; shiftLines(c, 2) },
		},
		{
			name:   "vrid with a leading zero is decimal",
			in:     inst("name: web", "interface: eth0", "vrid: 051", "vips: [198.51.100.10]"),
			modify: func(*Config) {},
		},
		{
			name:   "vrid in hex",
			in:     inst("name: web", "interface: eth0", "vrid: 0x33", "vips: [198.51.100.10]"),
			modify: func(*Config) {},
		},
		{
			name:   "priority 255 owns the address",
			in:     one("priority: 255"),
			modify: func(c *Config) { c.Instances[0].Priority = 255 },
		},
		{
			// RFC 5798: the address owner always preempts. An owner with
			// preempt: false would never take its address back after
			// maintenance; the setting is overridden, with a warning.
			name: "priority 255 with preempt false preempts anyway, with a warning",
			in:   one("priority: 255", "preempt: false"),
			modify: func(c *Config) {
				c.Instances[0].Priority = 255
				c.Instances[0].Preempt = true
				c.Warnings = []Error{{File: "t.yaml", Line: 7, Msg: "preempt: false has no effect with priority 255: the address owner always preempts"}}
			},
		},
		{
			name:   "preempt false below 255 stays off, without a warning",
			in:     one("priority: 254", "preempt: false"),
			modify: func(c *Config) { c.Instances[0].Priority = 254; c.Instances[0].Preempt = false },
		},
		{
			name:   "priority 1",
			in:     one("priority: 1"),
			modify: func(c *Config) { c.Instances[0].Priority = 1 },
		},
		{
			name:   "fastest v3 interval",
			in:     one("advert_interval: 10ms"),
			modify: func(c *Config) { c.Instances[0].AdvertInterval = 10 * time.Millisecond },
		},
		{
			name:   "slowest v3 interval",
			in:     one("advert_interval: 40.95s"),
			modify: func(c *Config) { c.Instances[0].AdvertInterval = 40950 * time.Millisecond },
		},
		{
			name: "version 2 with the slowest interval and a password",
			in:   one("version: 2", "advert_interval: 255s", "auth_pass: 12345678"),
			modify: func(c *Config) {
				c.Instances[0].Version = 2
				c.Instances[0].AdvertInterval = 255 * time.Second
				c.Instances[0].AuthPass = "12345678"
			},
		},
		{
			name:   "version 2 keeps the 1s default interval",
			in:     one("version: 2"),
			modify: func(c *Config) { c.Instances[0].Version = 2 },
		},
		{
			name:   "message-only checksum",
			in:     one("v3_checksum: message-only"),
			modify: func(c *Config) { c.Instances[0].V3Checksum = ChecksumMessageOnly },
		},
		{
			name: "preempt off with the longest delay",
			in:   one("preempt: false", "preempt_delay: 1h"),
			modify: func(c *Config) {
				c.Instances[0].Preempt = false
				c.Instances[0].PreemptDelay = time.Hour
			},
		},
		{
			name:   "a bare 0 needs no unit",
			in:     one("preempt_delay: 0"),
			modify: func(*Config) {},
		},
		{
			name: "garp limits",
			in:   one("garp:", "  repeat: 0", "  interval: 10ms", "  refresh: 1s"),
			modify: func(c *Config) {
				c.Instances[0].GARP = GARP{Repeat: 0, Interval: 10 * time.Millisecond, Refresh: time.Second}
			},
		},
		{
			name:   "garp upper limits",
			in:     one("garp:", "  repeat: 100", "  interval: 1h"),
			modify: func(c *Config) { c.Instances[0].GARP = GARP{Repeat: 100, Interval: time.Hour} },
		},
		{
			name:   "empty garp keeps the defaults",
			in:     one("garp:"),
			modify: func(*Config) {},
		},
		{
			name: "VIP with a prefix, and a /31 may use either address",
			in:   inst("name: web", "interface: eth0", "vrid: 51", "vips:", "  - 198.51.100.10/24", "  - address: 192.0.2.0/31", "  - 192.0.2.3/31"),
			modify: func(c *Config) {
				c.Instances[0].VIPs = []VIP{
					{Address: mustPrefix("198.51.100.10/24"), Line: 6},
					{Address: mustPrefix("192.0.2.0/31"), Line: 7},
					{Address: mustPrefix("192.0.2.3/31"), Line: 8},
				}
			},
		},
		{
			name: "same VRID on another interface",
			in:   minimal + "  - name: db\n    interface: eth1\n    vrid: 51\n    vips: [198.51.100.20]\n",
			modify: func(c *Config) {
				db := defaultInstance()
				db.Name, db.Interface, db.Line = "db", "eth1", 6
				db.VIPs = []VIP{{Address: mustPrefix("198.51.100.20/32"), Line: 9}}
				c.Instances = append(c.Instances, db)
			},
		},
		{
			name: "anchors and aliases",
			in: "instances:\n" +
				"  - name: web\n    interface: eth0\n    vrid: 51\n    vips: [198.51.100.10]\n    garp: &g {repeat: 2}\n" +
				"  - name: db\n    interface: eth0\n    vrid: 52\n    vips: [198.51.100.20]\n    garp: *g\n",
			modify: func(c *Config) {
				c.Instances[0].GARP.Repeat = 2
				db := defaultInstance()
				db.Name, db.VRID, db.Line = "db", 52, 7
				db.VIPs = []VIP{{Address: mustPrefix("198.51.100.20/32"), Line: 10}}
				db.GARP.Repeat = 2
				c.Instances = append(c.Instances, db)
			},
		},
		{
			name:   "state_dir",
			in:     "state_dir: /srv/vipd/state\n" + minimal,
			modify: func(c *Config) { c.StateDir = "/srv/vipd/state"; shiftLines(c, 1) },
		},
		{
			name: "unicast peers",
			in:   one("version: 2", "unicast_peers: [198.18.0.12, 169.254.0.2, 10.0.0.255]"),
			modify: func(c *Config) {
				c.Instances[0].Version = 2
				c.Instances[0].UnicastPeers = addrs("198.18.0.12", "169.254.0.2", "10.0.0.255")
			},
		},
		{
			name: "tracker defaults",
			in: one("track:", "  interfaces:", "    - name: eth1", "  scripts:", "    - name: hc", "      command: [/bin/true]",
				"  files:", "    - path: /run/w"),
			modify: func(c *Config) {
				c.Instances[0].Track = Track{
					Interfaces: []TrackInterface{{Name: "eth1", Line: 8}},
					Scripts:    []TrackScript{{Name: "hc", Command: []string{"/bin/true"}, Interval: 2 * time.Second, Timeout: time.Second, Rise: 1, Fall: 1, Line: 10}},
					Files:      []TrackFile{{Path: "/run/w", Line: 13}},
				}
			},
		},
		{
			name:   "empty track",
			in:     one("track:"),
			modify: func(*Config) {},
		},
		{
			name:   "empty tracker lists",
			in:     one("track:", "  interfaces: []", "  scripts:", "  files: []"),
			modify: func(*Config) {},
		},
		{
			name: "tracker weight limits",
			in:   one("track:", "  interfaces:", "    - {name: eth1, weight: -254}", "    - {name: eth2, weight: 254}", "  files:", "    - {path: /run/w, weight: -254}"),
			modify: func(c *Config) {
				c.Instances[0].Track = Track{
					Interfaces: []TrackInterface{{Name: "eth1", Weight: -254, Line: 8}, {Name: "eth2", Weight: 254, Line: 9}},
					Files:      []TrackFile{{Path: "/run/w", Weight: -254, Line: 11}},
				}
			},
		},
		{
			name: "a short interval shortens the default timeout",
			in:   script("interval: 100ms"),
			modify: func(c *Config) {
				c.Instances[0].Track.Scripts = []TrackScript{{Name: "hc", Command: []string{"/bin/true"}, Interval: 100 * time.Millisecond, Timeout: 100 * time.Millisecond, Rise: 1, Fall: 1, Line: 8}}
			},
		},
		{
			name: "track script upper limits",
			in:   script("interval: 1h", "timeout: 1h", "rise: 100", "fall: 100", "weight: 254"),
			modify: func(c *Config) {
				c.Instances[0].Track.Scripts = []TrackScript{{Name: "hc", Command: []string{"/bin/true"}, Interval: time.Hour, Timeout: time.Hour, Rise: 100, Fall: 100, Weight: 254, Line: 8}}
			},
		},
		{
			name: "track script lower limits",
			in:   script("interval: 100ms", "timeout: 10ms", "weight: -254"),
			modify: func(c *Config) {
				c.Instances[0].Track.Scripts = []TrackScript{{Name: "hc", Command: []string{"/bin/true"}, Interval: 100 * time.Millisecond, Timeout: 10 * time.Millisecond, Rise: 1, Fall: 1, Weight: -254, Line: 8}}
			},
		},
		{
			name: "command arguments that look like other types are text",
			in:   one("track:", "  scripts:", `    - {name: hc, command: [/usr/local/bin/check, 8080, true, 1.50, ~, ""]}`),
			modify: func(c *Config) {
				c.Instances[0].Track.Scripts = []TrackScript{{Name: "hc", Command: []string{"/usr/local/bin/check", "8080", "true", "1.50", "", ""},
					Interval: 2 * time.Second, Timeout: time.Second, Rise: 1, Fall: 1, Line: 8}}
			},
		},
		{
			name: "notify defaults",
			in:   one("notify:", "  command: [/etc/vipd/notify.sh]"),
			modify: func(c *Config) {
				c.Instances[0].Notify = &Notify{Command: []string{"/etc/vipd/notify.sh"}, Timeout: 10 * time.Second, Line: 7}
			},
		},
		{
			name: "notify timeout limits",
			in: withDB + "    notify: {command: [/bin/a], timeout: 100ms}\n" +
				"  - {name: api, interface: eth2, vrid: 1, vips: [198.51.100.30], notify: {command: [/bin/b], timeout: 1h}}\n",
			modify: func(c *Config) {
				db := dbInstance()
				db.Notify = &Notify{Command: []string{"/bin/a"}, Timeout: 100 * time.Millisecond, Line: 10}
				api := defaultInstance()
				api.Name, api.Interface, api.VRID, api.Line = "api", "eth2", 1, 11
				api.VIPs = []VIP{{Address: mustPrefix("198.51.100.30/32"), Line: 11}}
				api.Notify = &Notify{Command: []string{"/bin/b"}, Timeout: time.Hour, Line: 11}
				c.Instances = append(c.Instances, db, api)
			},
		},
		{
			name: "sync group",
			in:   withDB + "sync_groups:\n  - name: edge\n    instances:\n      - web\n      - db\n",
			modify: func(c *Config) {
				c.Instances = append(c.Instances, dbInstance())
				c.SyncGroups = []SyncGroup{{Name: "edge", Instances: []string{"web", "db"}, Line: 11}}
			},
		},
		{
			name: "sync group before the instances",
			in:   "sync_groups: [{name: edge, instances: [db, web]}]\n" + withDB,
			modify: func(c *Config) {
				c.Instances = append(c.Instances, dbInstance())
				shiftLines(c, 1)
				c.SyncGroups = []SyncGroup{{Name: "edge", Instances: []string{"db", "web"}, Line: 1}}
			},
		},
		{
			name:   "no sync groups",
			in:     "sync_groups: []\n" + minimal,
			modify: func(c *Config) { shiftLines(c, 1) },
		},
		{
			name: "trackers shared through an alias",
			in: one("track: &t", "  scripts: [{name: hc, command: [/bin/true]}]") +
				"  - {name: db, interface: eth1, vrid: 51, vips: [198.51.100.20], track: *t}\n",
			modify: func(c *Config) {
				hc := []TrackScript{{Name: "hc", Command: []string{"/bin/true"}, Interval: 2 * time.Second, Timeout: time.Second, Rise: 1, Fall: 1, Line: 7}}
				c.Instances[0].Track.Scripts = hc
				db := dbInstance()
				db.Line, db.VIPs[0].Line = 8, 8
				db.Track.Scripts = hc
				c.Instances = append(c.Instances, db)
			},
		},
		{
			name:   "an empty document after the first is ignored",
			in:     minimal + "---\n",
			modify: func(*Config) {},
		},
		{
			name: "free text may look like other types",
			in:   inst("name: web", "interface: eth0", "vrid: 51", "vips:", "  - {address: 198.51.100.10, description: 42, owner: true}"),
			modify: func(c *Config) {
				c.Instances[0].VIPs = []VIP{{Address: mustPrefix("198.51.100.10/32"), Description: "42", Owner: "true", Line: 6}}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := &Config{
				File:          "t.yaml",
				ControlSocket: "/run/vipd/vipd.sock",
				MetricsListen: "127.0.0.1:9654",
				StateDir:      "/var/lib/vipd",
				Instances:     []Instance{defaultInstance()},
			}
			tt.modify(want)
			got, err := Parse("t.yaml", []byte(tt.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
				t.Errorf("Parse (-want +got):\n%s", diff)
			}
		})
	}
}

// shiftLines moves every line number in c down by n, for tests that put
// lines above minimal.
func shiftLines(c *Config, n int) {
	for i := range c.Instances {
		in := &c.Instances[i]
		in.Line += n
		for j := range in.VIPs {
			in.VIPs[j].Line += n
		}
		for j := range in.Track.Interfaces {
			in.Track.Interfaces[j].Line += n
		}
		for j := range in.Track.Scripts {
			in.Track.Scripts[j].Line += n
		}
		for j := range in.Track.Files {
			in.Track.Files[j].Line += n
		}
		if in.Notify != nil {
			in.Notify.Line += n
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		// The file as a whole.
		{"empty", "", []string{"t.yaml: the file is empty; at least one instance is needed"}},
		{"only a comment", "# nothing yet\n", []string{"t.yaml: the file is empty; at least one instance is needed"}},
		{"null document", "---\n~\n", []string{"t.yaml: the file is empty; at least one instance is needed"}},
		{"top level list", "- a\n", []string{"t.yaml:1: expected a mapping of settings at the top level, got a list"}},
		{"top level scalar", "instances\n", []string{`t.yaml:1: expected a mapping of settings at the top level, got "instances"`}},
		{"no instances key", "control_socket: /run/v.sock\n", []string{"t.yaml: no instances; at least one is needed"}},
		{"empty instances", "instances: []\n", []string{"t.yaml:1: instances: at least one instance is needed"}},
		{"null instances", "metrics_listen: \"\"\ninstances:\n", []string{"t.yaml:2: instances: at least one instance is needed"}},
		{"instances not a list", "instances: 5\n", []string{"t.yaml:1: instances: expected a list, got 5"}},
		{"instance not a mapping", "instances:\n  - web\n", []string{`t.yaml:2: instance: expected a mapping, got "web"`}},
		{"second document", minimal + "---\ninstances: []\n", []string{"t.yaml:6: a second YAML document is not allowed; put the whole configuration in one"}},

		// YAML syntax: one error, on the line the library reports.
		{"syntax on the first line", "instances: b: c\n", []string{"t.yaml:1: invalid YAML: mapping values are not allowed in this context"}},
		{"syntax unclosed flow", "control_socket: /x\ninstances: [\n", []string{"t.yaml:2: invalid YAML: did not find expected node content"}},
		// For bad indentation the library names the line where the enclosing
		// block starts, not the offending one; we pass on what it says.
		{"syntax bad indentation", one("garp:", "  repeat: 1", " interval: 1s"), []string{"t.yaml:1: invalid YAML: did not find expected key"}},
		{"syntax tab", "instances:\n\t- name: web\n", []string{"t.yaml:2: invalid YAML: found character that cannot start any token"}},
		{"syntax in a second document", minimal + "---\nfoo: [\n", []string{"t.yaml:7: invalid YAML: did not find expected node content"}},
		{"unknown anchor", one("garp: *nope"), []string{"t.yaml: invalid YAML: unknown anchor 'nope' referenced"}},

		// Keys.
		{"unknown top-level key", "foo: 1\n" + minimal, []string{`t.yaml:1: unknown key "foo" at the top level`}},
		{"unknown instance key", one("foo: bar"), []string{`t.yaml:6: unknown key "foo" in instance`}},
		{"unknown vip key", inst("name: web", "interface: eth0", "vrid: 51", "vips:", "  - address: 198.51.100.10", "    note: x"),
			[]string{`t.yaml:7: unknown key "note" in vip`}},
		{"unknown garp key", one("garp:", "  repat: 3"), []string{`t.yaml:7: unknown key "repat" in garp`}},
		{"merge key", one("<<: {priority: 10}"), []string{`t.yaml:6: unknown key "<<" in instance`}},
		{"non-string key", one("? [a]", ": 1"), []string{"t.yaml:6: a key must be a string, got a list in instance"}},
		{"duplicate instance key", one("vrid: 52"), []string{`t.yaml:6: duplicate key "vrid" in instance (first at line 4)`}},
		{"duplicate top-level key", "metrics_listen: \"\"\nmetrics_listen: \":1\"\n" + minimal,
			[]string{`t.yaml:2: duplicate key "metrics_listen" at the top level (first at line 1)`}},
		{"missing required keys", "instances:\n  - name: web\n", []string{
			`t.yaml:2: missing required key "interface" in instance`,
			`t.yaml:2: missing required key "vrid" in instance`,
		}},
		{"missing name", inst("interface: eth0", "vrid: 51", "vips: [198.51.100.10]"), []string{`t.yaml:2: missing required key "name" in instance`}},

		// Types.
		{"vrid not a number", inst("name: web", "interface: eth0", "vrid: abc", "vips: [198.51.100.10]"), []string{`t.yaml:4: vrid: expected an integer, got "abc"`}},
		{"vrid quoted", inst("name: web", "interface: eth0", "vrid: \"51\"", "vips: [198.51.100.10]"), []string{`t.yaml:4: vrid: expected an integer, got "51"`}},
		{"vrid float", inst("name: web", "interface: eth0", "vrid: 5.1", "vips: [198.51.100.10]"), []string{`t.yaml:4: vrid: expected an integer, got 5.1`}},
		{"vrid null", inst("name: web", "interface: eth0", "vrid:", "vips: [198.51.100.10]"), []string{`t.yaml:4: vrid: expected an integer, got nothing`}},
		{"vips not a list", inst("name: web", "interface: eth0", "vrid: 51", "vips: 5"), []string{"t.yaml:5: vips: expected a list, got 5"}},
		{"vips a mapping", inst("name: web", "interface: eth0", "vrid: 51", "vips: {address: 198.51.100.10}"), []string{"t.yaml:5: vips: expected a list, got a mapping"}},
		{"name a list", inst("name: [web]", "interface: eth0", "vrid: 51", "vips: [198.51.100.10]"), []string{"t.yaml:2: name: expected a string, got a list"}},
		{"preempt yes", one("preempt: yes"), []string{`t.yaml:6: preempt: expected true or false, got "yes"`}},
		{"garp not a mapping", one("garp: 5"), []string{"t.yaml:6: garp: expected a mapping, got 5"}},
		{"garp repeat text", one("garp:", "  repeat: many"), []string{`t.yaml:7: garp.repeat: expected an integer, got "many"`}},

		// Name and interface.
		{"name uppercase", inst("name: Web", "interface: eth0", "vrid: 51", "vips: [198.51.100.10]"),
			[]string{`t.yaml:2: name: "Web" is not a valid instance name; use 1 to 32 characters from a-z, 0-9, _ and -`}},
		{"name empty", inst("name: \"\"", "interface: eth0", "vrid: 51", "vips: [198.51.100.10]"),
			[]string{`t.yaml:2: name: "" is not a valid instance name; use 1 to 32 characters from a-z, 0-9, _ and -`}},
		{"name too long", inst("name: "+strings.Repeat("a", 33), "interface: eth0", "vrid: 51", "vips: [198.51.100.10]"),
			[]string{`t.yaml:2: name: "` + strings.Repeat("a", 33) + `" is not a valid instance name; use 1 to 32 characters from a-z, 0-9, _ and -`}},
		{"interface with slash", inst("name: web", "interface: eth0/1", "vrid: 51", "vips: [198.51.100.10]"),
			[]string{`t.yaml:3: interface: "eth0/1" is not a valid interface name (1 to 15 bytes, no '/', ':' or whitespace, not "." or "..")`}},
		{"interface alias label", inst("name: web", "interface: \"eth0:1\"", "vrid: 51", "vips: [198.51.100.10]"),
			[]string{`t.yaml:3: interface: "eth0:1" is not a valid interface name (1 to 15 bytes, no '/', ':' or whitespace, not "." or "..")`}},
		{"interface with space", inst("name: web", "interface: \"eth 0\"", "vrid: 51", "vips: [198.51.100.10]"),
			[]string{`t.yaml:3: interface: "eth 0" is not a valid interface name (1 to 15 bytes, no '/', ':' or whitespace, not "." or "..")`}},
		{"interface too long", inst("name: web", "interface: enp0s31f6-uplink0", "vrid: 51", "vips: [198.51.100.10]"),
			[]string{`t.yaml:3: interface: "enp0s31f6-uplink0" is not a valid interface name (1 to 15 bytes, no '/', ':' or whitespace, not "." or "..")`}},
		{"interface dot dot", inst("name: web", "interface: ..", "vrid: 51", "vips: [198.51.100.10]"),
			[]string{`t.yaml:3: interface: ".." is not a valid interface name (1 to 15 bytes, no '/', ':' or whitespace, not "." or "..")`}},
		{"interface empty", inst("name: web", "interface:", "vrid: 51", "vips: [198.51.100.10]"),
			[]string{`t.yaml:3: interface: "" is not a valid interface name (1 to 15 bytes, no '/', ':' or whitespace, not "." or "..")`}},

		// Numbers.
		{"vrid 0", inst("name: web", "interface: eth0", "vrid: 0", "vips: [198.51.100.10]"), []string{"t.yaml:4: vrid: 0 is out of range 1..255"}},
		{"vrid 256", inst("name: web", "interface: eth0", "vrid: 256", "vips: [198.51.100.10]"), []string{"t.yaml:4: vrid: 256 is out of range 1..255"}},
		{"vrid huge", inst("name: web", "interface: eth0", "vrid: 18446744073709551615", "vips: [198.51.100.10]"),
			[]string{"t.yaml:4: vrid: 18446744073709551615 is out of range 1..255"}},
		{"priority 0", one("priority: 0"), []string{"t.yaml:6: priority: 0 is reserved for a master resigning; use 1..255 (255 for the address owner)"}},
		{"priority 256", one("priority: 256"), []string{"t.yaml:6: priority: 256 is out of range 1..255"}},
		{"priority negative", one("priority: -1"), []string{"t.yaml:6: priority: -1 is out of range 1..255"}},
		{"version 4", one("version: 4"), []string{"t.yaml:6: version: 4 is not supported; use 2 or 3"}},
		{"garp repeat 101", one("garp:", "  repeat: 101"), []string{"t.yaml:7: garp.repeat: 101 is out of range 0..100"}},
		{"garp repeat negative", one("garp:", "  repeat: -1"), []string{"t.yaml:7: garp.repeat: -1 is out of range 0..100"}},

		// Durations.
		{"interval without unit", one("advert_interval: 1"), []string{"t.yaml:6: advert_interval: 1 needs a unit, e.g. 1s"}},
		{"interval float without unit", one("advert_interval: 1.5"), []string{"t.yaml:6: advert_interval: 1.5 needs a unit, e.g. 1.5s"}},
		{"interval not a duration", one("advert_interval: fast"), []string{`t.yaml:6: advert_interval: "fast" is not a duration; use Go syntax such as 100ms, 1s or 1.5s`}},
		{"interval a list", one("advert_interval: [1s]"), []string{"t.yaml:6: advert_interval: expected a duration such as 1s, got a list"}},
		{"v3 interval too short", one("advert_interval: 5ms"), []string{"t.yaml:6: advert_interval: 5ms is out of range for version 3 (10ms..40.95s)"}},
		{"v3 interval too long", one("advert_interval: 41s"), []string{"t.yaml:6: advert_interval: 41s is out of range for version 3 (10ms..40.95s)"}},
		{"v3 interval not in 10ms steps", one("advert_interval: 15ms"), []string{"t.yaml:6: advert_interval: 15ms is not a multiple of 10ms, the unit of version 3"}},
		{"v2 interval fraction", one("version: 2", "advert_interval: 1500ms"),
			[]string{"t.yaml:7: advert_interval: 1500ms does not fit version 2, which needs whole seconds from 1s to 255s"}},
		{"v2 interval too short", one("version: 2", "advert_interval: 100ms"),
			[]string{"t.yaml:7: advert_interval: 100ms does not fit version 2, which needs whole seconds from 1s to 255s"}},
		{"v2 interval too long", one("advert_interval: 256s", "version: 2"),
			[]string{"t.yaml:6: advert_interval: 256s does not fit version 2, which needs whole seconds from 1s to 255s"}},
		{"bad version skips the interval check", one("version: 1", "advert_interval: 15ms"), []string{"t.yaml:6: version: 1 is not supported; use 2 or 3"}},
		{"preempt_delay negative", one("preempt_delay: -1s"), []string{"t.yaml:6: preempt_delay: -1s must not be negative"}},
		{"preempt_delay too long", one("preempt_delay: 61m"), []string{"t.yaml:6: preempt_delay: 61m is more than the maximum of 1h"}},
		{"preempt_delay without unit", one("preempt_delay: 5"), []string{"t.yaml:6: preempt_delay: 5 needs a unit, e.g. 5s"}},
		{"garp interval too short", one("garp:", "  interval: 5ms"), []string{"t.yaml:7: garp.interval: 5ms is out of range 10ms..1h"}},
		{"garp interval too long", one("garp:", "  interval: 2h"), []string{"t.yaml:7: garp.interval: 2h is out of range 10ms..1h"}},
		{"garp interval without unit", one("garp:", "  interval: 2"), []string{"t.yaml:7: garp.interval: 2 needs a unit, e.g. 2s"}},
		{"garp refresh too short", one("garp:", "  refresh: 500ms"), []string{"t.yaml:7: garp.refresh: 500ms must be 0 (off) or at least 1s"}},
		{"garp refresh negative", one("garp:", "  refresh: -1s"), []string{"t.yaml:7: garp.refresh: -1s must be 0 (off) or at least 1s"}},

		// Version-specific keys.
		{"auth_pass on v3", one("auth_pass: secret"), []string{"t.yaml:6: auth_pass: only version 2 has authentication; this instance is version 3"}},
		{"v3_checksum on v2", one("version: 2", "v3_checksum: message-only"), []string{"t.yaml:7: v3_checksum: applies to version 3 only; this instance is version 2"}},
		{"v3_checksum unknown", one("v3_checksum: none"), []string{`t.yaml:6: v3_checksum: "none" is not a checksum mode; use pseudo-header or message-only`}},

		// Top-level values.
		{"metrics_listen without port", "metrics_listen: localhost\n" + minimal,
			[]string{`t.yaml:1: metrics_listen: "localhost" is not host:port with a port of 1..65535 (use "" to turn metrics off)`}},
		{"metrics_listen named port", "metrics_listen: \":http\"\n" + minimal,
			[]string{`t.yaml:1: metrics_listen: ":http" is not host:port with a port of 1..65535 (use "" to turn metrics off)`}},
		{"metrics_listen port 0", "metrics_listen: 127.0.0.1:0\n" + minimal,
			[]string{`t.yaml:1: metrics_listen: "127.0.0.1:0" is not host:port with a port of 1..65535 (use "" to turn metrics off)`}},
		{"control_socket empty", "control_socket: \"\"\n" + minimal, []string{"t.yaml:1: control_socket: must not be empty"}},
		{"control_socket too long", "control_socket: /" + strings.Repeat("s", 107) + "\n" + minimal,
			[]string{"t.yaml:1: control_socket: path is 108 bytes; a Unix socket path holds at most 107"}},

		// VIPs.
		{"vip IPv6 multicast", inst("name: web", "interface: eth0", "vrid: 51", "vips: [\"ff02::12\"]"),
			[]string{`t.yaml:5: address "ff02::12": a multicast address cannot be a VIP`}},
		{"vip IPv6 subnet-router anycast", inst("name: web", "interface: eth0", "vrid: 51", "vips:", "  - address: 2001:db8::/64"),
			[]string{`t.yaml:6: address "2001:db8::/64": this is the subnet-router anycast address of 2001:db8::/64`}},
		{"vip not an address", inst("name: web", "interface: eth0", "vrid: 51", "vips: [www.example.com]"),
			[]string{`t.yaml:5: address "www.example.com": not an IP address or address/prefix (e.g. 198.51.100.10, 198.51.100.10/24 or 2001:db8::10/64)`}},
		{"vip prefix too long", inst("name: web", "interface: eth0", "vrid: 51", "vips: [198.51.100.10/33]"),
			[]string{`t.yaml:5: address "198.51.100.10/33": not an IP address or address/prefix (e.g. 198.51.100.10, 198.51.100.10/24 or 2001:db8::10/64)`}},
		{"vip network address", inst("name: web", "interface: eth0", "vrid: 51", "vips: [198.51.100.0/24]"),
			[]string{`t.yaml:5: address "198.51.100.0/24": this is the network address of 198.51.100.0/24`}},
		{"vip broadcast address", inst("name: web", "interface: eth0", "vrid: 51", "vips: [198.51.100.127/25]"),
			[]string{`t.yaml:5: address "198.51.100.127/25": this is the broadcast address of 198.51.100.0/25`}},
		{"vip /0", inst("name: web", "interface: eth0", "vrid: 51", "vips: [198.51.100.10/0]"),
			[]string{`t.yaml:5: address "198.51.100.10/0": a /0 prefix would cover every address`}},
		{"vip loopback", inst("name: web", "interface: eth0", "vrid: 51", "vips: [127.0.0.2]"),
			[]string{`t.yaml:5: address "127.0.0.2": a loopback address cannot be a VIP`}},
		{"vip multicast", inst("name: web", "interface: eth0", "vrid: 51", "vips: [224.0.0.18]"),
			[]string{`t.yaml:5: address "224.0.0.18": a multicast address cannot be a VIP`}},
		{"vip unspecified", inst("name: web", "interface: eth0", "vrid: 51", "vips: [0.0.0.0]"),
			[]string{`t.yaml:5: address "0.0.0.0": the unspecified address cannot be a VIP`}},
		{"vip limited broadcast", inst("name: web", "interface: eth0", "vrid: 51", "vips: [255.255.255.255]"),
			[]string{`t.yaml:5: address "255.255.255.255": the broadcast address cannot be a VIP`}},
		{"vip without address", inst("name: web", "interface: eth0", "vrid: 51", "vips:", "  - description: web"),
			[]string{`t.yaml:6: missing required key "address" in vip`}},
		{"vip a list", inst("name: web", "interface: eth0", "vrid: 51", "vips: [[198.51.100.10]]"),
			[]string{"t.yaml:5: vips: expected an address or a mapping, got a list"}},
		{"vip null item", inst("name: web", "interface: eth0", "vrid: 51", "vips:", "  -"),
			[]string{"t.yaml:6: vips: expected an address or a mapping, got nothing"}},
		{"vip address a mapping", inst("name: web", "interface: eth0", "vrid: 51", "vips:", "  - address: {ip: 198.51.100.10}"),
			[]string{"t.yaml:6: address: expected a string, got a mapping"}},
		{"vip twice in one instance", inst("name: web", "interface: eth0", "vrid: 51", "vips:",
			"  - 198.51.100.10", "  - description: again", "    address: 198.51.100.10/24"),
			[]string{"t.yaml:8: VIP 198.51.100.10 is listed twice in this instance (first at line 6)"}},

		// State directory.
		{"state_dir relative", "state_dir: var/lib/vipd\n" + minimal, []string{`t.yaml:1: state_dir: "var/lib/vipd" is not an absolute path`}},
		{"state_dir empty", "state_dir:\n" + minimal, []string{`t.yaml:1: state_dir: "" is not an absolute path`}},
		{"state_dir a list", "state_dir: [/var/lib/vipd]\n" + minimal, []string{"t.yaml:1: state_dir: expected a string, got a list"}},
		{"state_dir with NUL", "state_dir: \"/var/lib/\\0\"\n" + minimal, []string{"t.yaml:1: state_dir: path contains a NUL byte"}},

		// Unicast peers.
		{"unicast_peers empty", one("unicast_peers: []"), []string{"t.yaml:6: unicast_peers: the list is empty; omit the key for multicast"}},
		{"unicast_peers null", one("unicast_peers:"), []string{"t.yaml:6: unicast_peers: the list is empty; omit the key for multicast"}},
		{"unicast_peers a string", one("unicast_peers: 198.18.0.12"), []string{`t.yaml:6: unicast_peers: expected a list, got "198.18.0.12"`}},
		{"unicast peer a mapping", one("unicast_peers: [{address: 198.18.0.12}]"), []string{"t.yaml:6: unicast_peers: expected a string, got a mapping"}},
		{"unicast peer a name", one("unicast_peers: [peer-b]"), []string{`t.yaml:6: unicast peer "peer-b": not an IP address (e.g. 198.18.0.12 or fe80::12)`}},
		{"unicast peer with a prefix", one("unicast_peers: [198.18.0.12/24]"), []string{`t.yaml:6: unicast peer "198.18.0.12/24": not an IP address (e.g. 198.18.0.12 or fe80::12)`}},
		{"unicast peer IPv6 on an IPv4 instance", one(`unicast_peers: ["2001:db8::2"]`), []string{`t.yaml:6: unicast peer 2001:db8::2 is IPv6 but the instance runs over IPv4 (its VIPs are IPv4); adverts go to peers of the instance's family`}},
		{"unicast peer multicast", one("unicast_peers: [224.0.0.18]"),
			[]string{`t.yaml:6: unicast peer "224.0.0.18": a multicast address cannot be a unicast peer; omit unicast_peers for multicast`}},
		{"unicast peer broadcast", one("unicast_peers: [255.255.255.255]"), []string{`t.yaml:6: unicast peer "255.255.255.255": the broadcast address cannot be a peer`}},
		{"unicast peer unspecified", one("unicast_peers: [0.0.0.0]"), []string{`t.yaml:6: unicast peer "0.0.0.0": the unspecified address cannot be a peer`}},
		{"unicast peer loopback", one("unicast_peers: [127.0.0.1]"), []string{`t.yaml:6: unicast peer "127.0.0.1": a loopback address cannot be a peer`}},
		{"unicast peer twice", one("unicast_peers:", "  - 198.18.0.12", "  - 198.18.0.12"),
			[]string{"t.yaml:8: unicast peer 198.18.0.12 is listed twice in this instance (first at line 7)"}},
		{"unicast peer is a VIP", withDB + "    unicast_peers: [198.51.100.10]\n",
			[]string{"t.yaml:10: unicast peer 198.51.100.10 is a VIP (instance web at line 5); list the peer's own address"}},

		// Track.
		{"track not a mapping", one("track: [eth1]"), []string{"t.yaml:6: track: expected a mapping, got a list"}},
		{"unknown track key", one("track:", "  routes: []"), []string{`t.yaml:7: unknown key "routes" in track`}},
		{"track.interfaces not a list", one("track:", "  interfaces: {name: eth1}"), []string{"t.yaml:7: track.interfaces: expected a list, got a mapping"}},
		{"tracked interface a bare name", one("track:", "  interfaces: [eth1]"), []string{`t.yaml:7: track.interfaces: expected a mapping, got "eth1"`}},
		{"tracked interface without name", one("track:", "  interfaces:", "    - weight: -10"), []string{`t.yaml:8: missing required key "name" in tracked interface`}},
		{"tracked interface null item", one("track:", "  interfaces:", "    -"), []string{`t.yaml:8: missing required key "name" in tracked interface`}},
		{"tracked interface bad name", one("track:", "  interfaces:", "    - name: eth1/2"),
			[]string{`t.yaml:8: track.interfaces.name: "eth1/2" is not a valid interface name (1 to 15 bytes, no '/', ':' or whitespace, not "." or "..")`}},
		{"tracked interface twice", one("track:", "  interfaces:", "    - name: eth1", "    - name: eth1", "      weight: -10"),
			[]string{"t.yaml:9: interface eth1 is tracked twice in this instance (first at line 8)"}},
		{"tracking the own interface", one("track:", "  interfaces:", "    - name: eth0", "      weight: -50"),
			[]string{"t.yaml:8: track.interfaces.name: eth0 need not be listed: the instance's own interface is always tracked (carrier loss is fault; set track.own_interface: false to track it with a weight instead)"}},
		{"tracked interface weight 255", one("track:", "  interfaces:", "    - name: eth1", "      weight: 255"),
			[]string{"t.yaml:9: track.interfaces.weight: 255 is out of range -254..254"}},
		{"tracked interface weight -255", one("track:", "  interfaces:", "    - name: eth1", "      weight: -255"),
			[]string{"t.yaml:9: track.interfaces.weight: -255 is out of range -254..254"}},
		{"tracked interface weight text", one("track:", "  interfaces:", "    - name: eth1", "      weight: heavy"),
			[]string{`t.yaml:9: track.interfaces.weight: expected an integer, got "heavy"`}},
		{"unknown tracked interface key", one("track:", "  interfaces:", "    - name: eth1", "      carrier: up"),
			[]string{`t.yaml:9: unknown key "carrier" in tracked interface`}},

		// Track scripts.
		{"track script without name and command", one("track:", "  scripts:", "    - interval: 1s"), []string{
			`t.yaml:8: missing required key "name" in track script`,
			`t.yaml:8: missing required key "command" in track script`,
		}},
		{"track script bad name", one("track:", "  scripts:", "    - name: HAProxy", "      command: [/bin/true]"),
			[]string{`t.yaml:8: track.scripts.name: "HAProxy" is not a valid script name; use 1 to 32 characters from a-z, 0-9, _ and -`}},
		{"track script twice", one("track:", "  scripts:", "    - name: hc", "      command: [/bin/true]", "    - name: hc", "      command: [/bin/false]"),
			[]string{"t.yaml:10: track script hc is defined twice in this instance (first at line 8)"}},
		{"track script a string", one("track:", "  scripts: [/bin/true]"), []string{`t.yaml:7: track.scripts: expected a mapping, got "/bin/true"`}},
		{"command a string", one("track:", "  scripts:", "    - name: hc", `      command: "/usr/bin/pgrep -x haproxy"`), []string{
			`t.yaml:9: track.scripts.command: expected a list, got "/usr/bin/pgrep -x haproxy"; the command is argv and never goes through a shell, ` +
				`so give each argument as its own item, e.g. ["/usr/bin/pgrep", "-x", "haproxy"]`,
		}},
		{"command a mapping", one("track:", "  scripts:", "    - name: hc", "      command: {path: /bin/true}"),
			[]string{"t.yaml:9: track.scripts.command: expected a list, got a mapping"}},
		{"command empty", one("track:", "  scripts:", "    - name: hc", "      command: []"),
			[]string{"t.yaml:9: track.scripts.command: must not be empty; give the program's absolute path, then its arguments"}},
		{"command null", one("track:", "  scripts:", "    - name: hc", "      command:"),
			[]string{"t.yaml:9: track.scripts.command: must not be empty; give the program's absolute path, then its arguments"}},
		{"command relative", one("track:", "  scripts:", "    - name: hc", "      command: [pgrep, -x, haproxy]"),
			[]string{`t.yaml:9: track.scripts.command: "pgrep" is not an absolute path; the program is run directly, with no shell and no $PATH search`}},
		{"command argument a list", one("track:", "  scripts:", "    - name: hc", "      command:", "        - /bin/check", "        - [a, b]"),
			[]string{"t.yaml:11: track.scripts.command: expected a string, got a list"}},
		{"command argument with NUL", one("track:", "  scripts:", "    - name: hc", `      command: [/bin/check, "a\0b"]`),
			[]string{"t.yaml:9: track.scripts.command: argument 1 contains a NUL byte"}},
		{"script interval too short", script("interval: 50ms"), []string{"t.yaml:10: track.scripts.interval: 50ms is out of range 100ms..1h"}},
		{"script interval too long", script("interval: 61m"), []string{"t.yaml:10: track.scripts.interval: 61m is out of range 100ms..1h"}},
		{"script interval without unit", script("interval: 2"), []string{"t.yaml:10: track.scripts.interval: 2 needs a unit, e.g. 2s"}},
		{"script timeout too short", script("timeout: 5ms"), []string{"t.yaml:10: track.scripts.timeout: 5ms is less than the minimum of 10ms"}},
		{"script timeout longer than the interval", script("interval: 500ms", "timeout: 600ms"),
			[]string{"t.yaml:11: track.scripts.timeout: 600ms is longer than the interval (500ms); a run must end before the next one is due"}},
		{"script timeout longer than the default interval", script("timeout: 3s"),
			[]string{"t.yaml:10: track.scripts.timeout: 3s is longer than the interval (2s); a run must end before the next one is due"}},
		{"script timeout over 1h beside a bad interval", script("interval: 2h", "timeout: 90m"), []string{
			"t.yaml:10: track.scripts.interval: 2h is out of range 100ms..1h",
			"t.yaml:11: track.scripts.timeout: 90m is more than the maximum of 1h",
		}},
		{"script rise 0", script("rise: 0"), []string{"t.yaml:10: track.scripts.rise: 0 is out of range 1..100"}},
		{"script fall 101", script("fall: 101"), []string{"t.yaml:10: track.scripts.fall: 101 is out of range 1..100"}},
		{"script fall text", script("fall: twice"), []string{`t.yaml:10: track.scripts.fall: expected an integer, got "twice"`}},
		{"script weight -255", script("weight: -255"), []string{"t.yaml:10: track.scripts.weight: -255 is out of range -254..254"}},
		{"unknown script key", script("shell: true"), []string{`t.yaml:10: unknown key "shell" in track script`}},

		// Track files.
		{"tracked file without path", one("track:", "  files:", "    - weight: 1"), []string{`t.yaml:8: missing required key "path" in tracked file`}},
		{"tracked file relative", one("track:", "  files:", "    - path: run/w"), []string{`t.yaml:8: track.files.path: "run/w" is not an absolute path`}},
		{"tracked file a string", one("track:", "  files: [/run/w]"), []string{`t.yaml:7: track.files: expected a mapping, got "/run/w"`}},
		{"tracked file twice", one("track:", "  files:", "    - path: /run/w", "    - path: /run//w/", "      weight: 2"),
			[]string{"t.yaml:9: file /run//w/ is tracked twice in this instance (first at line 8)"}},
		{"tracked file weight 300", one("track:", "  files:", "    - path: /run/w", "      weight: 300"),
			[]string{"t.yaml:9: track.files.weight: 300 is out of range -254..254"}},
		{"unknown tracked file key", one("track:", "  files:", "    - path: /run/w", "      scale: 2"),
			[]string{`t.yaml:9: unknown key "scale" in tracked file`}},

		// Notify.
		{"notify null", one("notify:"), []string{"t.yaml:6: notify: no hook; give at least one of master, backup, fault, stop, keepalived, command"}},
		{"notify without command", one("notify:", "  timeout: 1s"), []string{"t.yaml:7: notify: no hook; give at least one of master, backup, fault, stop, keepalived, command"}},
		{"notify a string", one("notify: /etc/vipd/notify.sh"), []string{`t.yaml:6: notify: expected a mapping, got "/etc/vipd/notify.sh"`}},
		{"notify command a string", one("notify:", "  command: /etc/vipd/notify.sh"), []string{
			`t.yaml:7: notify.command: expected a list, got "/etc/vipd/notify.sh"; the command is argv and never goes through a shell, ` +
				`so give each argument as its own item, e.g. ["/usr/bin/pgrep", "-x", "haproxy"]`,
		}},
		{"notify command relative", one("notify:", "  command: [notify.sh]"),
			[]string{`t.yaml:7: notify.command: "notify.sh" is not an absolute path; the program is run directly, with no shell and no $PATH search`}},
		{"notify command empty", one("notify:", "  command: []"),
			[]string{"t.yaml:7: notify.command: must not be empty; give the program's absolute path, then its arguments"}},
		{"notify timeout too short", one("notify:", "  command: [/bin/true]", "  timeout: 50ms"), []string{"t.yaml:8: notify.timeout: 50ms is out of range 100ms..1h"}},
		{"notify timeout too long", one("notify:", "  command: [/bin/true]", "  timeout: 2h"), []string{"t.yaml:8: notify.timeout: 2h is out of range 100ms..1h"}},
		{"notify timeout without unit", one("notify:", "  command: [/bin/true]", "  timeout: 10"), []string{"t.yaml:8: notify.timeout: 10 needs a unit, e.g. 10s"}},
		{"unknown notify key", one("notify:", "  command: [/bin/true]", "  env: {}"), []string{`t.yaml:8: unknown key "env" in notify`}},

		// Sync groups.
		{"sync_groups not a list", four + "sync_groups: {name: edge}\n", []string{"t.yaml:18: sync_groups: expected a list, got a mapping"}},
		{"sync group a bare name", four + "sync_groups: [edge]\n", []string{`t.yaml:18: sync_groups: expected a mapping, got "edge"`}},
		{"sync group without keys", four + "sync_groups:\n  - {}\n", []string{
			`t.yaml:19: missing required key "name" in sync group`,
			`t.yaml:19: missing required key "instances" in sync group`,
		}},
		{"sync group without name", four + "sync_groups:\n  - instances: [web]\n", []string{
			`t.yaml:19: missing required key "name" in sync group`,
			"t.yaml:19: sync group (unnamed): needs at least 2 instances to move together",
		}},
		{"sync group bad name", four + "sync_groups:\n  - name: Edge\n    instances: [web, db]\n",
			[]string{`t.yaml:19: sync_groups.name: "Edge" is not a valid sync group name; use 1 to 32 characters from a-z, 0-9, _ and -`}},
		{"sync group name twice", four + "sync_groups:\n  - name: edge\n    instances: [web, db]\n  - name: edge\n    instances: [api, dns]\n",
			[]string{`t.yaml:21: duplicate sync group name "edge": also at line 19`}},
		{"sync group of one", four + "sync_groups:\n  - name: edge\n    instances: [web]\n",
			[]string{"t.yaml:20: sync group edge: needs at least 2 instances to move together"}},
		{"sync group of none", four + "sync_groups:\n  - name: edge\n    instances: []\n",
			[]string{"t.yaml:20: sync group edge: needs at least 2 instances to move together"}},
		{"sync group instances a string", four + "sync_groups:\n  - name: edge\n    instances: web\n",
			[]string{`t.yaml:20: sync_groups.instances: expected a list, got "web"`}},
		{"sync group unknown instance", four + "sync_groups:\n  - name: edge\n    instances: [web, wbe]\n",
			[]string{`t.yaml:20: sync group edge: no instance named "wbe"`}},
		{"sync group instance twice", four + "sync_groups:\n  - name: edge\n    instances:\n      - web\n      - db\n      - web\n",
			[]string{"t.yaml:23: sync group edge: instance web is listed twice (first at line 21)"}},
		{"instance in two sync groups", four + "sync_groups:\n  - name: edge\n    instances: [web, db]\n  - name: back\n    instances: [api, web]\n",
			[]string{"t.yaml:22: instance web is already in sync group edge at line 20; an instance can be in one sync group only"}},
		{"unknown sync group key", four + "sync_groups:\n  - name: edge\n    instances: [web, db]\n    preempt: true\n",
			[]string{`t.yaml:21: unknown key "preempt" in sync group`}},
		{"sync group naming an instance whose name is wrong", inst("name: Web", "interface: eth0", "vrid: 51", "vips: [198.51.100.10]") +
			"  - {name: db, interface: eth0, vrid: 52, vips: [198.51.100.20]}\nsync_groups: [{name: edge, instances: [Web, db]}]\n",
			[]string{`t.yaml:2: name: "Web" is not a valid instance name; use 1 to 32 characters from a-z, 0-9, _ and -`}},
		{"sync group without instances at all", "sync_groups:\n  - name: edge\n    instances: [web, db]\n",
			[]string{"t.yaml: no instances; at least one is needed"}},

		// Across instances.
		{"duplicate name", minimal + "  - name: web\n    interface: eth1\n    vrid: 52\n    vips: [198.51.100.20]\n",
			[]string{`t.yaml:6: duplicate instance name "web": also at line 2`}},
		{"duplicate VRID on an interface", minimal + "  - name: db\n    interface: eth0\n    vrid: 51\n    vips: [198.51.100.20]\n",
			[]string{"t.yaml:8: duplicate VRID 51 on eth0: also instance web at line 2"}},
		{"VIP in two instances", minimal + "  - name: db\n    interface: eth1\n    vrid: 52\n    vips: [198.51.100.10/24]\n",
			[]string{"t.yaml:9: VIP 198.51.100.10 is also in instance web at line 5"}},
		{"one instance twice through an alias", "instances:\n  - &web\n    name: web\n    interface: eth0\n    vrid: 51\n    vips: [198.51.100.10]\n  - *web\n", []string{
			`t.yaml:3: duplicate instance name "web": also at line 2`,
			"t.yaml:5: duplicate VRID 51 on eth0: also instance web at line 2",
			"t.yaml:6: VIP 198.51.100.10 is also in instance web at line 6",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("t.yaml", []byte(tt.in))
			if cfg != nil {
				t.Errorf("Parse returned a config along with the errors: %+v", cfg)
			}
			if diff := cmp.Diff(tt.want, errorLines(t, err)); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

// errorLines checks that err is an Errors and returns its lines.
func errorLines(t *testing.T, err error) []string {
	t.Helper()
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("got error %v (%T), want Errors", err, err)
	}
	if err.Error() != strings.Join(lines(errs), "\n") {
		t.Errorf("Errors.Error() = %q, want its errors one per line", err.Error())
	}
	return lines(errs)
}

func lines(errs Errors) []string {
	var out []string
	for _, e := range errs {
		out = append(out, e.Error())
	}
	return out
}

// Everything wrong is reported at once, in line order, whatever order the
// checks found it in.
func TestParseReportsAllErrorsInLineOrder(t *testing.T) {
	in := `instances:
  - name: web
    interface: eth0
    vrid: 51
    priority: 0
    advert_interval: 1
    vips: [198.51.100.10, "ff02::1"]
  - name: web
    interface: eth0
    vrid: 51
    version: 2
    auth_pass: much-too-long
    v3_checksum: message-only
    vips:
      - 198.51.100.10
    garp:
      repeat: lots
metrics_listen: nowhere
bogus: true
`
	want := []string{
		"t.yaml:5: priority: 0 is reserved for a master resigning; use 1..255 (255 for the address owner)",
		"t.yaml:6: advert_interval: 1 needs a unit, e.g. 1s",
		`t.yaml:7: address "ff02::1": a multicast address cannot be a VIP`,
		`t.yaml:8: duplicate instance name "web": also at line 2`,
		"t.yaml:10: duplicate VRID 51 on eth0: also instance web at line 2",
		"t.yaml:13: v3_checksum: applies to version 3 only; this instance is version 2",
		"t.yaml:15: VIP 198.51.100.10 is also in instance web at line 7",
		`t.yaml:17: garp.repeat: expected an integer, got "lots"`,
		`t.yaml:18: metrics_listen: "nowhere" is not host:port with a port of 1..65535 (use "" to turn metrics off)`,
		`t.yaml:19: unknown key "bogus" at the top level`,
	}
	cfg, err := Parse("t.yaml", []byte(in))
	if cfg != nil {
		t.Errorf("Parse returned a config along with the errors: %+v", cfg)
	}
	if diff := cmp.Diff(want, errorLines(t, err)); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}

// The same holds for trackers, hooks and sync groups, whose checks run
// after every instance has been read.
func TestParseReportsTrackingErrorsInLineOrder(t *testing.T) {
	in := `sync_groups:
  - name: edge
    instances: [web, nope]
state_dir: relative
instances:
  - name: web
    interface: eth0
    vrid: 51
    vips: [198.51.100.10]
    unicast_peers: [198.51.100.20]
    track:
      interfaces:
        - name: eth0
      scripts:
        - name: hc
          command: pgrep haproxy
          timeout: 5s
    notify:
      timeout: 1s
  - name: db
    interface: eth1
    vrid: 51
    vips: [198.51.100.20]
`
	want := []string{
		`t.yaml:3: sync group edge: no instance named "nope"`,
		`t.yaml:4: state_dir: "relative" is not an absolute path`,
		"t.yaml:10: unicast peer 198.51.100.20 is a VIP (instance db at line 23); list the peer's own address",
		"t.yaml:13: track.interfaces.name: eth0 need not be listed: the instance's own interface is always tracked (carrier loss is fault; set track.own_interface: false to track it with a weight instead)",
		`t.yaml:16: track.scripts.command: expected a list, got "pgrep haproxy"; the command is argv and never goes through a shell, ` +
			`so give each argument as its own item, e.g. ["/usr/bin/pgrep", "-x", "haproxy"]`,
		"t.yaml:17: track.scripts.timeout: 5s is longer than the interval (2s); a run must end before the next one is due",
		"t.yaml:19: notify: no hook; give at least one of master, backup, fault, stop, keepalived, command",
	}
	cfg, err := Parse("t.yaml", []byte(in))
	if cfg != nil {
		t.Errorf("Parse returned a config along with the errors: %+v", cfg)
	}
	if diff := cmp.Diff(want, errorLines(t, err)); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.yaml")
	cfg, err := Load(path)
	if cfg != nil {
		t.Errorf("Load returned a config: %+v", cfg)
	}
	want := []string{path + ": open: no such file or directory"}
	if diff := cmp.Diff(want, errorLines(t, err)); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}

func TestLoadSetsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vipd.yaml")
	if err := os.WriteFile(path, []byte(minimal), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if cfg.File != path {
		t.Errorf("File = %q, want %q", cfg.File, path)
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{Error{File: "a.yaml", Line: 3, Msg: "bad"}, "a.yaml:3: bad"},
		{Error{File: "a.yaml", Msg: "bad"}, "a.yaml: bad"},
		{Errors{{File: "a.yaml", Line: 1, Msg: "one"}, {File: "a.yaml", Line: 2, Msg: "two"}}, "a.yaml:1: one\na.yaml:2: two"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestConfigInstance(t *testing.T) {
	cfg, err := Load("testdata/valid.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if in := cfg.Instance("db_legacy-2"); in == nil || in.VRID != 52 {
		t.Errorf("Instance(db_legacy-2) = %+v, want the instance with VRID 52", in)
	}
	if in := cfg.Instance("nope"); in != nil {
		t.Errorf("Instance(nope) = %+v, want nil", in)
	}
}

func TestChecksumModeString(t *testing.T) {
	for m, want := range map[ChecksumMode]string{
		ChecksumPseudoHeader: "pseudo-header",
		ChecksumMessageOnly:  "message-only",
		ChecksumMode(7):      "ChecksumMode(7)",
	} {
		if got := m.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(m), got, want)
		}
	}
}
