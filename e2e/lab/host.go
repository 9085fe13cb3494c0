package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"sync"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// hostLink is the host's end of its veth pair.
const hostLink = "eth0"

// Host is one network namespace on the lab's segment.
type Host struct {
	// Name is the host's name in the lab; it is also the name of the
	// bridge-side end of its veth pair.
	Name string
	// NS is the namespace, "<prefix><Name>", usable with `ip netns exec`.
	NS string
	// Addr is eth0's address and Prefix the same with its prefix length.
	// Both are zero for the bridge.
	Addr   netip.Addr
	Prefix netip.Prefix

	lab *Lab

	// peerMu guards peerNL and peerLink: a netlink handle in the bridge
	// namespace and the bridge-side end of the host's veth pair, ready
	// from AddHost on, so that CutLink costs one request and lands
	// within tens of microseconds of the call.
	peerMu   sync.Mutex
	peerNL   *netlink.Handle
	peerLink netlink.Link
}

func (h *Host) String() string { return h.NS }

// isBridge reports whether h is the lab's bridge namespace, which has no
// eth0 and no peer.
func (h *Host) isBridge() bool { return h == h.lab.bridge }

// Run runs `ip netns exec NS args...` and returns its combined output. The
// error names the command and carries the output.
func (h *Host) Run(args ...string) (string, error) {
	return h.RunContext(context.Background(), args...)
}

// RunContext is Run with a context that kills the command when done.
func (h *Host) RunContext(ctx context.Context, args ...string) (string, error) {
	if len(args) == 0 {
		return "", fmt.Errorf("run in %s: no command", h.NS)
	}
	return runContext(ctx, "ip", append([]string{"netns", "exec", h.NS}, args...)...)
}

// Start starts args in the background inside the host's namespace, with
// stdin from /dev/null and stdout and stderr appended to logPath (created if
// missing; "" discards them). The lab tracks the process and ends it on
// Close. Start returns once the process is inside the namespace (or has
// already exited); if it cannot tell, it returns the Proc with an error.
//
// Run daemons in the foreground (keepalived -n, say): the lab signals the
// PID it started. Close also kills whatever else is left in the lab's
// namespaces.
//
// The process also gets SIGKILL if the thread that started it exits, so
// that daemons do not outlive a test binary that died without Close. Go
// never retires an ordinary thread, but it does end one whose goroutine
// exits while holding runtime.LockOSThread: do not call Start from such a
// goroutine.
func (h *Host) Start(logPath string, args ...string) (*Proc, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("start in %s: no command", h.NS)
	}
	if logPath == "" {
		logPath = os.DevNull
	}
	log, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %v in %s: open log: %w", args, h.NS, err)
	}
	// The child has its own copy of the descriptor once started.
	defer log.Close()

	cmd := exec.Command("ip", append([]string{"netns", "exec", h.NS}, args...)...)
	cmd.Stdout = log
	cmd.Stderr = log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}

	l := h.lab
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, ErrClosed
	}
	// `ip netns exec` execs the command in place, so the PID is the
	// command's own.
	if err := cmd.Start(); err != nil {
		l.mu.Unlock()
		return nil, fmt.Errorf("start %v in %s: %w", args, h.NS, err)
	}
	p := newProc(cmd, h.NS, args)
	l.procs = append(l.procs, p)
	l.mu.Unlock()

	return p, p.awaitNamespace()
}

// CutLink sets the bridge-side end of the host's veth pair down: the host's
// eth0 loses carrier (NO-CARRIER), as with a pulled cable.
// It goes through netlink rather than ip(8), so that the cut lands within
// a fraction of a millisecond of the call.
func (h *Host) CutLink() error { return h.setPeer("cut link", false) }

// RestoreLink sets the bridge-side end up again; it is still a port of br0.
func (h *Host) RestoreLink() error { return h.setPeer("restore link", true) }

// setPeer sets the bridge-side end of the host's veth pair up or down.
func (h *Host) setPeer(op string, up bool) error {
	if h.isBridge() {
		return fmt.Errorf("%s: %s is the bridge namespace, not a host", op, h.NS)
	}
	h.peerMu.Lock()
	defer h.peerMu.Unlock()
	if h.peerNL == nil {
		return fmt.Errorf("%s of host %s: %w", op, h.Name, ErrClosed)
	}
	var err error
	if up {
		err = h.peerNL.LinkSetUp(h.peerLink)
	} else {
		err = h.peerNL.LinkSetDown(h.peerLink)
	}
	if err != nil {
		return fmt.Errorf("%s of host %s: %w", op, h.Name, err)
	}
	return nil
}

