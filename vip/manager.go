package vip

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Proto is the address protocol (the IFA_PROTO attribute, Linux >= 5.18)
// that vipd marks every address it adds with, so that it can prove later,
// even after a crash, that an address is its own: vipd removes only
// addresses that carry it (or that it added in this run). 0-3 are the
// kernel's (IFAPROT_*), 18 is keepalived's (RTPROT_KEEPALIVED); 0x76 ('v')
// is used by no routing daemon listed in iproute2's rt_protos.
const Proto uint8 = 0x76

// ifaProto is IFA_PROTO, which x/sys/unix does not define yet.
const ifaProto = 11

// ErrNotOurs is returned for an address that vipd is asked to change but
// did not add: it carries no vipd mark (Proto) and was not added in this
// run. vipd never removes, nor takes over, an address it did not add.
var ErrNotOurs = errors.New("present without vipd's address-protocol mark: not added by vipd, left alone")

// Manager adds and removes addresses on interfaces of the network namespace
// it was created in.
type Manager struct {
	sock *nl.SocketHandle // requests and dumps, in the Manager's namespace

	mu    sync.Mutex
	added map[addrKey]bool // what this Manager added and has not removed
}

type addrKey struct {
	index int
	p     netip.Prefix
}

// requestTimeout bounds the wait for the kernel's answer to one request.
const requestTimeout = 2 * time.Second

// NewManager opens its netlink socket in the current network namespace.
func NewManager() (*Manager, error) {
	s, err := nl.GetNetlinkSocketAt(netns.None(), netns.None(), unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("vip: open netlink: %w", err)
	}
	tv := unix.NsecToTimeval(requestTimeout.Nanoseconds())
	if err := errors.Join(s.SetSendTimeout(&tv), s.SetReceiveTimeout(&tv)); err != nil {
		s.Close()
		return nil, fmt.Errorf("vip: set netlink timeouts: %w", err)
	}
	// Errors come with the kernel's explanation where it has one.
	_ = s.SetExtAck(true)
	return &Manager{sock: &nl.SocketHandle{Socket: s}, added: map[addrKey]bool{}}, nil
}

// Close releases the netlink socket.
func (m *Manager) Close() {
	m.sock.Close()
}

// request is an address request of type typ for p on the interface, on the
// Manager's socket. The attributes are those `ip address` sends: IFA_LOCAL
// and IFA_ADDRESS, and for a prefix shorter than /31 the IFA_BROADCAST it
// implies; an add also carries vipd's mark.
func (m *Manager) request(typ, flags int, index int, p netip.Prefix) *nl.NetlinkRequest {
	return m.labelled(typ, flags, index, p, "")
}

// labelled is request with the address label (IFA_LABEL) label, none if "".
func (m *Manager) labelled(typ, flags int, index int, p netip.Prefix, label string) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(typ, flags|unix.NLM_F_ACK)
	req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: m.sock}
	six := !p.Addr().Is4()
	fam := nl.FAMILY_V4
	if six {
		fam = nl.FAMILY_V6
	}
	msg := nl.NewIfAddrmsg(fam)
	msg.Prefixlen = uint8(p.Bits())
	msg.Index = uint32(index)
	req.AddData(msg)
	a := p.Addr().AsSlice()
	req.AddData(nl.NewRtAttr(unix.IFA_LOCAL, a))
	req.AddData(nl.NewRtAttr(unix.IFA_ADDRESS, a))
	if six && typ == unix.RTM_NEWADDR {
		// No duplicate address detection: the VIP is usable at once and
		// never left dadfailed after a split brain. Preferred lifetime 0
		// (valid forever): the kernel marks it deprecated, so it is never
		// chosen as a source address (keepalived does the same).
		req.AddData(nl.NewRtAttr(unix.IFA_FLAGS, nl.Uint32Attr(unix.IFA_F_NODAD)))
		req.AddData(nl.NewRtAttr(unix.IFA_CACHEINFO, cacheInfo(0, infinityLifetime)))
	}
	if !six && p.Bits() < 31 {
		host := ^uint32(0) >> p.Bits()
		brd := binary.BigEndian.AppendUint32(nil, binary.BigEndian.Uint32(a)|host)
		req.AddData(nl.NewRtAttr(unix.IFA_BROADCAST, brd))
	}
	if label != "" {
		req.AddData(nl.NewRtAttr(unix.IFA_LABEL, nl.ZeroTerminated(label)))
	}
	if typ == unix.RTM_NEWADDR {
		req.AddData(nl.NewRtAttr(ifaProto, nl.Uint8Attr(Proto)))
	}
	return req
}

