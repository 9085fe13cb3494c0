package pair

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// keepalivedDefault is where Debian installs keepalived; KeepalivedPath
// prefers what PATH finds.
const keepalivedDefault = "/usr/sbin/keepalived"

// KeepalivedPath returns the keepalived binary the pair runs.
func KeepalivedPath() (string, error) {
	if p, err := exec.LookPath("keepalived"); err == nil {
		return p, nil
	}
	if _, err := os.Stat(keepalivedDefault); err != nil {
		return "", fmt.Errorf("keepalived is not installed (apt-get install keepalived): %w", err)
	}
	return keepalivedDefault, nil
}

// KeepalivedConfig is what varies between the keepalived.conf files of the
// pair's nodes. Given the priority, interval, version, password and VIPs
// of a NodeConfig, ConfigureKeepalived writes an instance that agrees with
// Configure's vipd instance on the wire.
type KeepalivedConfig struct {
	Priority       uint8
	AdvertInterval time.Duration // v3: multiples of 10ms; v2: whole seconds
	// Version is 2 or 3, default 3. It is always written out, because
	// keepalived's own default is 2 where vipd's is 3.
	Version int
	// Master writes "state MASTER", keepalived's start-up hint; the
	// default is "state BACKUP". Priorities still decide the election.
	Master bool
	// NoPreempt writes "nopreempt", which keepalived honours only with
	// state BACKUP.
	NoPreempt bool
	// AuthPass (v2 only) writes authentication { auth_type PASS }.
	AuthPass string
	// VirtualMAC writes "use_vmac VMACLink": keepalived keeps the VIPs
	// on a macvlan of that name with VirtualMAC, and Holders and
	// ServiceMAC look there. keepalived does not set arp_announce on
	// eth0; the caller sets it to 2 (see e2e/keepalived_vmac_test.go).
	VirtualMAC bool
	VIPs       []netip.Addr // default: VIP
	Extra      string       // more vrrp_instance lines, indented by 4
	Global     string       // more global_defs lines, indented by 4
}

// keepalivedRun is what the pair knows of keepalived running on a node.
type keepalivedRun struct {
	conf, pidFile, vrrpPidFile string
	// child is the VRRP child keepalived forks, as a pidfd so that a
	// reused PID is never signalled; -1 when not known or released.
	child    int
	childPID int
}

// Daemon names what runs (or ran last) on n: "keepalived", "frr" or
// "vipd".
func (n *Node) Daemon() string {
	if n.ka != nil {
		return "keepalived"
	}
	if n.frr != nil {
		return "frr"
	}
	return "vipd"
}

// KeepalivedConf returns the path of n's keepalived.conf.
func (p *Pair) KeepalivedConf(n *Node) string {
	return filepath.Join(p.Dir, n.Host.Name+".keepalived.conf")
}

