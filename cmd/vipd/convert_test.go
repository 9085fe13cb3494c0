package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// vipd convert: YAML on stdout, reports on stderr, exit 0/3/1, and stdin
// when FILE is "-".
func TestConvert(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.conf")
	dropped := filepath.Join(dir, "dropped.conf")
	empty := filepath.Join(dir, "empty.conf")
	conf := "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n virtual_ipaddress {\n  198.18.0.100\n }\n}\n"
	for p, s := range map[string]string{good: conf, dropped: strings.Replace(conf, " interface eth0\n", " interface eth0\n smtp_alert\n", 1), empty: "global_defs {\n}\n"} {
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errOut := runCLI("convert", good)
	if code != 0 || !strings.Contains(out, "  - name: vi_1") || !strings.Contains(out, "vrid: 51") || errOut != "" {
		t.Errorf("convert good: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, errOut = runCLI("convert", dropped)
	if code != 3 || !strings.Contains(out, "vrid: 51") || !strings.HasPrefix(errOut, dropped+":3: smtp_alert: ") {
		t.Errorf("convert dropped: exit %d, stderr %q", code, errOut)
	}
	if code, out, _ := runCLI("convert", empty); code != 1 || out != "" {
		t.Errorf("convert with no instance: exit %d, stdout %q; want 1 and nothing", code, out)
	}
	if code, _, errOut := runCLI("convert", filepath.Join(dir, "missing.conf")); code != 1 || !strings.Contains(errOut, "missing.conf") {
		t.Errorf("convert missing: exit %d, stderr %q", code, errOut)
	}
	var o, e bytes.Buffer
	if code := runIn([]string{"convert", "-"}, strings.NewReader(conf), &o, &e); code != 0 || !strings.Contains(o.String(), "vrid: 51") {
		t.Errorf("convert from stdin: exit %d, stdout %q, stderr %q", code, o.String(), e.String())
	}
	if code, _, errOut := runCLI("convert", "-h"); code != 0 || !strings.Contains(errOut, "usage: vipd convert") {
		t.Errorf("convert -h: exit %d, stderr %q", code, errOut)
	}
}
