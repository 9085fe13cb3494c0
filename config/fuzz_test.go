package config

import (
	"errors"
	"os"
	"testing"
)

// FuzzParse checks that no input makes Parse panic and that it always
// returns exactly one of a config or a non-empty, line-ordered Errors; a
// config it does return must satisfy the schema's invariants.
func FuzzParse(f *testing.F) {
	valid, err := os.ReadFile("testdata/valid.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		string(valid),
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
		minimal + "---\ninstances: []\n",
	} {
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
		case len(in.VIPs) == 0:
			t.Errorf("no VIPs in %+v", in)
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
	}
}
