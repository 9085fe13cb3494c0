package convert

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vipd/vipd/internal/kaconf"
)

// Report is one line of the converter's stderr:
// "file:line: keyword: what vipd does instead".
type Report struct {
	File    string
	Line    int
	Keyword string
	Msg     string
	// Dropped: the keyword's effect is lost in the converted file (exit
	// status 3). Otherwise the line only tells the reader something.
	Dropped bool
}

func (r Report) String() string {
	pos := r.File
	if r.Line > 0 {
		pos += ":" + strconv.Itoa(r.Line)
	}
	if r.Keyword == "" {
		return pos + ": " + r.Msg
	}
	return pos + ": " + r.Keyword + ": " + r.Msg
}

// Result is a converted configuration.
type Result struct {
	YAML      []byte
	Reports   []Report
	Instances int // instances written
}

// Exit statuses of vipd convert.
const (
	ExitOK      = 0 // everything mapped
	ExitFailed  = 1 // nothing usable (no instance)
	ExitDropped = 3 // usable, but something was dropped
)

// ExitCode is the exit status vipd convert ends with for r.
func (r *Result) ExitCode() int {
	if r.Instances == 0 {
		return ExitFailed
	}
	for _, rep := range r.Reports {
		if rep.Dropped {
			return ExitDropped
		}
	}
	return ExitOK
}

// DefaultPath is where a relative script name is looked for: a fixed list,
// so that the result does not depend on the PATH of whoever converts.
var DefaultPath = []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}

// Options change the conversion.
type Options struct {
	// LookPath resolves a program name without a '/' to an absolute
	// path; nil looks in DefaultPath on this host.
	LookPath func(name string) (string, bool)
}

// LookDefaultPath finds an executable regular file named name in
// DefaultPath.
func LookDefaultPath(name string) (string, bool) {
	for _, dir := range DefaultPath {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, true
		}
	}
	return "", false
}

// Convert maps the keepalived tree t to vipd YAML.
func Convert(t *kaconf.Tree, opt Options) *Result {
	if opt.LookPath == nil {
		opt.LookPath = LookDefaultPath
	}
	c := &conv{
		opt:        opt,
		scripts:    map[string]*kaconf.Node{},
		processes:  map[string]*kaconf.Node{},
		files:      map[string]*kaconf.Node{},
		version:    2,
		garp:       garpSettings{delay: "5", repeat: "5", refresh: "0"},
		reported:   map[string]bool{},
		vmacPrefix: defaultVMACPrefix,
	}
	for _, p := range t.Problems {
		if strings.HasPrefix(p.Msg, "note: ") {
			c.reports = append(c.reports, Report{File: p.File, Line: p.Line, Msg: p.Msg})
			continue
		}
		c.reports = append(c.reports, Report{File: p.File, Line: p.Line, Msg: p.Msg, Dropped: p.Lost})
	}
	// Definitions first: keepalived reads the whole file before it
	// resolves what an instance tracks.
	for _, n := range t.Nodes {
		switch n.Keyword {
		case "global_defs":
			c.globalDefs(n)
		case "vrrp_script":
			c.define(n, c.scripts)
		case "vrrp_track_process":
			c.define(n, c.processes)
		case "track_file", "vrrp_track_file":
			c.define(n, c.files)
		}
	}
	var groups []*kaconf.Node
	for _, n := range t.Nodes {
		switch n.Keyword {
		case "global_defs", "vrrp_script", "vrrp_track_process", "track_file", "vrrp_track_file":
		case "vrrp_instance":
			if in := c.instance(n); in != nil {
				c.instances = append(c.instances, in)
			}
		case "vrrp_sync_group":
			groups = append(groups, n)
		default:
			c.topLevel(n)
		}
	}
	c.vmacNames()
	for _, g := range groups {
		if sg := c.syncGroup(g); sg != nil {
			c.groups = append(c.groups, sg)
		}
	}
	if len(c.instances) == 0 {
		file := ""
		if len(t.Files) > 0 {
			file = t.Files[0]
		}
		c.reports = append(c.reports, Report{File: file, Msg: "no usable vrrp_instance: nothing to convert", Dropped: true})
	}
	slices.SortStableFunc(c.reports, func(a, b Report) int {
		if a.File != b.File {
			return fileOrder(t.Files, a.File) - fileOrder(t.Files, b.File)
		}
		return a.Line - b.Line
	})
	return &Result{YAML: c.write(t), Reports: c.reports, Instances: len(c.instances)}
}

