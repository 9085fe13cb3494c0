package lab

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	// netnsDir is where `ip netns add` bind-mounts named namespaces.
	netnsDir = "/run/netns"

	// bridgeName is the bridge device inside the bridge namespace.
	bridgeName = "br0"
	// bridgeHost is the name part of the bridge namespace, "<prefix>br".
	bridgeHost = "br"

	// termGrace is how long Close lets processes handle SIGTERM before it
	// sends SIGKILL.
	termGrace = 3 * time.Second
	// killWait bounds the wait for a SIGKILLed process to be reaped; only
	// a process stuck in the kernel takes longer.
	killWait = 10 * time.Second
	// enterWait bounds the wait for a started process to enter its
	// namespace.
	enterWait = 5 * time.Second
	// cmdTimeout bounds the lab's own iproute2 and sysctl commands.
	cmdTimeout = 30 * time.Second
)

var (
	prefixRE = regexp.MustCompile(`^[a-z0-9]{1,8}$`)
	nameRE   = regexp.MustCompile(`^[a-z0-9]{1,15}$`)
)

// ErrClosed is returned by methods called after Lab.Close.
var ErrClosed = errors.New("lab closed")

// ErrTimeout is wrapped by errors of waits that ran out of time.
var ErrTimeout = errors.New("timed out")

// stopper is a probe or an address watch that Close stops if its owner has
// not.
type stopper interface{ stop() }

// Lab is one L2 segment built from network namespaces: a bridge namespace
// and the hosts attached to it. Its methods are safe for concurrent use.
type Lab struct {
	prefix string
	bridge *Host

	mu         sync.Mutex
	closed     bool
	namespaces []string // every namespace made, in creation order
	hosts      map[string]*Host
	procs      []*Proc
	stoppers   map[stopper]struct{}
}

// New creates the bridge namespace "<prefix>br" holding bridge "br0" (up,
// STP off, forward delay 0, multicast snooping off, IPv6 off).
//
// prefix must be 1-8 characters of [a-z0-9] and unique per test. New first
// removes what a crashed earlier run left behind: every namespace in
// /run/netns whose name starts with prefix, together with any process still
// inside it. On error nothing New made is left behind.
func New(prefix string) (*Lab, error) {
	if !prefixRE.MatchString(prefix) {
		return nil, fmt.Errorf("lab prefix %q: want 1-8 characters of [a-z0-9]", prefix)
	}
	if err := removeLeftovers(prefix); err != nil {
		return nil, fmt.Errorf("remove leftovers of lab %s: %w", prefix, err)
	}
	l := &Lab{
		prefix:   prefix,
		hosts:    map[string]*Host{},
		stoppers: map[stopper]struct{}{},
	}
	l.bridge = &Host{Name: bridgeHost, NS: prefix + bridgeHost, lab: l}
	if err := l.addNamespace(l.bridge.NS); err != nil {
		return nil, errors.Join(fmt.Errorf("new lab %s: %w", prefix, err), l.Close())
	}
	if err := disableIPv6(l.bridge.NS); err != nil {
		return nil, errors.Join(fmt.Errorf("new lab %s: %w", prefix, err), l.Close())
	}
	steps := [][]string{
		{"link", "add", "name", bridgeName, "type", "bridge",
			"stp_state", "0", "forward_delay", "0", "mcast_snooping", "0"},
		{"link", "set", "dev", bridgeName, "up"},
	}
	for _, args := range steps {
		if err := ipIn(l.bridge.NS, args...); err != nil {
			return nil, errors.Join(fmt.Errorf("new lab %s: %w", prefix, err), l.Close())
		}
	}
	return l, nil
}

// Prefix returns the prefix of every namespace name in the lab.
func (l *Lab) Prefix() string { return l.prefix }

// Bridge returns the bridge namespace as a Host, for running commands there
// (tcpdump -i br0, bridge fdb show). It has no address and no eth0, so its
// link and address methods return errors.
func (l *Lab) Bridge() *Host { return l.bridge }

// Host returns the host added under name, or nil.
func (l *Lab) Host(name string) *Host {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.hosts[name]
}