// openPeer readies the handle that setPeer uses.
func (h *Host) openPeer() error {
	nh, err := h.lab.bridge.netlinkHandle()
	if err != nil {
		return err
	}
	link, err := nh.LinkByName(h.Name)
	if err != nil {
		nh.Close()
		return fmt.Errorf("find the bridge-side end %s: %w", h.Name, err)
	}
	h.peerMu.Lock()
	h.peerNL, h.peerLink = nh, link
	h.peerMu.Unlock()
	return nil
}

// closePeer releases it.
func (h *Host) closePeer() {
	h.peerMu.Lock()
	defer h.peerMu.Unlock()
	if h.peerNL != nil {
		h.peerNL.Close()
		h.peerNL = nil
	}
}

// Detach takes the bridge-side end out of br0 but leaves it up: the host
// keeps carrier yet reaches nobody, which is how a split brain looks from
// inside.
func (h *Host) Detach() error { return h.peer("detach", "link", "set", "dev", h.Name, "nomaster") }

// Attach makes the bridge-side end a port of br0 again.
func (h *Host) Attach() error {
	return h.peer("attach", "link", "set", "dev", h.Name, "master", bridgeName)
}

func (h *Host) peer(op string, args ...string) error {
	if h.isBridge() {
		return fmt.Errorf("%s: %s is the bridge namespace, not a host", op, h.NS)
	}
	if err := ipIn(h.lab.bridge.NS, args...); err != nil {
		return fmt.Errorf("%s of host %s: %w", op, h.Name, err)
	}
	return nil
}

// HasAddr reports whether a is assigned to the host's eth0.
func (h *Host) HasAddr(a netip.Addr) (bool, error) {
	var found bool
	err := h.withLink(func(nh *netlink.Handle, link netlink.Link) error {
		addrs, err := nh.AddrList(link, netlink.FAMILY_ALL)
		if err != nil {
			return fmt.Errorf("list addresses: %w", err)
		}
		for _, ad := range addrs {
			if got, ok := netip.AddrFromSlice(ad.IP); ok && got.Unmap() == a.Unmap() {
				found = true
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("has %s on %s %s: %w", a, h.NS, hostLink, err)
	}
	return found, nil
}

// MAC returns the hardware address of the host's eth0.
func (h *Host) MAC() (net.HardwareAddr, error) {
	var mac net.HardwareAddr
	err := h.withLink(func(_ *netlink.Handle, link netlink.Link) error {
		mac = append(net.HardwareAddr(nil), link.Attrs().HardwareAddr...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("mac of %s %s: %w", h.NS, hostLink, err)
	}
	return mac, nil
}

// Carrier reports whether the host's eth0 has carrier (LOWER_UP).
func (h *Host) Carrier() (bool, error) {
	var up bool
	err := h.withLink(func(_ *netlink.Handle, link netlink.Link) error {
		up = link.Attrs().RawFlags&unix.IFF_LOWER_UP != 0
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("carrier of %s %s: %w", h.NS, hostLink, err)
	}
	return up, nil
}

// withLink calls fn with a netlink handle in the host's namespace and its
// eth0.
func (h *Host) withLink(fn func(*netlink.Handle, netlink.Link) error) error {
	if h.isBridge() {
		return errors.New("the bridge namespace has no " + hostLink)
	}
	nh, err := h.netlinkHandle()
	if err != nil {
		return err
	}
	defer nh.Close()
	link, err := nh.LinkByName(hostLink)
	if err != nil {
		return fmt.Errorf("find link: %w", err)
	}
	return fn(nh, link)
}

// netlinkHandle opens an rtnetlink handle inside the host's namespace.
func (h *Host) netlinkHandle() (*netlink.Handle, error) {
	ns, err := netns.GetFromName(h.NS)
	if err != nil {
		return nil, fmt.Errorf("open network namespace %s: %w", h.NS, err)
	}
	// The handle's socket keeps the namespace; ours is no longer needed.
	defer ns.Close()
	nh, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink in %s: %w", h.NS, err)
	}
	return nh, nil
}
