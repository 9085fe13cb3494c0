// Package pair runs an HA pair of vipd nodes and a client on a lab segment
// and measures what the client sees when the VIP moves. The end-to-end
// tests, the failover benchmark and the demo share it.
package pair

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vipd/vipd/e2e/lab"
	"github.com/vipd/vipd/vrrp"
)

// VIP is the floating address the pair serves.
var VIP = netip.MustParseAddr("198.18.0.100")

// Addresses of the lab hosts.
const (
	AddrA      = "198.18.0.11/24"
	AddrB      = "198.18.0.12/24"
	AddrClient = "198.18.0.50/24"
)

// Node is one node of the pair, running vipd (Start), keepalived
// (StartKeepalived) or FRR (StartFRR).
type Node struct {
	Host     *lab.Host
	Priority uint8
	Config   string // path of its config file
	Log      string // path of its log
	Proc     *lab.Proc

	ka *keepalivedRun // set while keepalived is the node's daemon

	frr     *frrRun      // set while FRR is the node's daemon
	frrVIPs []netip.Addr // FRRLink's addresses, from ConfigureFRR

	vmac     bool   // the configuration last written has virtual_mac (vipd) or use_vmac (keepalived)
	vmacLink string // its macvlan, if not VMACLink (UseVirtualMAC)
}

// NodeConfig is what varies between the nodes' configuration files.
type NodeConfig struct {
	Priority       uint8
	AdvertInterval time.Duration
	Version        int  // default 3
	NoPreempt      bool // preempt: false
	VirtualMAC     bool // virtual_mac: true (the VIPs on VMACLink)
	VIPs           []netip.Addr
	Extra          string // more instance keys, YAML, indented by 4
}

// Pair is two vipd nodes, A and B, and a client on one segment.
type Pair struct {
	Lab    *lab.Lab
	A, B   *Node
	Client *lab.Host
	Bin    string
	Dir    string

	frrDirs []string // FRR's pathspace directories, removed by Close
}

// New builds the segment with hosts a, b and client. dir holds configs and
// logs. The caller must Close the Pair.
func New(prefix, bin, dir string) (*Pair, error) {
	l, err := lab.New(prefix)
	if err != nil {
		return nil, err
	}
	p := &Pair{Lab: l, Bin: bin, Dir: dir}
	a, err := l.AddHost("a", AddrA)
	if err == nil {
		p.A = &Node{Host: a, Log: filepath.Join(dir, "a.log"), Config: filepath.Join(dir, "a.yaml")}
		var b *lab.Host
		b, err = l.AddHost("b", AddrB)
		if err == nil {
			p.B = &Node{Host: b, Log: filepath.Join(dir, "b.log"), Config: filepath.Join(dir, "b.yaml")}
			p.Client, err = l.AddHost("client", AddrClient)
		}
	}
	if err != nil {
		l.Close()
		return nil, err
	}
	return p, nil
}

// Close stops every process and removes the segment.
func (p *Pair) Close() error {
	err := p.Lab.Close()
	for _, n := range p.Nodes() {
		n.ka.release()
	}
	for _, d := range p.frrDirs {
		if rerr := os.RemoveAll(d); rerr != nil && err == nil {
			err = rerr
		}
	}
	return err
}

// Nodes returns A and B.
func (p *Pair) Nodes() []*Node { return []*Node{p.A, p.B} }

// Configure writes n's configuration file.
func (p *Pair) Configure(n *Node, c NodeConfig) error {
	n.Priority = c.Priority
	n.vmac, n.vmacLink = c.VirtualMAC, ""
	if c.Version == 0 {
		c.Version = 3
	}
	if len(c.VIPs) == 0 {
		c.VIPs = []netip.Addr{VIP}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "metrics_listen: \"\"\ncontrol_socket: %s\nstate_dir: %s\ninstances:\n",
		filepath.Join(p.Dir, n.Host.Name+".sock"), filepath.Join(p.Dir, n.Host.Name+"-state"))
	fmt.Fprintf(&b, "  - name: web\n    interface: eth0\n    vrid: 51\n    priority: %d\n    version: %d\n    advert_interval: %s\n",
		c.Priority, c.Version, c.AdvertInterval)
	if c.NoPreempt {
		b.WriteString("    preempt: false\n")
	}
	if c.VirtualMAC {
		b.WriteString("    virtual_mac: true\n")
	}
	b.WriteString(c.Extra)
	b.WriteString("    vips:\n")
	for _, v := range c.VIPs {
		fmt.Fprintf(&b, "      - address: %s\n        description: lab service\n        owner: e2e\n", v)
	}
	return os.WriteFile(n.Config, []byte(b.String()), 0o600)
}

