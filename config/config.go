package config

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"slices"
	"time"
)

// Config is a validated vipd configuration.
type Config struct {
	File          string // path it was loaded from
	ControlSocket string // Unix socket of the control API
	MetricsListen string // host:port of the Prometheus listener; "" turns it off
	// StateDir keeps state that survives a restart (maintenance mode);
	// default /var/lib/vipd.
	StateDir   string
	Instances  []Instance
	SyncGroups []SyncGroup
	// StaticRoutes and StaticRules are installed while vipd runs,
	// whichever state its instances are in.
	StaticRoutes []Route
	StaticRules  []Rule
	// Warnings are settings that load but do not do what they say
	// (vipd check prints them, the daemon logs them), in line order.
	Warnings []Error
	// ScriptUser and ScriptGroup are the default user and group of every
	// hook and tracker script (script_user, script_group); unset, they run
	// as vipd itself.
	ScriptUser, ScriptGroup Account
	// ConflictProbeInterval is how often conflict detection probes each
	// watched address (conflict_probe_interval); 0 means the default,
	// DefaultConflictProbeInterval. NoConflictProbes (0 in the file) sends
	// none: only the frames heard on the link count.
	ConflictProbeInterval time.Duration
	NoConflictProbes      bool
}

// Instance is one VRRP virtual router: a VRID on an interface and the
// addresses it carries.
type Instance struct {
	Name           string
	Interface      string
	VRID           uint8
	Priority       uint8 // 255 means this node owns the addresses
	Version        int   // 2 or 3
	AdvertInterval time.Duration
	Preempt        bool
	PreemptDelay   time.Duration
	AuthPass       string // version 2 only; sent as simple text authentication; at most 8 bytes (a longer one is cut)
	V3Checksum     ChecksumMode
	VIPs           []VIP
	GARP           GARP
	// Upstreams are the neighbours that, after a takeover, get a targeted
	// ARP request from each VIP and are checked to send the VIPs' traffic
	// here (upstreams); nil means the default gateway of Interface.
	// NoUpstreams (upstreams: []) turns the check off.
	Upstreams   []netip.Addr
	NoUpstreams bool
	// UnicastPeers, when set, replaces multicast: adverts go to each peer
	// and only adverts from them are accepted.
	UnicastPeers []netip.Addr
	// SourceAddress is the address adverts are sent from (multicast and
	// unicast); the zero Addr means the interface's primary address. It
	// must be an address of Interface at start and reload.
	SourceAddress netip.Addr
	Track         Track
	Notify        *Notify // nil: no hook
	// Routes and Rules follow the master: installed after the VIPs when
	// the instance becomes master, removed before them when it leaves.
	Routes []Route
	Rules  []Rule
	// VirtualMAC (virtual_mac): the VIPs on Interface live on a macvlan
	// of it, VirtualMACName, with the MAC 00:00:5e:00:01:<VRID>, or
	// 00:00:5e:00:02:<VRID> over IPv6 (config/vmac.go). VirtualMACName is "" when VirtualMAC is off.
	VirtualMAC     bool
	VirtualMACName string
	Line           int // line of the instance's mapping in the file
}

// Track lists what the instance's effective priority depends on.
type Track struct {
	Interfaces []TrackInterface
	Scripts    []TrackScript
	Files      []TrackFile
	Processes  []TrackProcess
	// IgnoreOwnInterface (track.own_interface: false, keepalived's
	// dont_track_primary): carrier loss on the instance's own interface
	// does not put it in fault.
	IgnoreOwnInterface bool
}

// TrackInterface follows another interface's carrier. While it is down,
// Weight is added to the priority; a Weight of 0 puts the instance in
// fault instead.
type TrackInterface struct {
	Name   string
	Weight int // -254..254
	Line   int
}

// TrackScript runs a command every Interval. After Fall failures in a row
// it is failing; after Rise successes in a row it is healthy again. While
// failing, Weight is added to the priority; 0 means fault.
type TrackScript struct {
	Name     string
	Command  []string      // argv; Command[0] is an absolute path; never run through a shell
	Interval time.Duration // default 2s
	Timeout  time.Duration // default 1s; a run that takes longer is killed and counts as a failure
	Rise     int           // default 1
	Fall     int           // default 1
	Weight   int           // -254..254
	// User and Group override script_user and script_group for this
	// script; Run is who it runs as, resolved by Load (nil: as vipd).
	User, Group Account
	Run         *Credential
	Line        int
}

// TrackFile reads an integer from a file: the priority changes by that
// integer times Weight (a missing or unreadable file counts as 0). With
// Weight 0 any non-zero value means fault.
type TrackFile struct {
	Path   string // absolute
	Weight int    // -254..254
	Line   int
}

