package config

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// proc returns minimal with one tracked process, sshd, whose item starts
// on line 8, and extra lines of that item starting at line 10.
func proc(extra ...string) string {
	lines := []string{"track:", "  processes:", "    - name: sshd", "      process: sshd"}
	for _, l := range extra {
		lines = append(lines, "      "+l)
	}
	return one(lines...)
}

func TestParseTrackProcessesAndOwnInterface(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		track Track
	}{
		{"process defaults", proc(),
			Track{Processes: []TrackProcess{{Name: "sshd", Process: "sshd", Quorum: 1, Interval: time.Second, Line: 8}}}},
		{"every process key", proc("args: [-D, '-p', 22]", "quorum: 2", "quorum_max: 4", "delay: 1500ms", "interval: 250ms", "weight: -30"),
			Track{Processes: []TrackProcess{{Name: "sshd", Process: "sshd", Args: []string{"-D", "-p", "22"}, MatchArgs: true,
				Quorum: 2, QuorumMax: 4, Delay: 1500 * time.Millisecond, Interval: 250 * time.Millisecond, Weight: -30, Line: 8}}}},
		{"empty args means no arguments", proc("args: []"),
			Track{Processes: []TrackProcess{{Name: "sshd", Process: "sshd", Args: []string{}, MatchArgs: true, Quorum: 1, Interval: time.Second, Line: 8}}}},
		{"a path, 15-byte name, limits", one("track:", "  processes:",
			"    - {name: a, process: /usr/sbin/haproxy, quorum: 1000, quorum_max: 1000, delay: 1h, interval: 1h, weight: 254}",
			"    - {name: b, process: abcdefghijklmno, interval: 100ms, delay: 0, weight: -254}"),
			Track{Processes: []TrackProcess{
				{Name: "a", Process: "/usr/sbin/haproxy", Quorum: 1000, QuorumMax: 1000, Delay: time.Hour, Interval: time.Hour, Weight: 254, Line: 8},
				{Name: "b", Process: "abcdefghijklmno", Quorum: 1, Interval: 100 * time.Millisecond, Weight: -254, Line: 9},
			}}},
		{"own_interface true is the default", one("track:", "  own_interface: true"), Track{}},
		{"own_interface false", one("track:", "  own_interface: false"), Track{IgnoreOwnInterface: true}},
		{"own interface listed with a weight once untracked", one("track:", "  own_interface: false", "  interfaces: [{name: eth0, weight: -50}]"),
			Track{IgnoreOwnInterface: true, Interfaces: []TrackInterface{{Name: "eth0", Weight: -50, Line: 8}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse("t.yaml", []byte(tt.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(tt.track, got.Instances[0].Track, cmpOpts); diff != "" {
				t.Errorf("Track (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseTrackProcessErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"processes not a list", one("track:", "  processes: {name: a}"), []string{"t.yaml:7: track.processes: expected a list, got a mapping"}},
		{"without name and process", one("track:", "  processes:", "    - quorum: 2"), []string{
			`t.yaml:8: missing required key "name" in tracked process`,
			`t.yaml:8: missing required key "process" in tracked process`,
		}},
		{"unknown key", proc("full_command: true"), []string{`t.yaml:10: unknown key "full_command" in tracked process`}},
		{"bad name", one("track:", "  processes:", "    - {name: SSHd, process: sshd}"),
			[]string{`t.yaml:8: track.processes.name: "SSHd" is not a valid process tracker name; use 1 to 32 characters from a-z, 0-9, _ and -`}},
		{"name twice", one("track:", "  processes:", "    - {name: a, process: sshd}", "    - {name: a, process: cron}"),
			[]string{"t.yaml:9: tracked process a is defined twice in this instance (first at line 8)"}},
		{"process empty", one("track:", "  processes:", `    - {name: a, process: ""}`),
			[]string{"t.yaml:8: track.processes.process: must not be empty; give a process name as ps shows it (e.g. haproxy) or the program's absolute path"}},
		{"process name too long", one("track:", "  processes:", "    - {name: a, process: kube-controller-manager}"),
			[]string{`t.yaml:8: track.processes.process: "kube-controller-manager" is 23 bytes; the kernel keeps at most 15 of a process name (use "kube-controller", or the program's absolute path)`}},
		{"process relative path", one("track:", "  processes:", "    - {name: a, process: sbin/haproxy}"),
			[]string{`t.yaml:8: track.processes.process: "sbin/haproxy" contains '/' but is not an absolute path; give a process name without '/' or the program's absolute path`}},
		{"process with a newline", one("track:", "  processes:", `    - {name: a, process: "a\nb"}`),
			[]string{"t.yaml:8: track.processes.process: contains a NUL byte or a newline"}},
		{"process a list", one("track:", "  processes:", "    - {name: a, process: [sshd]}"),
			[]string{"t.yaml:8: track.processes.process: expected a string, got a list"}},
		{"args a string", proc("args: -D"), []string{`t.yaml:10: track.processes.args: expected a list, got "-D"`}},
		{"args with NUL", proc(`args: [-D, "a\0b"]`), []string{"t.yaml:10: track.processes.args: argument 2 contains a NUL byte"}},
		{"args item a mapping", proc("args: [{a: b}]"), []string{"t.yaml:10: track.processes.args: expected a string, got a mapping"}},
		{"quorum 0", proc("quorum: 0"), []string{"t.yaml:10: track.processes.quorum: 0 is out of range 1..1000"}},
		{"quorum 1001", proc("quorum: 1001"), []string{"t.yaml:10: track.processes.quorum: 1001 is out of range 1..1000"}},
		{"quorum text", proc("quorum: many"), []string{`t.yaml:10: track.processes.quorum: expected an integer, got "many"`}},
		{"quorum_max negative", proc("quorum_max: -1"), []string{"t.yaml:10: track.processes.quorum_max: -1 is out of range 0..1000"}},
		{"quorum_max below quorum", proc("quorum: 3", "quorum_max: 2"),
			[]string{"t.yaml:11: track.processes.quorum_max: 2 is less than quorum (3); the tracker could never be up"}},
		{"delay negative", proc("delay: -1s"), []string{"t.yaml:10: track.processes.delay: -1s is out of range 0s..1h"}},
		{"delay too long", proc("delay: 2h"), []string{"t.yaml:10: track.processes.delay: 2h is out of range 0s..1h"}},
		{"delay without unit", proc("delay: 5"), []string{"t.yaml:10: track.processes.delay: 5 needs a unit, e.g. 5s"}},
		{"interval too short", proc("interval: 10ms"), []string{"t.yaml:10: track.processes.interval: 10ms is out of range 100ms..1h"}},
		{"interval too long", proc("interval: 2h"), []string{"t.yaml:10: track.processes.interval: 2h is out of range 100ms..1h"}},
		{"weight out of range", proc("weight: 255"), []string{"t.yaml:10: track.processes.weight: 255 is out of range -254..254"}},
		{"own_interface not a bool", one("track:", "  own_interface: no-thanks"), []string{`t.yaml:7: track.own_interface: expected true or false, got "no-thanks"`}},
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