// ConfigureKeepalived writes n's keepalived.conf: one vrrp_instance "web"
// on eth0 with VRID 51 and the VIPs as /32s (IPv6: /128s; keepalived runs
// an instance whose first VIP is IPv6 over IPv6), like Configure's vipd
// instance.
func (p *Pair) ConfigureKeepalived(n *Node, c KeepalivedConfig) error {
	if c.Version == 0 {
		c.Version = 3
	}
	if c.AdvertInterval == 0 {
		c.AdvertInterval = time.Second
	}
	if len(c.VIPs) == 0 {
		c.VIPs = []netip.Addr{VIP}
	}
	switch {
	case c.Version != 2 && c.Version != 3:
		return fmt.Errorf("keepalived on %s: version %d, want 2 or 3", n.Host.Name, c.Version)
	case c.Version == 2 && c.AdvertInterval%time.Second != 0:
		return fmt.Errorf("keepalived on %s: VRRPv2 adverts in whole seconds only, not %v", n.Host.Name, c.AdvertInterval)
	case c.Version == 3 && c.AdvertInterval%(10*time.Millisecond) != 0:
		return fmt.Errorf("keepalived on %s: VRRPv3 adverts in centiseconds only, not %v", n.Host.Name, c.AdvertInterval)
	case c.Version == 3 && c.AuthPass != "":
		return fmt.Errorf("keepalived on %s: authentication is VRRPv2 only", n.Host.Name)
	case c.NoPreempt && c.Master:
		return fmt.Errorf("keepalived on %s: nopreempt needs state BACKUP", n.Host.Name)
	}
	n.Priority = c.Priority
	n.vmac, n.vmacLink = c.VirtualMAC, ""
	state := "BACKUP"
	if c.Master {
		state = "MASTER"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "global_defs {\n    router_id %s\n    vrrp_version %d\n%s}\n", n.Host.NS, c.Version, c.Global)
	fmt.Fprintf(&b, "vrrp_instance web {\n    state %s\n    interface eth0\n    virtual_router_id 51\n    priority %d\n    advert_int %s\n",
		state, c.Priority, strconv.FormatFloat(c.AdvertInterval.Seconds(), 'f', -1, 64))
	if c.NoPreempt {
		b.WriteString("    nopreempt\n")
	}
	if c.AuthPass != "" {
		fmt.Fprintf(&b, "    authentication {\n        auth_type PASS\n        auth_pass %s\n    }\n", c.AuthPass)
	}
	// Like vipd's defaults: a burst on becoming master and another a
	// second later, no periodic refresh.
	b.WriteString("    garp_master_delay 1\n    garp_master_repeat 3\n    garp_master_refresh 0\n")
	if c.VirtualMAC {
		fmt.Fprintf(&b, "    use_vmac %s\n", VMACLink)
	}
	b.WriteString(c.Extra)
	b.WriteString("    virtual_ipaddress {\n")
	for _, v := range c.VIPs {
		fmt.Fprintf(&b, "        %s/%d dev eth0\n", v, v.BitLen())
	}
	b.WriteString("    }\n}\n")
	return os.WriteFile(p.KeepalivedConf(n), []byte(b.String()), 0o600)
}

// ConfigureConverted writes for vipd on n what `vipd convert` makes of the
// keepalived.conf that ConfigureKeepalived writes for c, with the lab's
// socket, state directory and no metrics listener put in front. The
// conversion must map everything (exit 0).
func (p *Pair) ConfigureConverted(n *Node, c KeepalivedConfig) error {
	if err := p.ConfigureKeepalived(n, c); err != nil {
		return err
	}
	cmd := exec.Command(p.Bin, "convert", p.KeepalivedConf(n))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("vipd convert %s: %w\n%s", p.KeepalivedConf(n), err, stderr.Bytes())
	}
	head := fmt.Sprintf("metrics_listen: \"\"\ncontrol_socket: %s\nstate_dir: %s\n",
		filepath.Join(p.Dir, n.Host.Name+".sock"), filepath.Join(p.Dir, n.Host.Name+"-state"))
	return os.WriteFile(n.Config, append([]byte(head), out...), 0o600)
}