func fileOrder(files []string, f string) int {
	if i := slices.Index(files, f); i >= 0 {
		return i
	}
	return len(files)
}

type conv struct {
	opt       Options
	reports   []Report
	reported  map[string]bool // categories reported once per file
	header    []string        // comments at the top of the output
	scripts   map[string]*kaconf.Node
	processes map[string]*kaconf.Node
	files     map[string]*kaconf.Node

	scriptUser, scriptGroup string
	version                 int
	versionSet              bool
	garp                    garpSettings
	instances               []*instance
	groups                  []*syncGroup
	instNames               names
	groupNames              names
	staticRoutes            []entry
	staticRules             []entry
	vmacPrefix              string // keepalived's vmac_prefix, for the notes
}

// garpSettings are keepalived's values as written (seconds, counts).
type garpSettings struct {
	delay, repeat, refresh string
	set                    bool
}

// drop reports a keyword whose effect is lost.
func (c *conv) drop(n *kaconf.Node, msg string, args ...any) {
	c.reports = append(c.reports, Report{File: n.File, Line: n.Line, Keyword: n.Keyword, Msg: fmt.Sprintf(msg, args...), Dropped: true})
}

// warn reports something a reader must know that loses nothing
// keepalived did.
func (c *conv) warn(n *kaconf.Node, msg string, args ...any) {
	c.reports = append(c.reports, Report{File: n.File, Line: n.Line, Keyword: n.Keyword, Msg: fmt.Sprintf(msg, args...)})
}

// dropOnce reports a whole category once per file (LVS).
func (c *conv) dropOnce(category string, n *kaconf.Node, msg string) {
	key := category + "\x00" + n.File
	if c.reported[key] {
		return
	}
	c.reported[key] = true
	c.drop(n, "%s", msg)
}

// extra warns when a line carries words that keepalived does not read.
func (c *conv) extra(n *kaconf.Node, want int) {
	if len(n.Args) > want {
		c.warn(n, "keepalived reads only %q and ignores %q after it; so does the converted file (put each keyword on its own line if they were meant)",
			strings.Join(append([]string{n.Keyword}, n.Args[:want]...), " "), strings.Join(n.Args[want:], " "))
	}
}

// arg returns n's i-th argument, reporting its absence.
func (c *conv) arg(n *kaconf.Node, i int) (string, bool) {
	if i < len(n.Args) {
		return n.Args[i], true
	}
	c.warn(n, "value missing; keepalived ignores the line")
	return "", false
}

const (
	msgEmail = "vipd sends no e-mail; alerts go through Prometheus (vipd_* metrics and the rules in deploy/prometheus)"
	msgSNMP  = "vipd has no SNMP agent; its state is in Prometheus metrics (metrics_listen) and vipd status --json"
	msgLVS   = "LVS (virtual_server, real_server and their checkers) is not part of vipd; these blocks are skipped (run keepalived's checker or another load balancer for them)"
	msgIPv6  = "vipd does not carry IPv6 yet; left out"
)

// topLevel handles a root keyword other than the ones Convert walks.
func (c *conv) topLevel(n *kaconf.Node) {
	switch n.Keyword {
	case "virtual_server", "virtual_server_group":
		c.dropOnce("lvs", n, msgLVS)
	case "static_routes", "static_rules":
		c.routesAndRules(n, &c.staticRoutes, &c.staticRules)
	case "static_ipaddress":
		c.drop(n, "vipd does not manage static addresses; configure them with the system's network configuration")
	case "bfd_instance", "track_bfd":
		c.drop(n, "vipd has no BFD")
	case "garp_group", "linkbeat_interfaces", "track_group", "net_namespace", "net_namespace_ipvs", "namespace_with_ipsets",
		"instance", "use_pid_dir", "child_wait_time", "SSL", "interface_up_down_delays":
		c.drop(n, "no vipd equivalent")
	default:
		c.warn(n, "unknown keyword (keepalived reports and ignores it too)")
	}
}

