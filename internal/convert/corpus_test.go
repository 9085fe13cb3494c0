package convert

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/vipd/vipd/config"
	"github.com/vipd/vipd/internal/kaconf"
)

// allowedDrop says whether a dropped keyword is one the issue accepts
// (e-mail, SNMP, LVS, IPv6), or an address keepalived ignores too. use_vmac is mapped to virtual_mac and is not
// among them.
func allowedDrop(r Report) bool {
	for _, m := range []string{msgEmail, msgSNMP, msgLVS, msgIPv6, msgOtherFamilyVIP} {
		if r.Msg == m {
			return true
		}
	}
	return false
}

type outInstance struct {
	Name      string
	Interface string
	VRID      int
	Priority  int
	Version   int
	Advert    string `yaml:"advert_interval"`
	Preempt   *bool
	AuthPass  string   `yaml:"auth_pass"`
	Source    string   `yaml:"source_address"`
	Peers     []string `yaml:"unicast_peers"`
	VIPs      []yaml.Node
	Track     struct{ Scripts []struct{ Name string } }
	Notify    map[string]any
	VMAC      bool   `yaml:"virtual_mac"`
	VMACName  string `yaml:"virtual_mac_name"`
}

// The samples of ../shared/keepalived-corpus (beside the repository in CI;
// $VIPD_KEEPALIVED_CORPUS names another directory of keepalived.conf files)
// convert with exit 0, or 3 for the accepted reasons only; the YAML passes
// what `vipd check` checks (config.Load); and each instance keeps what
// kaconf reads from the sample.
func TestCorpus(t *testing.T) {
	dir := filepath.Join("..", "..", "..", "shared", "keepalived-corpus")
	if d := os.Getenv("VIPD_KEEPALIVED_CORPUS"); d != "" {
		dir = d
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.conf"))
	if len(files) == 0 {
		t.Skipf("no keepalived corpus at %s", dir)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			tree, err := kaconf.ReadFile(f, kaconf.Options{})
			if err != nil {
				t.Fatal(err)
			}
			res := Convert(tree, Options{})
			switch res.ExitCode() {
			case ExitOK:
			case ExitDropped:
				for _, r := range res.Reports {
					if r.Dropped && !allowedDrop(r) {
						t.Errorf("dropped for a reason outside the accepted ones: %s", r)
					}
				}
			default:
				t.Fatalf("exit %d: %v", res.ExitCode(), res.Reports)
			}
			parseOutput(t, f, res.YAML)
			out := filepath.Join(t.TempDir(), "vipd.yaml")
			if err := os.WriteFile(out, res.YAML, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := config.Load(out); err != nil {
				t.Errorf("vipd check refuses the converted %s: %v", f, err)
			}
			var got struct{ Instances []outInstance }
			if err := yaml.Unmarshal(res.YAML, &got); err != nil {
				t.Fatal(err)
			}
			checkInstances(t, tree, got.Instances)
		})
	}
}

func checkInstances(t *testing.T, tree *kaconf.Tree, got []outInstance) {
	version := 2
	scripts := map[string]bool{}
	for _, n := range tree.Nodes {
		if n.Keyword == "global_defs" {
			for _, k := range n.Block {
				if k.Keyword == "vrrp_version" {
					version, _ = strconv.Atoi(k.Args[0])
				}
			}
		}
		if n.Keyword == "vrrp_script" {
			scripts[n.Args[0]] = true
		}
	}
	i := 0
	for _, n := range tree.Nodes {
		if n.Keyword != "vrrp_instance" {
			continue
		}
		if i >= len(got) {
			t.Fatalf("instance %s missing", n.Args[0])
		}
		g := got[i]
		i++
		want := struct {
			iface              string
			vrid, prio, ver    int
			advert             string
			preempt            bool
			pass, source       string
			peers, vips, hooks []string
			scripts            int
			state              string
			vmac               bool
			vmacName           string
		}{prio: 100, ver: version, advert: "1s", preempt: true}
		nopreempt := false
		positive := false
		for _, k := range n.Block {
			arg := ""
			if len(k.Args) > 0 {
				arg = k.Args[0]
			}
			switch k.Keyword {
			case "interface":
				want.iface = arg
			case "virtual_router_id":
				want.vrid, _ = strconv.Atoi(arg)
			case "priority":
				want.prio, _ = strconv.Atoi(arg)
			case "version":
				want.ver, _ = strconv.Atoi(arg)
			case "advert_int":
				d, _ := seconds(arg)
				want.advert = duration(d)
			case "nopreempt":
				nopreempt = true
			case "state":
				want.state = arg
			case "authentication":
				for _, a := range k.Block {
					if a.Keyword == "auth_pass" {
						want.pass = a.Args[0]
						if len(want.pass) > 8 {
							want.pass = want.pass[:8]
						}
					}
				}
			case "unicast_src_ip", "mcast_src_ip":
				want.source = arg
			case "unicast_peer":
				for _, a := range k.Block {
					if !strings.Contains(a.Keyword, ":") {
						want.peers = append(want.peers, a.Keyword)
					}
				}
			case "virtual_ipaddress", "virtual_ipaddress_excluded":
				for _, a := range k.Block {
					if !strings.Contains(a.Keyword, ":") {
						want.vips = append(want.vips, a.Keyword)
					}
				}
			case "track_script":
				for _, a := range k.Block {
					if scripts[a.Keyword] {
						want.scripts++
					}
				}
			case "notify_master", "notify_backup", "notify_fault", "notify_stop", "notify":
				want.hooks = append(want.hooks, notifyKeys[k.Keyword])
			case "use_vmac":
				want.vmac = true
				for _, a := range k.Args {
					if !strings.Contains(a, ":") && a != "name" && a != "netlink_notify_msg" && want.vmacName == "" {
						want.vmacName = a
					}
				}
			}
		}
		for _, def := range tree.Nodes {
			if def.Keyword == "vrrp_script" {
				for _, k := range def.Block {
					if k.Keyword == "weight" && !strings.HasPrefix(k.Args[0], "-") && k.Args[0] != "0" {
						positive = true
					}
				}
			}
		}
		want.preempt = !nopreempt || want.state == "MASTER" || want.prio == 255
		var vips []string
		for _, v := range g.VIPs {
			if v.Kind == yaml.ScalarNode {
				vips = append(vips, v.Value)
			} else {
				var m struct{ Address string }
				_ = v.Decode(&m)
				vips = append(vips, m.Address)
			}
		}
		var hooks []string
		for k := range g.Notify {
			hooks = append(hooks, k)
		}
		slices.Sort(hooks)
		slices.Sort(want.hooks)
		preempt := g.Preempt == nil || *g.Preempt
		prioOK := g.Priority == want.prio || positive && g.Priority > want.prio
		if g.Interface != want.iface || g.VRID != want.vrid || !prioOK || g.Version != want.ver ||
			g.Advert != want.advert || preempt != want.preempt || g.AuthPass != want.pass || g.Source != want.source ||
			!slices.Equal(g.Peers, want.peers) || !slices.Equal(vips, want.vips) || len(g.Track.Scripts) != want.scripts ||
			!slices.Equal(hooks, want.hooks) || g.VMAC != want.vmac || g.VMACName != want.vmacName {
			t.Errorf("instance %s: got %+v (vips %q, hooks %q), want %+v", n.Args[0], g, vips, hooks, want)
		}
	}
	if i != len(got) {
		t.Errorf("%d instances written, %d in the file", len(got), i)
	}
}