// infinityLifetime is the kernel's "forever" for an IPv6 address lifetime.
const infinityLifetime = 0xffffffff

// cacheInfo is struct ifa_cacheinfo with the preferred and valid lifetimes
// (the kernel fills in the time stamps).
func cacheInfo(preferred, valid uint32) []byte {
	b := make([]byte, 16)
	binary.NativeEndian.PutUint32(b[0:4], preferred)
	binary.NativeEndian.PutUint32(b[4:8], valid)
	return b
}

// Add puts p on the interface with the given index, marked as vipd's. It is
// idempotent: p already there as vipd's is not an error. p already there
// without vipd's mark (the host's own address, or another program's) is
// left as it is and the error wraps ErrNotOurs: vipd does not take over an
// address it could not remove later.
func (m *Manager) Add(index int, p netip.Prefix) error {
	return m.AddLabel(index, p, "")
}

// AddLabel is Add with the address label label (IFA_LABEL, as netlink.Addr's
// Label: "eth0:1", the alias name ifconfig shows); "" gives the kernel's
// default, the interface's name. An address already there as vipd's keeps
// the label it has.
func (m *Manager) AddLabel(index int, p netip.Prefix, label string) error {
	if !p.Addr().Is4() && (!p.Addr().Is6() || p.Addr().Is4In6()) {
		return fmt.Errorf("vip: add %s on interface %d: neither an IPv4 nor an IPv6 prefix", p, index)
	}
	if p.Addr().Is6() && label != "" {
		return fmt.Errorf("vip: add %s on interface %d: Linux keeps no label on an IPv6 address", p, index)
	}
	_, err := m.labelled(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL, index, p, label).Execute(unix.NETLINK_ROUTE, 0)
	if errors.Is(err, unix.EEXIST) {
		a, found, lerr := m.find(index, p)
		switch {
		case lerr != nil:
			err = fmt.Errorf("%w; then %w", err, lerr)
		case !found:
			err = fmt.Errorf("%w, but then not listed", err) // removed in between: the caller retries
		case a.Owned:
			return nil
		default:
			err = ErrNotOurs
		}
	}
	if err != nil {
		return fmt.Errorf("vip: add %s on interface %d: %w", p, index, err)
	}
	m.mu.Lock()
	m.added[addrKey{index, p}] = true
	m.mu.Unlock()
	return nil
}

// Remove takes p off the interface if vipd added it: it carries vipd's mark
// or this Manager added it. An address that is not there is not an error;
// one that vipd did not add stays, and the error wraps ErrNotOurs.
func (m *Manager) Remove(index int, p netip.Prefix) error {
	a, found, err := m.find(index, p)
	if err != nil {
		if errors.Is(err, unix.ENODEV) {
			return nil
		}
		return fmt.Errorf("vip: remove %s from interface %d: %w", p, index, err)
	}
	if !found {
		m.forget(index, p)
		return nil
	}
	if !a.Owned {
		return fmt.Errorf("vip: remove %s from interface %d: %w", p, index, ErrNotOurs)
	}
	_, err = m.request(unix.RTM_DELADDR, 0, index, p).Execute(unix.NETLINK_ROUTE, 0)
	if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("vip: remove %s from interface %d: %w", p, index, err)
	}
	m.forget(index, p)
	return nil
}

func (m *Manager) forget(index int, p netip.Prefix) {
	m.mu.Lock()
	delete(m.added, addrKey{index, p})
	m.mu.Unlock()
}

// find returns the address p (same prefix length) on the interface.
func (m *Manager) find(index int, p netip.Prefix) (Addr, bool, error) {
	as, err := m.list(index)
	if err != nil {
		return Addr{}, false, err
	}
	for _, a := range as {
		if a.Prefix == p {
			return a, true, nil
		}
	}
	return Addr{}, false, nil
}

