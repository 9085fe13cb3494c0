package vrrp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"github.com/vipd/vipd/arp"
	"github.com/vipd/vipd/vip"
)

// hostDataplane is the real dataplane: links are looked up with the
// standard library, adverts go out on Conn (raw IP socket, with multicast
// as Ethernet frames), gratuitous ARP through arp.Announcer, addresses are
// changed by vip.Manager (which marks them with IFA_PROTO and refuses
// foreign ones), and changes come from netlink subscriptions.
type hostDataplane struct {
	addrs  *vip.Manager
	routes *vip.Router // routes and rules (hostroutes.go)
}

func newHostDataplane() (*hostDataplane, error) {
	m, err := vip.NewManager()
	if err != nil {
		return nil, err
	}
	r, err := vip.NewRouter()
	if err != nil {
		m.Close()
		return nil, err
	}
	return &hostDataplane{addrs: m, routes: r}, nil
}

func linkUp(f net.Flags) bool { return f&net.FlagUp != 0 && f&net.FlagRunning != 0 }

func (d *hostDataplane) LookupLink(name string) (LinkInfo, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return LinkInfo{}, err
	}
	return LinkInfo{Name: ifi.Name, Index: ifi.Index, Up: linkUp(ifi.Flags), MAC: ifi.HardwareAddr}, nil
}

func (d *hostDataplane) OpenLink(l LinkInfo, fam Family) (Link, error) {
	if fam != FamilyIPv4 && fam != FamilyIPv6 && fam != FamilyBoth {
		return nil, fmt.Errorf("vrrp: open %s: address family %s is not supported", l.Name, fam)
	}
	ifi, err := net.InterfaceByName(l.Name)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", l.Name, err)
	}
	ann, err := arp.NewAnnouncer(l.Name)
	if err != nil {
		return nil, err
	}
	hl := &hostLink{announcers: announcers{name: l.Name, ann: ann}}
	if fam.has(FamilyIPv4) {
		if hl.conn, err = ListenConn(ifi); err != nil {
			hl.Close()
			return nil, err
		}
	}
	if fam.has(FamilyIPv6) {
		if hl.conn6, err = ListenConn6(ifi); err != nil {
			hl.Close()
			return nil, err
		}
		// Opened now rather than at the first takeover, which it
		// would delay.
		if hl.na, err = arp.NewNAAnnouncer(l.Name); err != nil {
			hl.Close()
			return nil, err
		}
	}
	return hl, nil
}

func (d *hostDataplane) OpenAnnouncer(l LinkInfo, fam Family) (Link, error) {
	if fam != FamilyIPv4 && fam != FamilyIPv6 && fam != FamilyBoth {
		return nil, fmt.Errorf("vrrp: open %s: address family %s is not supported", l.Name, fam)
	}
	ann, err := arp.NewAnnouncer(l.Name)
	if err != nil {
		return nil, err
	}
	return &announceLink{name: l.Name, announcers: announcers{name: l.Name, ann: ann}}, nil
}

// announcers announce a link's VIPs in their own family: gratuitous ARP
// for IPv4 ones, unsolicited neighbour advertisements for IPv6 ones,
// whatever family the link's adverts use. The neighbour advertiser opens
// on the first IPv6 address, so a link without one has no extra socket.
type announcers struct {
	name string
	ann  *arp.Announcer
	na   *arp.NAAnnouncer
}

// announce sends one announcement per address, each in its family, in
// runs of one family (no allocation).
func (a *announcers) announce(addrs []netip.Addr) (int, error) {
	sent := 0
	var errs []error
	for i := 0; i < len(addrs); {
		six := familyOf(addrs[i]) == FamilyIPv6
		j := i + 1
		for j < len(addrs) && (familyOf(addrs[j]) == FamilyIPv6) == six {
			j++
		}
		var k int
		var err error
		if six {
			if a.na == nil {
				a.na, err = arp.NewNAAnnouncer(a.name)
			}
			if err == nil {
				k, err = a.na.Announce(addrs[i:j])
			}
		} else {
			k, err = a.ann.Announce(addrs[i:j])
		}
		sent += k
		if err != nil {
			errs = append(errs, err)
		}
		i = j
	}
	return sent, errors.Join(errs...)
}