// globalDefs reads the global_defs block.
func (c *conv) globalDefs(g *kaconf.Node) {
	for _, n := range g.Block {
		switch k := n.Keyword; {
		case k == "router_id":
			if len(n.Args) > 0 {
				c.header = append(c.header, "keepalived router_id "+n.Args[0]+": vipd has no router id; its logs and metrics name the instances")
			}
		case k == "script_user":
			if u, ok := c.arg(n, 0); ok {
				c.scriptUser = u
				if len(n.Args) > 1 {
					c.scriptGroup = n.Args[1]
				}
				c.extra(n, 2)
			}
		case k == "enable_script_security":
			c.header = append(c.header, "enable_script_security: vipd always refuses hook and script programs that a user other than root or vipd's own can change (vipd check says which)")
		case k == "vrrp_version":
			if v, ok := c.arg(n, 0); ok {
				switch v {
				case "2", "3":
					c.version, _ = strconv.Atoi(v)
					c.versionSet = true
				default:
					c.warn(n, "%q is not 2 or 3; keepalived ignores it", v)
				}
			}
		case k == "vrrp_garp_master_delay":
			c.garp.delay, c.garp.set = firstArg(n, c.garp.delay), true
		case k == "vrrp_garp_master_repeat":
			c.garp.repeat, c.garp.set = firstArg(n, c.garp.repeat), true
		case k == "vrrp_garp_master_refresh":
			c.garp.refresh, c.garp.set = firstArg(n, c.garp.refresh), true
		case k == "vrrp_garp_master_refresh_repeat", k == "vrrp_garp_interval", k == "vrrp_gna_interval", k == "vrrp_min_garp":
			c.warn(n, "vipd's gratuitous ARP timing is garp.repeat, garp.interval and garp.refresh; this fine-tuning is not carried over")
		case strings.HasPrefix(k, "notification_email"), strings.HasPrefix(k, "smtp_"), k == "no_email_faults":
			c.drop(n, msgEmail)
		case strings.HasPrefix(k, "snmp_") || strings.HasPrefix(k, "enable_snmp") || k == "enable_traps":
			c.drop(n, msgSNMP)
		case strings.HasPrefix(k, "lvs_") || strings.HasPrefix(k, "checker_") && !slices.Contains(tuningKeywords, k) || strings.HasPrefix(k, "nftables_ipvs") ||
			k == "rs_init_notifies" || k == "no_checker_emails" || k == "smtp_alert_checker":
			c.dropOnce("lvs-global", n, msgLVS)
		case k == "vmac_prefix":
			c.vmacPrefix = firstArg(n, c.vmacPrefix)
			c.warn(n, "vipd names a macvlan virtual_mac_name, by default vrrp4.<VRID> (vrrp6.<VRID> for an IPv6 instance); the prefix is not carried over")
		case k == "vmac_addr_prefix":
			c.warn(n, "vipd makes no macvlan for VIPs on other interfaces (a VIP's use_vmac is reported where it is used)")
		case k == "vrrp_skip_check_adv_addr":
			c.warn(n, "vipd logs and counts an advert whose address list differs (vipd_vrrp_address_list_mismatch_total) and does not drop it")
		case k == "vrrp_check_unicast_src":
			c.warn(n, "vipd accepts unicast adverts from the listed unicast_peers only")
		case k == "vrrp_higher_prio_send_advert":
			c.warn(n, "always on in vipd")
		case slices.Contains(tuningKeywords, k) || strings.HasPrefix(k, "vrrp_rlimit") || strings.HasPrefix(k, "bfd_") ||
			strings.HasPrefix(k, "vrrp_netlink_") || strings.HasPrefix(k, "process_monitor_"):
			c.header = append(c.header, "global_defs "+k+": process tuning of keepalived; vipd's is in its systemd unit (deploy/vipd.service)")
		case k == "vrrp_strict":
			c.drop(n, "vipd has no strict mode: it accepts traffic to its VIPs, and adverts with authentication or another address list")
		case k == "vrrp_mcast_group4":
			c.drop(n, "vipd sends adverts to 224.0.0.18 (or to unicast_peers); another multicast group is not supported")
		case k == "vrrp_mcast_group6":
			c.drop(n, "vipd sends IPv6 adverts to ff02::12 (or to unicast_peers); another multicast group is not supported")
		case k == "vrrp_iptables" || k == "vrrp_ipsets" || k == "nftables" || k == "nftables_priority" || k == "nftables_ifindex" || k == "nftables_counters":
			c.drop(n, "vipd installs no firewall rules for its VIPs")
		case k == "v3_checksum_as_v2":
			c.drop(n, "set v3_checksum: message-only on the version 3 instances that need it")
		case globalKnown(k):
			c.drop(n, "no vipd equivalent")
		default:
			c.warn(n, "unknown keyword in global_defs (keepalived reports and ignores it too)")
		}
	}
}