// Addr is an IPv4 or IPv6 address on an interface.
type Addr struct {
	Prefix    netip.Prefix
	Secondary bool
	// Tentative is set for an IPv6 address that cannot be used as a
	// source yet, or ever: duplicate address detection is running
	// (IFA_F_TENTATIVE) or failed (IFA_F_DADFAILED).
	Tentative bool
	// Proto is the address protocol the kernel reported (IFA_PROTO), 0 if
	// none: Proto for an address vipd added (on Linux >= 5.18).
	Proto uint8
	// Owned is set for an address vipd may remove: it carries vipd's mark,
	// or this Manager added it (a kernel older than 5.18 keeps no mark).
	Owned bool
}

// List returns the IPv4 addresses on the interface, then its IPv6 ones,
// each in the kernel's order.
func (m *Manager) List(index int) ([]Addr, error) {
	as, err := m.list(index)
	if err != nil {
		return nil, fmt.Errorf("vip: list addresses of interface %d: %w", index, err)
	}
	return as, nil
}

// dumpAttempts is how often list dumps again when the kernel reports that
// the address list changed during the dump.
const dumpAttempts = 3

func (m *Manager) list(index int) ([]Addr, error) {
	out := make([]Addr, 0, 4)
	for _, fam := range [2]int{nl.FAMILY_V4, nl.FAMILY_V6} {
		var (
			msgs [][]byte
			err  error
		)
		for range dumpAttempts {
			req := nl.NewNetlinkRequest(unix.RTM_GETADDR, unix.NLM_F_DUMP)
			req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: m.sock}
			req.AddData(nl.NewIfAddrmsg(fam))
			msgs, err = req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWADDR)
			if !errors.Is(err, nl.ErrDumpInterrupted) {
				break
			}
		}
		if err != nil {
			return nil, err
		}
		m.mu.Lock()
		for _, b := range msgs {
			a, ok, err := parseAddr(b, index)
			if err != nil {
				m.mu.Unlock()
				return nil, err
			}
			if ok {
				a.Owned = a.Proto == Proto || m.added[addrKey{index, a.Prefix}]
				out = append(out, a)
			}
		}
		m.mu.Unlock()
	}
	return out, nil
}

// parseAddr decodes one RTM_NEWADDR message of a dump; ok is false for an
// address of another interface or family.
func parseAddr(b []byte, index int) (a Addr, ok bool, err error) {
	if len(b) < unix.SizeofIfAddrmsg {
		return Addr{}, false, fmt.Errorf("address message of %d bytes", len(b))
	}
	msg := nl.DeserializeIfAddrmsg(b)
	if (msg.Family != unix.AF_INET && msg.Family != unix.AF_INET6) || int(msg.Index) != index {
		return Addr{}, false, nil
	}
	attrs, err := nl.ParseRouteAttr(b[unix.SizeofIfAddrmsg:])
	if err != nil {
		return Addr{}, false, fmt.Errorf("address message: %w", err)
	}
	var local, address netip.Addr
	flags := uint32(msg.Flags)
	for _, at := range attrs {
		switch at.Attr.Type {
		case unix.IFA_LOCAL:
			local, _ = netip.AddrFromSlice(at.Value)
		case unix.IFA_ADDRESS:
			address, _ = netip.AddrFromSlice(at.Value)
		case unix.IFA_FLAGS:
			if len(at.Value) == 4 {
				flags = binary.NativeEndian.Uint32(at.Value)
			}
		case ifaProto:
			if len(at.Value) == 1 {
				a.Proto = at.Value[0]
			}
		}
	}
	// On a point-to-point link IFA_ADDRESS is the peer's; IFA_LOCAL ours.
	ip := local
	if !ip.IsValid() {
		ip = address
	}
	switch {
	case msg.Family == unix.AF_INET && ip.Is4():
	case msg.Family == unix.AF_INET6 && ip.Is6() && !ip.Is4In6():
		a.Tentative = flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) != 0
	default:
		return Addr{}, false, nil
	}
	a.Prefix = netip.PrefixFrom(ip, int(msg.Prefixlen))
	a.Secondary = flags&unix.IFA_F_SECONDARY != 0
	return a, true, nil
}

// KernelKeepsProto reports whether the running kernel keeps an address's
// protocol (IFA_PROTO, Linux >= 5.18). On an older one vipd's addresses
// carry no mark after all, and vipd cannot tell a VIP that a crashed run
// left from one of the host's own addresses.
func KernelKeepsProto() bool {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return false
	}
	return releaseAtLeast(unix.ByteSliceToString(u.Release[:]), 5, 18)
}