// announceAt is announce naming mac, another router's, as the addresses'
// hardware address (heal.go): gratuitous ARP for IPv4 ones, unsolicited
// neighbour advertisements for IPv6 ones, each from the link's own MAC.
func (a *announcers) announceAt(mac net.HardwareAddr, addrs []netip.Addr) (int, error) {
	sent := 0
	var errs []error
	for i := 0; i < len(addrs); {
		six := familyOf(addrs[i]) == FamilyIPv6
		j := i + 1
		for j < len(addrs) && (familyOf(addrs[j]) == FamilyIPv6) == six {
			j++
		}
		var k int
		var err error
		if six {
			if a.na == nil {
				a.na, err = arp.NewNAAnnouncer(a.name)
			}
			if err == nil {
				k, err = a.na.AnnounceAt(mac, addrs[i:j])
			}
		} else {
			k, err = a.ann.AnnounceAt(mac, addrs[i:j])
		}
		sent += k
		if err != nil {
			errs = append(errs, err)
		}
		i = j
	}
	return sent, errors.Join(errs...)
}

// reopen rebuilds the announcements for the link's hardware address now.
func (a *announcers) reopen() error {
	err := a.ann.Reopen()
	if a.na != nil {
		err = errors.Join(err, a.na.Reopen())
	}
	return err
}

func (a *announcers) close() {
	a.ann.Close()
	if a.na != nil {
		a.na.Close()
	}
}

func (d *hostDataplane) AddAddr(index int, p netip.Prefix, label string) error {
	return d.addrs.AddLabel(index, p, label)
}
func (d *hostDataplane) RemoveAddr(index int, p netip.Prefix) error { return d.addrs.Remove(index, p) }
func (d *hostDataplane) ListAddrs(index int) ([]vip.Addr, error)    { return d.addrs.List(index) }
func (d *hostDataplane) Close() {
	d.addrs.Close()
	if d.routes != nil {
		d.routes.Close()
	}
}

func (d *hostDataplane) Watch(ctx context.Context, addrs chan<- vip.Change, links chan<- LinkInfo) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = vip.Watch(ctx, addrs) }()
	go func() { defer wg.Done(); watchLinks(ctx, links) }()
	wg.Wait()
}

// hostLink is a link of the host: its advert sockets, IPv4 (conn) and
// IPv6 (conn6), each nil unless an instance advertises there in that
// family, and its announcers.
type hostLink struct {
	conn, conn6 *Conn
	announcers
}

// conns are the link's advert sockets and whether each is IPv6.
func (l *hostLink) conns() [2]struct {
	c   *Conn
	six bool
} {
	return [2]struct {
		c   *Conn
		six bool
	}{{l.conn, false}, {l.conn6, true}}
}

func (l *hostLink) Queue(msg []byte, src, dst netip.Addr, mac net.HardwareAddr) error {
	c := l.conn
	if familyOf(dst) == FamilyIPv6 {
		c = l.conn6
	}
	if c == nil {
		return fmt.Errorf("vrrp: send to %s on %s: no %s advert socket on this link", dst, l.name, familyOf(dst))
	}
	return c.Queue(msg, src, dst, mac)
}

func (l *hostLink) Pending() bool {
	return l.conn != nil && l.conn.Pending() || l.conn6 != nil && l.conn6.Pending()
}

func (l *hostLink) Flush() error {
	var err, err6 error
	if l.conn != nil {
		err = l.conn.Flush()
	}
	if l.conn6 != nil {
		err6 = l.conn6.Flush()
	}
	if err6 == nil {
		return err
	}
	return errors.Join(err, err6)
}

func (l *hostLink) Announce(addrs []netip.Addr) (int, error) { return l.announce(addrs) }
func (l *hostLink) AnnounceAt(mac net.HardwareAddr, addrs []netip.Addr) (int, error) {
	return l.announceAt(mac, addrs)
}

// SetHardwareAddr rebuilds the advert frames and the gratuitous ARP for
// mac. It may only be called from the goroutine that sends.
func (l *hostLink) SetHardwareAddr(mac net.HardwareAddr) error {
	if l.conn != nil {
		l.conn.SetHardwareAddr(mac)
	}
	return l.reopen()
}

func (l *hostLink) Close() {
	for _, c := range l.conns() {
		if c.c != nil {
			c.c.Close()
		}
	}
	l.close()
}

// announceLink is a link of the host that carries VIPs but no adverts:
// gratuitous ARP only, no VRRP socket (nothing is received on it).
type announceLink struct {
	name string
	announcers
}