// AddHost creates namespace "<prefix><name>" with lo up and "eth0" up
// holding addr (a prefix such as "198.18.0.11/24"), and links eth0 by a veth
// pair to the port "<name>" of br0 in the bridge namespace. IPv6 is turned
// off in the host so that DAD and router solicitations stay out of packet
// captures; every other sysctl keeps the kernel's default.
//
// addr must be IPv4. name must be 1-15 characters of [a-z0-9] (it is an
// interface name in the bridge namespace) and must not be "br", "br0" or
// "lo". On error the host's namespace is removed again.
func (l *Lab) AddHost(name, addr string) (*Host, error) {
	if !nameRE.MatchString(name) || name == bridgeHost || name == bridgeName || name == "lo" {
		return nil, fmt.Errorf("host name %q: want 1-15 characters of [a-z0-9], not br, br0 or lo", name)
	}
	pfx, err := netip.ParsePrefix(addr)
	if err != nil {
		return nil, fmt.Errorf("host %s address: %w", name, err)
	}
	if !pfx.Addr().Is4() {
		return nil, fmt.Errorf("host %s address %s: want IPv4 (IPv6 is off in lab hosts)", name, addr)
	}
	h := &Host{Name: name, NS: l.prefix + name, Addr: pfx.Addr(), Prefix: pfx, lab: l}

	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, ErrClosed
	}
	if _, dup := l.hosts[name]; dup {
		l.mu.Unlock()
		return nil, fmt.Errorf("host %s already exists in lab %s", name, l.prefix)
	}
	// Reserve the name so that a concurrent AddHost of the same name fails.
	l.hosts[name] = h
	l.mu.Unlock()

	if err := l.setUpHost(h); err != nil {
		l.mu.Lock()
		delete(l.hosts, name)
		l.mu.Unlock()
		err = fmt.Errorf("add host %s: %w", name, err)
		if derr := l.removeNamespace(h.NS); derr != nil {
			return nil, errors.Join(err, derr)
		}
		return nil, err
	}
	return h, nil
}

func (l *Lab) setUpHost(h *Host) error {
	if err := l.addNamespace(h.NS); err != nil {
		return err
	}
	// Before eth0 exists, so that it is born with IPv6 off.
	if err := disableIPv6(h.NS); err != nil {
		return err
	}
	// "name" is spelled out because iproute2 reads a bare "a" as "address".
	steps := []struct {
		ns   string
		args []string
	}{
		{h.NS, []string{"link", "set", "dev", "lo", "up"}},
		{l.bridge.NS, []string{"link", "add", "name", h.Name, "type", "veth",
			"peer", "name", "eth0", "netns", h.NS}},
		{l.bridge.NS, []string{"link", "set", "dev", h.Name, "master", bridgeName, "up"}},
		{h.NS, []string{"addr", "add", h.Prefix.String(), "dev", "eth0"}},
		{h.NS, []string{"link", "set", "dev", "eth0", "up"}},
	}
	for _, s := range steps {
		if err := ipIn(s.ns, s.args...); err != nil {
			return err
		}
	}
	return h.openPeer()
}

// Close stops every probe and address watch still running, ends every
// process the lab started (SIGTERM, then SIGKILL to those still alive after
// 3s, each by PID, and waits for them), kills whatever else is still inside
// the lab's namespaces, and deletes the namespaces. It is idempotent and
// safe after a partial New or AddHost; it returns every failure, joined.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	stoppers := make([]stopper, 0, len(l.stoppers))
	for s := range l.stoppers {
		stoppers = append(stoppers, s)
	}
	procs := slices.Clone(l.procs)
	namespaces := slices.Clone(l.namespaces)
	hosts := make([]*Host, 0, len(l.hosts))
	for _, h := range l.hosts {
		hosts = append(hosts, h)
	}
	l.mu.Unlock()

	for _, h := range hosts {
		h.closePeer()
	}

	for _, s := range stoppers {
		s.stop()
	}

	var errs []error
	errs = append(errs, endProcs(procs)...)
	// Hosts first, then the bridge: deleting a host namespace takes its
	// veth pair with it.
	for _, ns := range slices.Backward(namespaces) {
		if err := l.removeNamespace(ns); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// endProcs terminates procs the way Close promises and returns what failed.
func endProcs(procs []*Proc) []error {
	var errs []error
	for _, p := range procs {
		if err := p.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			errs = append(errs, fmt.Errorf("terminate %s: %w", p, err))
		}
	}
	deadline := time.Now().Add(termGrace)
	for _, p := range procs {
		if _, err := p.Wait(time.Until(deadline)); err == nil {
			continue
		}
		if err := p.Kill(); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// register records a probe or watch for Close. It fails once the lab is
// closed.
func (l *Lab) register(s stopper) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	l.stoppers[s] = struct{}{}
	return nil
}

func (l *Lab) unregister(s stopper) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.stoppers, s)
}