var tuningKeywords = []string{
	"vrrp_no_swap", "vrrp_priority", "vrrp_rt_priority", "vrrp_cpu_affinity", "process_names", "process_name",
	"vrrp_process_name", "checker_process_name", "lvs_process_name", "bfd_process_name", "use_symlink_paths",
	"vrrp_rx_bufs_policy", "vrrp_rx_bufs_multiplier", "umask", "random_seed", "reload_check_config",
	"reload_time_file", "reload_repeat", "reload_file", "include_check", "config_save_dir", "tmp_config_directory",
	"data_use_instance", "json_version", "iproute_usr_dir", "iproute_etc_dir", "state_dump_file", "stats_dump_file",
	"json_dump_file", "linkbeat_use_polling", "dynamic_interfaces", "log_unknown_vrids", "max_auto_priority",
	"min_auto_priority_delay", "set_supplementary_groups", "vrrp_startup_delay", "vrrp_delay_after_boot",
	"disable_local_igmp", "default_interface",
	"checker_no_swap", "checker_priority", "checker_rt_priority", "checker_cpu_affinity", "checker_rlimit_rttime", "checker_rlimit_rtime",
}

func globalKnown(k string) bool {
	return slices.Contains([]string{
		"startup_script", "startup_script_timeout", "shutdown_script", "shutdown_script_timeout",
		"vrrp_garp_lower_prio_delay", "vrrp_garp_lower_prio_repeat", "vrrp_down_timer_adverts", "vrrp_garp_extra_if",
		"vrrp_vmac_garp_intvl", "vrrp_lower_prio_no_advert", "notify_fifo", "notify_fifo_script", "vrrp_notify_fifo",
		"vrrp_notify_fifo_script", "vrrp_notify_priority_changes", "fifo_write_vrrp_states_on_reload",
		"enable_dbus", "dbus_service_name", "dbus_no_interface_name", "vrrp_owner_ignore_adverts",
		"net_namespace", "net_namespace_ipvs", "namespace_with_ipsets", "use_pid_dir", "instance", "child_wait_time",
	}, k)
}

func firstArg(n *kaconf.Node, def string) string {
	if len(n.Args) > 0 {
		return n.Args[0]
	}
	return def
}

// define records a named definition block (vrrp_script and the like).
func (c *conv) define(n *kaconf.Node, into map[string]*kaconf.Node) {
	if len(n.Args) == 0 {
		c.warn(n, "no name given; keepalived ignores the block")
		return
	}
	if prev, dup := into[n.Args[0]]; dup {
		c.warn(n, "%s is defined again (first at %s); keepalived keeps both, the converter the first", n.Args[0], prev.Pos())
		return
	}
	into[n.Args[0]] = n
}

// seconds reads keepalived's decimal seconds ("1", "0.5").
func seconds(s string) (time.Duration, bool) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || f > 1e6 {
		return 0, false
	}
	return time.Duration(f*1000+0.5) * time.Millisecond, true
}

// duration writes d as a person would: 1s, 500ms, 1m30s, 1h.
func duration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// names makes vipd names ([a-z0-9_-]{1,32}) from keepalived ones,
// deterministically and without collisions, in the order they are asked for.
type names struct{ used map[string]bool }

func (u *names) make(orig string) string {
	if u.used == nil {
		u.used = map[string]bool{}
	}
	base := sanitize(orig)
	n := base
	for i := 2; u.used[n]; i++ {
		suffix := "-" + strconv.Itoa(i)
		n = base[:min(len(base), 32-len(suffix))] + suffix
	}
	u.used[n] = true
	return n
}

// sanitize lowercases s and replaces every other character outside
// [a-z0-9_-] with '_', within 32 characters.
func sanitize(s string) string {
	b := []byte(strings.ToLower(s))
	for i, ch := range b {
		if !('a' <= ch && ch <= 'z' || '0' <= ch && ch <= '9' || ch == '_' || ch == '-') {
			b[i] = '_'
		}
	}
	if len(b) > 32 {
		b = b[:32]
	}
	if len(b) == 0 {
		return "unnamed"
	}
	return string(b)
}

// parseAddr reads an address, reporting whether it is IPv6.
func parseAddr(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	return a, err == nil
}