func (l *announceLink) Queue([]byte, netip.Addr, netip.Addr, net.HardwareAddr) error {
	return fmt.Errorf("vrrp: %s carries VIPs only; no adverts are sent on it", l.name)
}
func (l *announceLink) Pending() bool                            { return false }
func (l *announceLink) Flush() error                             { return nil }
func (l *announceLink) Announce(addrs []netip.Addr) (int, error) { return l.announce(addrs) }
func (l *announceLink) SetHardwareAddr(net.HardwareAddr) error   { return l.reopen() }
func (l *announceLink) Close()                                   { l.close() }

func (l *announceLink) AnnounceAt(mac net.HardwareAddr, addrs []netip.Addr) (int, error) {
	return l.announceAt(mac, addrs)
}

// rxBatch is one batch of datagrams from a link's reader; the loop hands
// the buffer back on free when it is done with it.
type rxBatch struct {
	ifc  *iface
	six  bool // from the IPv6 advert socket
	b    *RecvBatch
	free chan *RecvBatch
}

// hostReceiver is the receive path on the host: a reader goroutine per
// link, blocked in recvmmsg, passes batches to the loop over a channel;
// before a takeover the loop also reads the sockets itself (drain).
type hostReceiver struct {
	ch chan rxBatch
}

func newHostReceiver() *hostReceiver { return &hostReceiver{ch: make(chan rxBatch, 16)} }

func (r *hostReceiver) batches() <-chan rxBatch { return r.ch }

func (r *hostReceiver) attach(n *Node, ifc *iface) {
	hl, ok := ifc.link.(*hostLink)
	if !ok {
		return
	}
	ifc.heldDirty = true // a new socket: give it the held-back adverts
	for _, c := range hl.conns() {
		if c.c != nil {
			r.read(n, ifc, c.c, c.six)
		}
	}
}

// read starts the reader goroutine of one advert socket of ifc's link.
func (r *hostReceiver) read(n *Node, ifc *iface, conn *Conn, six bool) {
	// Three batches: one being read, one being handled, one spare.
	free := make(chan *RecvBatch, 3)
	for i := 0; i < cap(free); i++ {
		free <- NewRecvBatch()
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		var errLog rateLog
		for {
			var b *RecvBatch
			select {
			case b = <-free:
			case <-n.ctx.Done():
				return
			}
			if err := conn.ReadBatch(b); err != nil {
				free <- b
				if errors.Is(err, net.ErrClosed) || n.ctx.Err() != nil {
					return
				}
				if ok, _ := errLog.allow(time.Now(), 10*time.Second); ok {
					n.log.Error("read failed", "interface", ifc.name, "err", err)
				}
				continue
			}
			select {
			case r.ch <- rxBatch{ifc: ifc, six: six, b: b, free: free}:
			case <-n.ctx.Done():
				return
			}
		}
	}()
}

// drain handles every datagram that has reached a socket by now: the
// batches the readers have passed on, then, read straight from each
// socket, those still queued in the kernel. A reader alone is not enough:
// with one P (vipd runs with GOMAXPROCS=1) a reader whose datagram arrived
// while the loop spun in awaitTakeover is runnable only once the runtime
// polls the network, which a Gosched does not make it do, so an advert
// that came before the deadline would go unseen until after the takeover.
func (r *hostReceiver) drain(n *Node) {
	runtime.Gosched()
	for {
		select {
		case rb := <-r.ch:
			n.handleBatch(rb)
			continue
		default:
		}
		break
	}
	r.takeHeld(n)
	for _, ifc := range n.ifaces {
		r.readNow(n, ifc)
	}
}

// readNowBatches bounds how many batches readNow takes in one go, so that
// a flood cannot hold the loop there.
const readNowBatches = 4

// readNow handles the datagrams queued on ifc's socket, without waiting.
func (r *hostReceiver) readNow(n *Node, ifc *iface) {
	hl, ok := ifc.link.(*hostLink)
	if !ok {
		return
	}
	if ifc.direct == nil {
		ifc.direct = NewRecvBatch()
	}
	for _, c := range hl.conns() {
		if c.c == nil {
			continue
		}
		for range readNowBatches {
			if err := c.c.ReadNow(ifc.direct); err != nil {
				if ok, _ := ifc.readLog.allow(time.Now(), 10*time.Second); ok {
					n.log.Error("read failed", "interface", ifc.name, "err", err)
				}
				break
			}
			n.handleDatagrams(ifc, ifc.direct, c.six)
			if ifc.direct.N < batchSize {
				break
			}
		}
	}
}