// StartKeepalived runs keepalived's VRRP side on n in the foreground,
// logging to n's log, and returns once its VRRP child is up. Stop and Kill
// then act on keepalived instead of vipd.
func (p *Pair) StartKeepalived(n *Node) error {
	if n.Proc != nil && !n.Proc.Exited() {
		return fmt.Errorf("%s on %s is already running (pid %d)", n.Daemon(), n.Host.Name, n.Proc.PID)
	}
	bin, err := KeepalivedPath()
	if err != nil {
		return err
	}
	k := &keepalivedRun{
		conf:        p.KeepalivedConf(n),
		pidFile:     filepath.Join(p.Dir, n.Host.Name+".keepalived.pid"),
		vrrpPidFile: filepath.Join(p.Dir, n.Host.Name+".keepalived-vrrp.pid"),
		child:       -1,
	}
	if _, err := os.Stat(k.conf); err != nil {
		return fmt.Errorf("keepalived on %s: %w", n.Host.Name, err)
	}
	// A run that was killed leaves its pid files; keepalived refuses to
	// start while one names a live process, whatever it is now.
	for _, f := range []string{k.pidFile, k.vrrpPidFile} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if f, err := os.OpenFile(n.Log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644); err == nil {
		fmt.Fprintf(f, "---- keepalived start %s\n", time.Now().Format(time.RFC3339Nano))
		f.Close()
	}
	// -n keeps the parent in the foreground, so that the PID the lab
	// tracks is keepalived's; -l logs to the console (n's log) and -G
	// keeps the host's syslog out of it.
	proc, err := n.Host.Start(n.Log, bin, "-n", "-l", "-D", "-G", "--vrrp",
		"-f", k.conf, "-p", k.pidFile, "-r", k.vrrpPidFile)
	if proc != nil {
		n.Proc, n.ka, n.frr = proc, k, nil
	}
	if err != nil {
		return err
	}
	// keepalived forks its VRRP child and that child writes its pid file.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := k.openChild(proc.PID); err == nil {
			return nil
		}
		if proc.Exited() {
			code, _ := proc.Wait(0)
			return fmt.Errorf("keepalived on %s exited %d at start-up; see %s", n.Host.Name, code, n.Log)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("keepalived on %s started no VRRP child within 5s: %w", n.Host.Name, ErrTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// openChild reads the VRRP child's PID and holds it as a pidfd, if it is
// parent's child.
func (k *keepalivedRun) openChild(parent int) error {
	b, err := os.ReadFile(k.vrrpPidFile)
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("%s: %w", k.vrrpPidFile, err)
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return fmt.Errorf("pidfd of %d: %w", pid, err)
	}
	// Checked after opening: the pidfd now pins whichever process had
	// the PID, and it must be the one keepalived forked.
	if ppid, err := parentOf(pid); err != nil || ppid != parent {
		unix.Close(fd)
		return fmt.Errorf("pid %d is not keepalived's child (parent %d, %v)", pid, ppid, err)
	}
	k.child, k.childPID = fd, pid
	return nil
}

// parentOf reads a process's parent PID from /proc.
func parentOf(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces; what follows
	// its closing parenthesis is "state ppid ...".
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 2 {
		return 0, fmt.Errorf("/proc/%d/stat: too short", pid)
	}
	return strconv.Atoi(f[1])
}

// waitChild waits up to timeout for the VRRP child to exit.
func (k *keepalivedRun) waitChild(timeout time.Duration) error {
	if k.child < 0 {
		return nil
	}
	fds := []unix.PollFd{{Fd: int32(k.child), Events: unix.POLLIN}}
	deadline := time.Now().Add(timeout)
	for {
		n, err := unix.Poll(fds, int(max(time.Until(deadline), 0)/time.Millisecond))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("wait for keepalived's VRRP child %d: %w", k.childPID, err)
		}
		if n > 0 {
			return nil
		}
		return fmt.Errorf("keepalived's VRRP child %d still running after %v", k.childPID, timeout)
	}
}

// killChild sends SIGKILL to the VRRP child and waits for it to exit.
func (k *keepalivedRun) killChild() error {
	if k.child < 0 {
		return nil
	}
	if err := unix.PidfdSendSignal(k.child, unix.SIGKILL, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("kill keepalived's VRRP child %d: %w", k.childPID, err)
	}
	return k.waitChild(10 * time.Second)
}

// release closes the child's pidfd.
func (k *keepalivedRun) release() {
	if k != nil && k.child >= 0 {
		unix.Close(k.child)
		k.child = -1
	}
}

// stopKeepalived is Stop for keepalived: SIGTERM to the parent, which has
// its VRRP child resign (a priority-0 advert), remove the VIPs and exit.
func (p *Pair) stopKeepalived(n *Node) error {
	k := n.ka
	if err := n.Proc.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop keepalived on %s: %w", n.Host.Name, err)
	}
	code, err := n.Proc.Wait(5 * time.Second)
	if err != nil {
		return err
	}
	// The parent waits for its child before it exits; make sure.
	if err := k.waitChild(time.Second); err != nil {
		err = errors.Join(err, k.killChild())
		k.release()
		return err
	}
	k.release()
	if code != 0 {
		return fmt.Errorf("keepalived on %s exited %d after SIGTERM", n.Host.Name, code)
	}
	return nil
}

// killKeepalived is Kill for keepalived: it leaves the VIPs behind and
// sends nothing, like a crash of the machine. keepalived's parent respawns
// a child that dies, and its child resigns gracefully when the parent
// dies, so the parent is frozen first, then the child killed, then the
// parent.
func (p *Pair) killKeepalived(n *Node) error {
	k := n.ka
	if err := n.Proc.Signal(syscall.SIGSTOP); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("freeze keepalived on %s: %w", n.Host.Name, err)
	}
	err := k.killChild()
	k.release()
	return errors.Join(err, n.Proc.Kill())
}

// Restart starts again whichever daemon ran last on n, with the
// configuration it had.
func (p *Pair) Restart(n *Node) error {
	if n.ka != nil {
		return p.StartKeepalived(n)
	}
	if n.frr != nil {
		return p.StartFRR(n)
	}
	return p.Start(n)
}