// Start runs vipd on n with its configuration.
func (p *Pair) Start(n *Node) error {
	if n.Proc != nil && !n.Proc.Exited() {
		return fmt.Errorf("vipd on %s is already running (pid %d)", n.Host.Name, n.Proc.PID)
	}
	if f, err := os.OpenFile(n.Log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644); err == nil {
		fmt.Fprintf(f, "---- vipd start %s\n", time.Now().Format(time.RFC3339Nano))
		f.Close()
	}
	proc, err := n.Host.Start(n.Log, p.Bin, "run", "--config", n.Config)
	if err != nil {
		return err
	}
	n.Proc = proc
	n.ka.release()
	n.ka = nil
	n.frr = nil
	return nil
}

// Stop sends SIGTERM to n's vipd and checks that it exits 0 within 5 s.
// With keepalived or FRR on n it stops that the same way.
func (p *Pair) Stop(n *Node) error {
	if n.Proc == nil {
		return fmt.Errorf("vipd on %s was not started", n.Host.Name)
	}
	if n.ka != nil {
		return p.stopKeepalived(n)
	}
	if n.frr != nil {
		return p.stopFRR(n)
	}
	if err := n.Proc.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	code, err := n.Proc.Wait(5 * time.Second)
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("vipd on %s exited %d after SIGTERM", n.Host.Name, code)
	}
	return nil
}

// Kill sends SIGKILL to n's vipd, leaving whatever it had configured.
// With keepalived or FRR on n it kills their processes the same way.
func (p *Pair) Kill(n *Node) error {
	if n.Proc == nil {
		return fmt.Errorf("vipd on %s was not started", n.Host.Name)
	}
	if n.ka != nil {
		return p.killKeepalived(n)
	}
	if n.frr != nil {
		return p.killFRR(n)
	}
	return n.Proc.Kill()
}

// Holders returns the nodes whose interface carries addr now (with FRR,
// whose FRRLink carries it and is up).
func (p *Pair) Holders(addr netip.Addr) ([]*Node, error) {
	var hs []*Node
	for _, n := range p.Nodes() {
		ok, err := n.holds(addr)
		if err != nil {
			return nil, err
		}
		if ok {
			hs = append(hs, n)
		}
	}
	return hs, nil
}

// ErrTimeout is returned when a wait runs out.
var ErrTimeout = lab.ErrTimeout

// WaitHolder polls until want (nil: nobody) is the only holder of addr.
func (p *Pair) WaitHolder(want *Node, addr netip.Addr, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		hs, err := p.Holders(addr)
		if err != nil {
			return err
		}
		if (want == nil && len(hs) == 0) || (len(hs) == 1 && hs[0] == want) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waiting %v for %s to be the only holder of %s: holders are %s: %w",
				timeout, name(want), addr, names(hs), ErrTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func name(n *Node) string {
	if n == nil {
		return "nobody"
	}
	return n.Host.Name
}

func names(ns []*Node) string {
	if len(ns) == 0 {
		return "nobody"
	}
	var s []string
	for _, n := range ns {
		s = append(s, n.Host.Name)
	}
	return strings.Join(s, ", ")
}

// ClientNeighbour returns the MAC the client's ARP cache has for addr ("" if
// none).
func (p *Pair) ClientNeighbour(addr netip.Addr) (string, error) {
	out, err := p.Client.Run("ip", "neigh", "show", addr.String(), "dev", "eth0")
	if err != nil {
		return "", err
	}
	f := strings.Fields(out)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "lladdr" {
			return f[i+1], nil
		}
	}
	return "", nil
}

// SkewTime and MasterDownInterval for a node's priority at interval, with
// VRRPv3 (the pair's default). A v2 pair at a 1 s interval has the same
// timers.
func SkewTime(prio uint8, interval time.Duration) time.Duration {
	return vrrp.SkewTime(3, prio, interval)
}

// MasterDownInterval is 3 × interval + SkewTime.
func MasterDownInterval(prio uint8, interval time.Duration) time.Duration {
	return vrrp.MasterDownInterval(3, prio, interval)
}