// addNamespace creates ns and records it for Close, before anything else can
// fail.
func (l *Lab) addNamespace(ns string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if _, err := runCmd("ip", "netns", "add", ns); err != nil {
		return err
	}
	l.namespaces = append(l.namespaces, ns)
	return nil
}

// removeNamespace kills every process inside ns and deletes it, if the lab
// made ns; it forgets ns once that worked or ns is already gone.
func (l *Lab) removeNamespace(ns string) error {
	l.mu.Lock()
	ours := slices.Contains(l.namespaces, ns)
	l.mu.Unlock()
	if !ours {
		return nil
	}
	if err := destroyNamespace(ns); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.namespaces = slices.DeleteFunc(l.namespaces, func(s string) bool { return s == ns })
	return nil
}

// removeLeftovers destroys every namespace whose name starts with prefix.
func removeLeftovers(prefix string) error {
	entries, err := os.ReadDir(netnsDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list %s: %w", netnsDir, err)
	}
	var errs []error
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			errs = append(errs, destroyNamespace(e.Name()))
		}
	}
	return errors.Join(errs...)
}

// destroyNamespace SIGKILLs every process in ns and deletes ns. A namespace
// that does not exist is not an error.
//
// Processes are killed first because a namespace outlives its name while
// anything still runs in it, and a daemon left there would keep sending
// adverts on a segment nobody can see any more.
func destroyNamespace(ns string) error {
	if _, err := os.Stat(filepath.Join(netnsDir, ns)); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	var errs []error
	if err := killAllIn(ns); err != nil {
		errs = append(errs, err)
	}
	if _, err := runCmd("ip", "netns", "del", ns); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// killAllIn SIGKILLs every process in ns and waits briefly for them to go.
// These are not the lab's children (those are reaped by Proc), so what is
// left of them may stay a zombie until its own parent reaps it; zombies
// hold no namespace and are not listed.
func killAllIn(ns string) error {
	pids, err := pidsIn(ns)
	if err != nil || len(pids) == 0 {
		return err
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("kill pid %d in %s: %w", pid, ns, err)
		}
	}
	deadline := time.Now().Add(killWait)
	for {
		pids, err = pidsIn(ns)
		if err != nil || len(pids) == 0 {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pids %v in %s survived SIGKILL", pids, ns)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// pidsIn lists the processes in ns, as `ip netns pids` sees them.
func pidsIn(ns string) ([]int, error) {
	out, err := runCmd("ip", "netns", "pids", ns)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(out) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("ip netns pids %s: bad pid %q", ns, f)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// disableIPv6 turns IPv6 off in ns for the interfaces there ("all") and for
// those made later ("default").
func disableIPv6(ns string) error {
	for _, key := range []string{"net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.default.disable_ipv6"} {
		if _, err := runCmd("ip", "netns", "exec", ns, "sysctl", "-qw", key+"=1"); err != nil {
			return err
		}
	}
	return nil
}

// ipIn runs `ip -n ns args...`.
func ipIn(ns string, args ...string) error {
	_, err := runCmd("ip", append([]string{"-n", ns}, args...)...)
	return err
}

// runCmd runs a short command of the lab's own and returns its combined
// output; the error names the command and carries the output.
func runCmd(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	return runContext(ctx, name, args...)
}

func runContext(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", quoteCmd(name, args), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// quoteCmd renders a command line for error messages, quoting arguments
// that a shell would split.
func quoteCmd(name string, args []string) string {
	var b strings.Builder
	b.WriteString(name)
	for _, a := range args {
		b.WriteByte(' ')
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\$`;&|<>()*?[]#~") {
			b.WriteString(strconv.Quote(a))
		} else {
			b.WriteString(a)
		}
	}
	return b.String()
}