// releaseAtLeast reports whether a kernel release ("6.18.44-foo") is at
// least major.minor.
func releaseAtLeast(release string, major, minor int) bool {
	var ma, mi int
	if _, err := fmt.Sscanf(release, "%d.%d", &ma, &mi); err != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}

// Has reports whether address a (any prefix length) is on the interface.
func (m *Manager) Has(index int, a netip.Addr) (bool, error) {
	as, err := m.List(index)
	if err != nil {
		return false, err
	}
	for _, x := range as {
		if x.Prefix.Addr() == a {
			return true, nil
		}
	}
	return false, nil
}

// Primary returns the interface's primary IPv4 address: the first one that
// is not a secondary and for which skip returns false. VRRP adverts carry it
// as their source, and equal priorities are broken on it.
func Primary(as []Addr, skip func(netip.Addr) bool) (netip.Addr, bool) {
	for _, a := range as {
		if !a.Prefix.Addr().Is4() || a.Secondary || (skip != nil && skip(a.Prefix.Addr())) {
			continue
		}
		return a.Prefix.Addr(), true
	}
	return netip.Addr{}, false
}

// LinkLocal returns the interface's IPv6 link-local address that VRRP over
// IPv6 sends from (RFC 5798 §5.1.2): the first one, in the kernel's order,
// that is usable (not tentative nor dadfailed) and for which skip returns
// false.
func LinkLocal(as []Addr, skip func(netip.Addr) bool) (netip.Addr, bool) {
	for _, a := range as {
		ip := a.Prefix.Addr()
		if !ip.Is6() || !ip.IsLinkLocalUnicast() || a.Tentative || (skip != nil && skip(ip)) {
			continue
		}
		return ip, true
	}
	return netip.Addr{}, false
}

// Global6 returns the first address, in the kernel's order, that IPv6
// unicast adverts to peers that are not link-locals can come from: IPv6,
// not a link-local, usable (not tentative nor dadfailed), and for which
// skip (a VIP) returns false.
func Global6(as []Addr, skip func(netip.Addr) bool) (netip.Addr, bool) {
	for _, a := range as {
		ip := a.Prefix.Addr()
		if !ip.Is6() || ip.Is4In6() || ip.IsLinkLocalUnicast() || ip.IsLoopback() || a.Tentative || (skip != nil && skip(ip)) {
			continue
		}
		return ip, true
	}
	return netip.Addr{}, false
}

// Change is one address added to or removed from an interface.
type Change struct {
	Index int
	Addr  netip.Addr
	Added bool
	// Resync is set on a synthetic change sent after the subscription was
	// re-established: events may have been lost, so re-check everything.
	Resync bool
}

// Watch sends IPv4 and IPv6 address changes of the current network namespace to out
// until ctx is done. If the kernel subscription breaks (a closed channel,
// an overrun socket) it subscribes again and sends a Resync change. Watch
// returns once every goroutine it started has finished.
func Watch(ctx context.Context, out chan<- Change) error {
	first := true
	for {
		if err := watchOnce(ctx, out, !first); err != nil && ctx.Err() == nil {
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		first = false
	}
}

func watchOnce(ctx context.Context, out chan<- Change, resync bool) error {
	ch := make(chan netlink.AddrUpdate, 64)
	done := make(chan struct{})
	var subErr error
	err := netlink.AddrSubscribeWithOptions(ch, done, netlink.AddrSubscribeOptions{
		ErrorCallback: func(err error) { subErr = err },
	})
	if err != nil {
		return fmt.Errorf("vip: subscribe to address changes: %w", err)
	}
	// The subscription's goroutine closes ch after done is closed; drain
	// until then so it never blocks and is never left behind.
	defer func() {
		close(done)
		for range ch {
		}
	}()
	if resync {
		select {
		case out <- Change{Resync: true}:
		case <-ctx.Done():
			return nil
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case u, ok := <-ch:
			if !ok {
				if subErr == nil {
					subErr = errors.New("vip: address subscription closed")
				}
				return subErr
			}
			ip, ok := netip.AddrFromSlice(u.LinkAddress.IP)
			if !ok {
				continue
			}
			select {
			case out <- Change{Index: u.LinkIndex, Addr: ip.Unmap(), Added: u.NewAddr}:
			case <-ctx.Done():
				return nil
			}
		}
	}
}
