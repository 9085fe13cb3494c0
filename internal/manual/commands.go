package manual

// Commands is vipd's command line: the source of `vipd --help`, of each
// command's `-h`, of the Command line tables of README.md and DESIGN.md,
// of vipd(8) and of the shell completions. Text is Markdown inline.
var Commands = []Command{
	{
		Name:     "run",
		Synopsis: "vipd run [--config FILE] [--socket PATH]",
		Short:    "run the daemon in the foreground",
		Flags: []Flag{
			{Name: "config", Arg: "FILE", Default: "/etc/vipd/vipd.yaml", Note: "default `/etc/vipd/vipd.yaml`", Help: "configuration file"},
			{Name: "socket", Arg: "PATH", Default: "", Note: "overrides `control_socket`", Help: "control socket path (overrides control_socket)"},
		},
		Summary: "the daemon, in the foreground (systemd `Type=notify`); SIGTERM/SIGINT resign and exit 0; SIGHUP reloads",
		Detail:  "the daemon, in the foreground (systemd `Type=notify`)",
	},
	{
		Name:     "check",
		Synopsis: "vipd check [--config FILE]",
		Short:    "validate a configuration file",
		Flags: []Flag{
			{Name: "config", Arg: "FILE", Default: "/etc/vipd/vipd.yaml", Note: "", Help: "configuration file"},
		},
		Summary: "validate a config: exit 0, or exit 1 with one `file:line: message` per problem",
		Detail:  "validate a configuration: prints `FILE: ok, N instance(s)` on stdout and each warning as `file:line: warning: message` on stderr, exit 0; or one `file:line: message` per problem on stderr, exit 1",
	},
	{
		Name:     "status",
		Synopsis: "vipd status [--socket PATH | --config FILE] [--json]",
		Short:    "show the running daemon's instances",
		Flags: []Flag{
			{Name: "socket", Arg: "PATH", Default: "", Note: "", Help: "control socket (default /run/vipd/vipd.sock, or the config's control_socket)"},
			{Name: "config", Arg: "FILE", Default: "", Note: "read `control_socket` from it", Help: "read the control socket's path from this configuration file"},
			{Name: "json", Arg: "", Default: "false", Note: "", Help: "print the status as JSON"},
		},
		Summary: "the running daemon's instances: state, priority (effective/configured), master, since when, VIPs with their descriptions and whether each is on the interface",
		Detail:  "`GET /v1/status` as a table (instance, interface, VRID, state with `(maint)` or `(held)`, effective/configured priority, master, time since the last transition, each VIP `on`, `off` or `failing` (with `[label]`, or `[interface]` when it lives on another one) with description and owner, `-` for none; a line per instance whose adverts come from a `source_address` other than the primary address; lines cut at 100 columns), then failing VIP adds, a line per upstream of the upstream check (`web: upstream moved: 198.18.0.1 (default gateway; 1 attempt, checked 3.0s ago)`, `not moved` with the reason), a lasting lower-priority master and a failed reload; `--json` prints the body as is",
	},
	{
		Name:     "events",
		Synopsis: "vipd events [--socket PATH | --config FILE] [--json]",
		Short:    "follow the daemon's state transitions",
		Flags: []Flag{
			{Name: "socket", Arg: "PATH", Default: "", Note: "", Help: "control socket (default /run/vipd/vipd.sock, or the config's control_socket)"},
			{Name: "config", Arg: "FILE", Default: "", Note: "", Help: "read the control socket's path from this configuration file"},
			{Name: "json", Arg: "", Default: "false", Note: "", Help: "print each event as a JSON line"},
		},
		Summary: "follow the state transitions as they happen",
		Detail:  "follow `GET /v1/events`: one line per transition (`TIME INSTANCE IFACE vrid N: FROM -> TO (REASON)`, with `advert from PEER priority P` when an advert caused it), or the JSON lines; exits 1 when the daemon ends the stream",
	},
	{
		Name:     "maintenance",
		Args:     "INSTANCE on|off",
		Synopsis: "vipd maintenance INSTANCE on|off [--socket PATH | --config FILE]",
		Short:    "drain an instance (resign, stay backup) or return it",
		Flags: []Flag{
			{Name: "socket", Arg: "PATH", Default: "", Note: "", Help: "control socket (default /run/vipd/vipd.sock, or the config's control_socket)"},
			{Name: "config", Arg: "FILE", Default: "", Note: "", Help: "read the control socket's path from this configuration file"},
		},
		Summary: "drain an instance: resign at once and stay backup until `off` (root only; survives restarts)",
		Detail:  "`POST /v1/maintenance` (root only); prints `INSTANCE: maintenance on\\|off`",
	},
	{
		Name:     "doctor",
		Synopsis: "vipd doctor [--config FILE] [--listen DURATION]",
		Short:    "read-only checks of this host for the configured instances",
		Flags: []Flag{
			{Name: "config", Arg: "FILE", Default: "/etc/vipd/vipd.yaml", Note: "", Help: "configuration file"},
			{Name: "listen", Arg: "DURATION", Default: "0s", Note: "default 0: 3 × the longest advert interval + 0.5 s, at most 10 s", Help: "how long to listen for adverts (default: 3 advert intervals + 0.5s, at most 10s)"},
		},
		Summary: "read-only checks of this host for the configured instances, each with a verdict and the fix (`--listen`: how long to listen for the peers' adverts; default 3 advert intervals + 0.5 s, at most 10 s)",
		Detail:  "read-only checks: each VIP documented; per interface: exists, up, carrier, a primary address (for an IPv6 instance a usable link-local, else `FAIL`; for an IPv6 instance sending unicast to peers that are not link-locals without `source_address`, the first usable global address, as vipd picks it, else `FAIL`), addresses no instance owns (link-locals and families no instance uses there left out), with IPv6 adverts or VIPs `disable_ipv6` (`FAIL` when set), `accept_dad` and `forwarding` (the Router flag of vipd's neighbour advertisements), `rp_filter`, `arp_ignore`, `arp_announce`, `arp_filter` (warn at 1), `ip_nonlocal_bind`, VIPs that are not /32 inside the subnet of the interface's own address (warn), who advertises each VRID while it listens (on ff02::12 for an IPv6 instance), and who answers ARP for each IPv4 VIP (ARP probes, as a remote host would ask): on the node that holds it no other MAC (else `FAIL` address conflict); from a backup the master's MAC (the MAC that answers for the address heard advertising) and no other (another MAC: `FAIL` address conflict; none: warn); for an instance with `virtual_mac` (`internal/doctor/vmac.go`): the link named `virtual_mac_name` absent (ok: vipd makes it at start), or a macvlan with alias `vipd:<instance>` on the instance's interface, MAC 00:00:5e:00:01:<VRID> (00:00:5e:00:02:<VRID> for an IPv6 instance), bridge mode (anything else `FAIL`: vipd refuses to start beside a link of that name that is not its own), its state (up: master, down: backup); when it exists, its `addr_gen_mode` 1 (else `FAIL`: every router's macvlan would derive the same link-local from the shared MAC), `accept_ra` and `autoconf` 0 (warn), and no link-local on it (the one derived from the virtual MAC `FAIL`, another warn); with no such macvlan, that the kernel has macvlan (`/sys/module/macvlan`, or `macvlan.ko` in `/lib/modules/<release>/modules.builtin` or `modules.dep`; else `FAIL`); instead of the generic ARP checks, where the macvlan carries IPv4 VIPs, the parent's `arp_ignore` ≥ 1, `arp_filter` ≥ 1, `arp_announce` ≥ 2 (the larger of `all` and the interface), each with why vipd sets it: while vipd's macvlan exists a lower value was changed behind vipd's back (`FAIL` for `arp_ignore` and `arp_announce`, the trap that moves clients to the real MAC; warn for `arp_filter`), with none it is reported `ok` with the value vipd sets at start; the macvlan's own `arp_ignore` ≥ 1 and `arp_announce` ≥ 2 (warn); the ARP answers for its VIPs come from the virtual MAC only (the master's real MAC as well: `FAIL`, its parent lacks `arp_ignore`/`arp_announce`; another MAC: `FAIL` address conflict); one `ok`/`warn`/`FAIL` line each with its fix",
	},
	{
		Name:     "convert",
		Args:     "[FILE]",
		Synopsis: "vipd convert [--host NAME] [FILE]",
		Short:    "keepalived.conf (FILE or stdin) to vipd YAML on stdout",
		Flags: []Flag{
			{Name: "host", Arg: "NAME", Default: "", Note: "for keepalived's `@host` lines; default this host's name up to the first dot", Help: "host name for keepalived's @host conditional lines (default: this host's name up to the first dot)"},
		},
		Summary: "keepalived.conf (FILE or stdin) to vipd YAML on stdout; what has no equivalent on stderr as `file:line: keyword: …`; exit 0, 3 (something dropped) or 1",
		Detail:  "read a keepalived.conf (FILE, or stdin when absent or `-`; `include` followed) and write the vipd YAML on stdout, commented where a reader needs to know something; one `file:line: keyword: message` line on stderr per keyword with no equivalent (e-mail, SNMP, LVS once per file, IPv6 routes and rules, AH, route options vipd does not set, a `use_vmac` MAC or `group`, `use_ipvlan`'s address, `use_vmac_addr` with a VIP on another interface, ...) or worth knowing (unknown keywords, words keepalived ignores on a line). Exit 0 all mapped, 3 usable with something dropped, 1 unreadable or no usable `vrrp_instance`. Mapping: keepalived's defaults written out (`version: 2`, `advert_interval: 1s`, `priority: 100`, script `timeout` = interval); `auth_pass` cut to its first 8 bytes with a comment (what keepalived sends, and a file every vipd version loads without a warning); positive (while-up) weights of scripts, interfaces and processes added to `priority` and negated, with a warning when the sum leaves 1..254 and some combination differs; `script`/`notify*` lines split with keepalived's quoting, a relative program resolved in `/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin` of the converting host, else (or with shell syntax `\\| ; & < > $ \\` ( )`) `[\"/bin/sh\", \"-c\", line]`; names made `[a-z0-9_-]{1,32}` (lowercased, other characters `_`, `-2`... on collision) with the keepalived name in a comment, and sync group members renamed to match; `virtual_routes`/`virtual_rules` to `routes`/`rules` and `static_routes`/`static_rules` to the top-level lists, each as a flow mapping (`src`→`source`, `via`/`gw`→`via`, `dev`/`oif`→`interface`, `metric`/`priority`/`preference`→`metric`, `blackhole`/`unreachable`/`prohibit`→`type`; rules `lookup`→`table`, `dev`→`iif`), a route or rule vipd cannot install as written dropped whole and reported; `virtual_ipaddress_excluded` (either family) to VIPs with `advertise: false`; IPv6 VIPs (bare: /128), peers and `unicast_src_ip` mapped with keepalived's family rules (the first address or `native_ipv6` decides; the other family in `virtual_ipaddress`/`unicast_peer` is ignored by keepalived and reported), IPv6 instances written as version 3; `use_vmac [name] NAME` to `virtual_mac: true` and `virtual_mac_name: NAME` (an invalid name, or the instance's own interface, left out as keepalived does; without a name a comment gives keepalived's `vrrp.<VRID>`/`vmac_prefix` name; a second instance whose macvlan would share a name gets `vrrp4.<VRID>.<n>` (`vrrp6.` for an IPv6 instance), as keepalived picks an unused one), its `netlink_notify_msg`, `vmac_xmit_base` (vipd sends from the virtual MAC), `vmac_prefix`, `vmac_addr_prefix`, `use_ipvlan` (VIPs stay on the interface, which has the ipvlan's MAC) reported without a drop (`internal/convert/vmac.go`); `state` and the `nopreempt`/`preempt_delay` keepalived clears with `state MASTER` become comments",
	},
	{
		Name:     "version",
		Aliases:  []string{"--version", "-version"},
		Synopsis: "vipd version",
		Short:    "print version information",
		Summary:  "version, commit, Go version",
		Detail:   "`vipd VERSION (commit REV, GOVERSION, OS/ARCH)`",
	},
	{
		Name:        "help",
		Aliases:     []string{"-h", "--help"},
		Synopsis:    "vipd help",
		Short:       "print this usage",
		Detail:      "the usage, on stdout",
		NotInREADME: true,
	},
}
