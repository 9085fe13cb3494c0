package convert

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vipd/vipd/config"
	"github.com/vipd/vipd/internal/kaconf"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// fakePath makes the resolution of relative programs independent of the
// host that runs the tests.
func fakePath(name string) (string, bool) {
	if name == "pidof" {
		return "/usr/bin/pidof", true
	}
	return "", false
}

func convertFile(t *testing.T, path string) *Result {
	t.Helper()
	tree, err := kaconf.ReadFile(path, kaconf.Options{ConfigID: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return Convert(tree, Options{LookPath: fakePath})
}

// Each fixture's YAML and report (exit status and stderr lines) match the
// golden files; go test -update rewrites them.
func TestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.conf")
	if len(files) == 0 {
		t.Fatal("no fixtures")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			res := convertFile(t, f)
			var rep strings.Builder
			fmt.Fprintf(&rep, "exit %d\n", res.ExitCode())
			for _, r := range res.Reports {
				rep.WriteString(r.String() + "\n")
			}
			base := strings.TrimSuffix(f, ".conf")
			for _, g := range []struct{ path, got string }{{base + ".yaml", string(res.YAML)}, {base + ".stderr", rep.String()}} {
				if *update {
					if err := os.WriteFile(g.path, []byte(g.got), 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(g.path)
				if err != nil {
					t.Fatal(err)
				}
				if string(want) != g.got {
					t.Errorf("%s differs (go test -update to accept):\n--- got\n%s\n--- want\n%s", g.path, g.got, want)
				}
			}
		})
	}
}

// parseOutput runs the real config parser over a converted file and fails
// on every error.
func parseOutput(t *testing.T, name string, yaml []byte) {
	t.Helper()
	_, err := config.Parse(name, yaml)
	if err == nil {
		return
	}
	errs, ok := err.(config.Errors)
	if !ok {
		t.Fatalf("%s: %v", name, err)
	}
	for _, e := range errs {
		t.Errorf("converted %s does not parse: %v\n%s", name, e, yaml)
	}
}

// The YAML written for every fixture is accepted by vipd's parser.
func TestOutputParses(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.conf")
	for _, f := range files {
		res := convertFile(t, f)
		if res.Instances == 0 {
			if res.ExitCode() != ExitFailed {
				t.Errorf("%s: no instance but exit %d", f, res.ExitCode())
			}
			continue
		}
		parseOutput(t, f, res.YAML)
	}
}

func TestSanitizeNames(t *testing.T) {
	var n names
	got := []string{n.make("VI_1"), n.make("vi_1"), n.make("Web.Front"), n.make(strings.Repeat("X", 40)), n.make(strings.Repeat("x", 40)), n.make("")}
	want := []string{"vi_1", "vi_1-2", "web_front", strings.Repeat("x", 32), strings.Repeat("x", 30) + "-2", "unnamed"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("names %q, want %q", got, want)
	}
}

// Negating keepalived's "while up" weights into the priority gives the
// same effective priority for every combination of tracker states, unless
// the sum leaves 1..254.
func TestWeightMappingExact(t *testing.T) {
	noop := func(int) {}
	ws := []weighted{{weight: 20, set: noop}, {weight: -40, set: noop}, {weight: 10, reverse: true, set: noop}, {weight: -5, reverse: true, set: noop}}
	// up-weights: +20 and the reversed -5; base 100 -> 115.
	if !sameEffective(100, 115, ws) {
		t.Error("mapping of 100 to 115 is not exact")
	}
	if sameEffective(100, 120, ws) {
		t.Error("a wrong base is reported exact")
	}
	if sameEffective(254, 254, []weighted{{weight: 253, set: noop}, {weight: -253, set: noop}}) {
		t.Error("a clamped sum is reported exact")
	}
}

// A sync group of one instance moves as its member does: left out with a
// warning (exit 0); with notify scripts of its own, left out and reported
// as dropped (exit 3).
func TestSyncGroupOfOne(t *testing.T) {
	const inst = "vrrp_instance A {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n  198.18.0.100\n }\n}\n"
	for _, tt := range []struct {
		group string
		exit  int
	}{
		{"vrrp_sync_group G {\n group {\n  A\n }\n}\n", ExitOK},
		{"vrrp_sync_group G {\n group {\n  A\n }\n notify_master /bin/true\n}\n", ExitDropped},
	} {
		f := filepath.Join(t.TempDir(), "keepalived.conf")
		if err := os.WriteFile(f, []byte(tt.group+inst), 0o600); err != nil {
			t.Fatal(err)
		}
		res := convertFile(t, f)
		if res.ExitCode() != tt.exit || len(res.Reports) != 1 || !strings.Contains(res.Reports[0].Msg, "fewer than 2 instances") {
			t.Errorf("%q: exit %d, reports %v; want exit %d and one report", tt.group, res.ExitCode(), res.Reports, tt.exit)
		}
		if strings.Contains(string(res.YAML), "sync_groups") {
			t.Errorf("%q: a group of one is written:\n%s", tt.group, res.YAML)
		}
		parseOutput(t, f, res.YAML)
	}
}