// Notify holds the hooks of an instance or a sync group; at least one of
// the argv lists is set, and each Command-like list's first item is an
// absolute path. For one state change they run in this order: the state's
// own hook (Master, Backup, Fault or Stop), then Keepalived, then Command.
type Notify struct {
	Command []string // every change, with the VIPD_* environment
	// Master, Backup, Fault and Stop run on entering that state (Stop:
	// the instance or group stops, at daemon stop or removed by reload).
	Master, Backup, Fault, Stop []string
	// Keepalived runs with keepalived's arguments appended: INSTANCE or
	// GROUP, the name, MASTER|BACKUP|FAULT|STOP and the priority (0 for
	// a group).
	Keepalived []string
	Timeout    time.Duration // default 10s, per hook run; a hook that runs longer is killed
	// User and Group override script_user and script_group for these
	// hooks; Run is who they run as, resolved by Load (nil: as vipd).
	User, Group Account
	Run         *Credential
	Line        int
}

// SyncGroup is a set of instances that move together: if one must leave
// master, they all do; if one becomes master, they all do.
type SyncGroup struct {
	Name      string
	Instances []string
	Notify    *Notify // nil: no hook; run when the group as a whole changes state
	Line      int
}

// Account is a user or group name as written in the file, with the key
// and line it was given at; Name "" means not set.
type Account struct {
	Name string
	Key  string // e.g. "script_user", "notify.group"
	Line int
}

// Credential is who a hook or tracker script runs as: numeric ids resolved
// from /etc/passwd and /etc/group by Load.
type Credential struct {
	User, Group string   // names, for messages
	UID, GID    uint32   // GID: the configured group, else the user's primary group
	Groups      []uint32 // supplementary groups: the user's groups (GID among them)
}

// ChecksumMode says what a VRRPv3 checksum covers. RFC 5798 includes the IP
// pseudo-header; some older implementations checksum the VRRP message alone,
// and talking to them needs the same choice.
type ChecksumMode int

const (
	ChecksumPseudoHeader ChecksumMode = iota // RFC 5798: pseudo-header and message
	ChecksumMessageOnly                      // the VRRP message alone
)

// String returns the mode as spelled in the config file.
func (m ChecksumMode) String() string {
	switch m {
	case ChecksumPseudoHeader:
		return "pseudo-header"
	case ChecksumMessageOnly:
		return "message-only"
	}
	return fmt.Sprintf("ChecksumMode(%d)", int(m))
}

// VIP is one virtual address of an instance.
type VIP struct {
	Address     netip.Prefix // a bare address in the file is a /32
	Description string
	Owner       string
	// Interface is the link the VIP is put on and announced from; ""
	// means the instance's own interface.
	Interface string
	// Label is the address label (IFA_LABEL, "eth0:1"); "" for none.
	Label string
	// NotAdvertised leaves the VIP out of the adverts' address list: it
	// moves with the master like the others (keepalived's
	// virtual_ipaddress_excluded).
	NotAdvertised bool
	Line          int
}

// GARP says how a new master announces its addresses.
type GARP struct {
	Repeat   int           // announcements after the first one
	Interval time.Duration // spacing of those repeats
	Refresh  time.Duration // periodic re-announcement while master; 0 is off
}

const (
	defaultControlSocket = "/run/vipd/vipd.sock"
	defaultMetricsListen = "127.0.0.1:9654"
)

// Load reads the file at path, parses it with Parse, resolves the users and
// groups of hooks and scripts into numeric ids (resolveCredentials), and
// then checks the hook and tracker programs on the filesystem: one that a
// user other than root or vipd's own could change is refused (see
// commandSecure). Failing
// to read the file is reported as an Errors value too, so callers handle one
// error type.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		msg := err.Error()
		var pe *fs.PathError
		if errors.As(err, &pe) {
			// The path is already in Error.File.
			msg = pe.Op + ": " + pe.Err.Error()
		}
		return nil, Errors{{File: path, Msg: msg}}
	}
	cfg, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	errs := resolveCredentials(cfg, osAccounts{})
	if len(errs) == 0 {
		errs = checkCommands(cfg)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return cfg, nil
}

// Parse parses and validates a config file's contents; name is the file name
// used in errors and in Config.File. It returns either a Config and a nil
// error, or a nil Config and a non-empty Errors listing every problem found,
// in line order.
func Parse(name string, data []byte) (*Config, error) {
	p := &parser{file: name}
	cfg := p.parse(data)
	if len(p.errs) > 0 {
		return nil, p.sorted()
	}
	if len(p.warns) > 0 {
		slices.SortStableFunc(p.warns, func(a, b Error) int { return cmp.Compare(a.Line, b.Line) })
		cfg.Warnings = p.warns
	}
	return cfg, nil
}

// Instance returns the instance with the given name, or nil if there is none.
func (c *Config) Instance(name string) *Instance {
	for i := range c.Instances {
		if c.Instances[i].Name == name {
			return &c.Instances[i]
		}
	}
	return nil
}
