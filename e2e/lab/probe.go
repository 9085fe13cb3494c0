package lab

import (
	"bytes"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// protocolICMP and protocolICMPv6 are the protocol numbers of ICMP and
// ICMPv6, for icmp.ParseMessage.
const (
	protocolICMP   = 1
	protocolICMPv6 = 58
)

// Probe is a client pinging one address from inside a host's namespace at
// a fixed interval and recording when each reply came back. It plays the
// part of the traffic that a VIP failover must not interrupt for long.
type Probe struct {
	target   netip.Addr
	six      bool // an IPv6 target: ICMPv6 echo, no IP header on receive
	interval time.Duration
	conn     *net.IPConn
	raw      syscall.RawConn
	lab      *Lab

	// id and token tell this probe's replies from those of any other
	// probe: a raw ICMP socket sees every echo reply in its namespace.
	id    int
	token [8]byte

	quit     chan struct{}
	sendDone chan struct{}
	recvDone chan struct{}
	stopOnce sync.Once
	final    Result

	mu       sync.Mutex
	first    time.Time // the grid's origin, or zero for a plain ticker
	start    time.Time
	sentAt   []time.Time // by sequence number
	answered []bool      // by sequence number
	replies  []Reply
	dups     int
	sendErrs int
	recvErr  error
}

// Reply is the first reply to one echo request.
type Reply struct {
	// Seq counts the probe's requests from 0; on the wire only its low 16
	// bits are sent as the ICMP sequence number.
	Seq      int
	Sent     time.Time
	Received time.Time
}

// RTT is the round-trip time of the reply.
func (r Reply) RTT() time.Duration { return r.Received.Sub(r.Sent) }

// Result is what a probe saw.
type Result struct {
	Target   netip.Addr
	Interval time.Duration
	// Start is when the first request went out; End is when the probe
	// stopped, or when the snapshot was taken.
	Start, End time.Time
	// Sent counts requests, including those whose send failed.
	Sent int
	// Received counts requests that were answered.
	Received int
	// Duplicates counts further replies to requests already answered.
	Duplicates int
	// SendErrors counts requests the kernel refused to send.
	SendErrors int
	// Replies holds the first reply to each answered request, in the order
	// they arrived.
	Replies []Reply
	// Err is set if receiving failed and the probe stopped listening
	// before it was stopped.
	Err error
}

// StartProbe starts pinging target from inside the host's namespace every
// interval, until Stop or Lab.Close. target is IPv4 or IPv6 (ICMPv6
// echo; the host needs IPv6 on, see EnableIPv6).
func (h *Host) StartProbe(target netip.Addr, interval time.Duration) (*Probe, error) {
	return h.StartProbeAt(target, interval, time.Time{})
}

// StartProbeAt is StartProbe with the requests on a fixed grid: the first
// at first and the k-th at first + k×interval, each placed with
// SleepUntil, so that a benchmark can put a fault at a chosen phase
// between two requests (see Realign). A zero first is StartProbe's plain
// ticker.
func (h *Host) StartProbeAt(target netip.Addr, interval time.Duration, first time.Time) (*Probe, error) {
	target = target.Unmap()
	six := target.Is6()
	if interval <= 0 {
		return nil, fmt.Errorf("probe %s from %s: interval %s is not positive", target, h.NS, interval)
	}
	var conn *net.IPConn
	err := inNamespace(h.NS, func() error {
		// The raw ICMP socket that icmp.ListenPacket("ip4:icmp", ...)
		// makes, but as the *net.IPConn underneath, whose raw reads
		// give the kernel's receive timestamps.
		network, laddr := "ip4:icmp", "0.0.0.0"
		if six {
			network, laddr = "ip6:ipv6-icmp", "::"
		}
		c, err := net.ListenPacket(network, laddr)
		if err != nil {
			return err
		}
		conn = c.(*net.IPConn)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("probe %s from %s: open icmp socket: %w", target, h.NS, err)
	}
	raw, err := setUpProbeSocket(conn, six)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("probe %s from %s: %w", target, h.NS, err)
	}

	p := &Probe{
		target:   target,
		six:      six,
		interval: interval,
		conn:     conn,
		raw:      raw,
		lab:      h.lab,
		first:    first,
		id:       rand.IntN(1 << 16),
		quit:     make(chan struct{}),
		sendDone: make(chan struct{}),
		recvDone: make(chan struct{}),
	}
	_, _ = crand.Read(p.token[:]) // never fails (crypto/rand panics instead)
	if err := h.lab.register(p); err != nil {
		conn.Close()
		return nil, fmt.Errorf("probe %s from %s: %w", target, h.NS, err)
	}
	go p.receive()
	go p.send()
	return p, nil
}

// Snapshot returns what the probe has seen so far, without stopping it.
func (p *Probe) Snapshot() Result {
	return p.snapshot(time.Now())
}

// Stop stops sending, gives replies to the last requests a moment to come
// back, closes the socket once both goroutines have ended, and returns the
// result. Later calls return the same result.
func (p *Probe) Stop() Result {
	p.stopOnce.Do(func() {
		close(p.quit)
		<-p.sendDone
		end := time.Now()
		grace := min(max(2*p.interval, 20*time.Millisecond), 200*time.Millisecond)
		if err := p.conn.SetReadDeadline(end.Add(grace)); err != nil {
			// Closing is the other way to end the receiver.
			p.conn.Close()
		}
		<-p.recvDone
		p.conn.Close()
		p.lab.unregister(p)
		p.final = p.snapshot(end)
	})
	return p.final
}

func (p *Probe) stop() { p.Stop() }

func (p *Probe) snapshot(end time.Time) Result {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Result{
		Target:     p.target,
		Interval:   p.interval,
		Start:      p.start,
		End:        end,
		Sent:       len(p.sentAt),
		Received:   len(p.replies),
		Duplicates: p.dups,
		SendErrors: p.sendErrs,
		Replies:    slices.Clone(p.replies),
		Err:        p.recvErr,
	}
}

func (p *Probe) send() {
	defer close(p.sendDone)
	dst := &net.IPAddr{IP: p.target.AsSlice()}
	if !p.origin().IsZero() {
		p.sendOnGrid(dst)
		return
	}
	tick := time.NewTicker(p.interval)
	defer tick.Stop()
	for {
		p.sendOne(dst)
		select {
		case <-p.quit:
			return
		case <-tick.C:
		}
	}
}

// sendOnGrid sends on the grid first + k×interval until quit. Realign may
// move the grid; the request after the next one follows the new grid, and
// no two requests go out less than half an interval apart.
func (p *Probe) sendOnGrid(dst *net.IPAddr) {
	next := p.origin()
	for {
		SleepUntil(next)
		select {
		case <-p.quit:
			return
		default:
		}
		p.sendOne(dst)
		origin, sent := p.origin(), time.Now()
		k := (sent.Sub(origin) + p.interval - 1) / p.interval
		next = origin.Add(k * p.interval)
		if next.Sub(sent) < p.interval/2 {
			next = next.Add(p.interval)
		}
	}
}

func (p *Probe) origin() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.first
}

// Realign moves the grid of a probe started with StartProbeAt so that a
// request goes out at origin (if it is far enough ahead) and every
// interval before and after it.
func (p *Probe) Realign(origin time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.first.IsZero() {
		p.first = origin
	}
}

func (p *Probe) sendOne(dst *net.IPAddr) {
	p.mu.Lock()
	seq := len(p.sentAt)
	now := time.Now()
	if seq == 0 {
		p.start = now
	}
	p.sentAt = append(p.sentAt, now)
	p.answered = append(p.answered, false)
	p.mu.Unlock()

	data := make([]byte, 16)
	copy(data, p.token[:])
	binary.BigEndian.PutUint64(data[8:], uint64(seq))
	var typ icmp.Type = ipv4.ICMPTypeEcho
	if p.six {
		typ = ipv6.ICMPTypeEchoRequest // the kernel fills in the checksum
	}
	msg := icmp.Message{
		Type: typ,
		Body: &icmp.Echo{ID: p.id, Seq: seq & 0xffff, Data: data},
	}
	b, err := msg.Marshal(nil)
	if err == nil {
		_, err = p.conn.WriteTo(b, dst)
	}
	if err != nil {
		// Expected while the target is unreachable (a failed neighbour
		// lookup is reported on the next send); the request still counts
		// as sent and unanswered.
		p.mu.Lock()
		p.sendErrs++
		p.mu.Unlock()
	}
}

// setUpProbeSocket lets only echo replies through to conn and has the
// kernel stamp each with its arrival time.
func setUpProbeSocket(conn *net.IPConn, six bool) (syscall.RawConn, error) {
	if six {
		var filter ipv6.ICMPFilter
		filter.SetAll(true)
		filter.Accept(ipv6.ICMPTypeEchoReply)
		if err := ipv6.NewPacketConn(conn).SetICMPFilter(&filter); err != nil {
			return nil, fmt.Errorf("set icmpv6 filter: %w", err)
		}
	} else {
		var filter ipv4.ICMPFilter
		filter.SetAll(true)
		filter.Accept(ipv4.ICMPTypeEchoReply)
		if err := ipv4.NewPacketConn(conn).SetICMPFilter(&filter); err != nil {
			return nil, fmt.Errorf("set icmp filter: %w", err)
		}
	}
	raw, err := conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	var serr error
	err = raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return nil, fmt.Errorf("enable receive timestamps: %w", err)
	}
	return raw, nil
}

// receive reads replies until Stop. Each reply is stamped with the time the
// kernel received it, not the time this goroutine got round to reading it,
// so a busy machine delays the bookkeeping but not the measurement.
func (p *Probe) receive() {
	defer close(p.recvDone)
	buf := make([]byte, 1500)
	oob := make([]byte, 128)
	for {
		n, oobn, from, err := p.recv(buf, oob, true)
		if err != nil {
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				// Stop's deadline: take what is queued and end.
				p.drain(buf, oob)
			case errors.Is(err, net.ErrClosed):
			default:
				p.mu.Lock()
				p.recvErr = fmt.Errorf("receive: %w", err)
				p.mu.Unlock()
			}
			return
		}
		p.handleDatagram(buf[:n], oob[:oobn], from)
	}
}

// drain handles every datagram already queued on the socket.
func (p *Probe) drain(buf, oob []byte) {
	if err := p.conn.SetReadDeadline(time.Time{}); err != nil {
		return
	}
	for {
		n, oobn, from, err := p.recv(buf, oob, false)
		if err != nil {
			return
		}
		p.handleDatagram(buf[:n], oob[:oobn], from)
	}
}

// recv reads one datagram with its control messages. Without wait it
// returns EAGAIN rather than waiting for one.
func (p *Probe) recv(buf, oob []byte, wait bool) (n, oobn int, from unix.Sockaddr, err error) {
	var rerr error
	err = p.raw.Read(func(fd uintptr) bool {
		n, oobn, _, from, rerr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_DONTWAIT)
		return !wait || !errors.Is(rerr, unix.EAGAIN)
	})
	if err != nil {
		return 0, 0, nil, err
	}
	return n, oobn, from, rerr
}

// handleDatagram takes one datagram from the raw socket, IPv4 header
// included (over IPv6 the message alone, from from), with its control
// messages.
func (p *Probe) handleDatagram(b, oob []byte, from unix.Sockaddr) {
	received := receiveTime(oob, time.Now())
	if p.six {
		if sa, ok := from.(*unix.SockaddrInet6); ok {
			p.handle(b, sa.Addr[:], received)
		}
		return
	}
	ipHeader, err := ipv4.ParseHeader(b)
	if err != nil || ipHeader.Len > len(b) {
		return
	}
	p.handle(b[ipHeader.Len:], ipHeader.Src, received)
}

// receiveTime returns the kernel's receive timestamp from oob, on the
// monotonic clock of now (read after the datagram), or now if there is
// none. The kernel stamps wall-clock time; carrying it over as an offset
// from now keeps it comparable with other time.Now values even if the wall
// clock steps later.
func receiveTime(oob []byte, now time.Time) time.Time {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return now
	}
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_SOCKET || m.Header.Type != unix.SCM_TIMESTAMPNS || len(m.Data) < 16 {
			continue
		}
		sec := int64(binary.NativeEndian.Uint64(m.Data[0:8]))
		nsec := int64(binary.NativeEndian.Uint64(m.Data[8:16]))
		// now.Sub uses the wall clock, as the stamp has no monotonic
		// reading.
		age := now.Sub(time.Unix(sec, nsec))
		if age < 0 {
			return now
		}
		return now.Add(-age)
	}
	return now
}

// handle takes one ICMP message from src that arrived at now.
func (p *Probe) handle(b []byte, src net.IP, now time.Time) {
	if !src.Equal(p.target.AsSlice()) {
		return
	}
	proto, reply := protocolICMP, icmp.Type(ipv4.ICMPTypeEchoReply)
	if p.six {
		proto, reply = protocolICMPv6, ipv6.ICMPTypeEchoReply
	}
	m, err := icmp.ParseMessage(proto, b)
	if err != nil || m.Type != reply {
		return
	}
	e, ok := m.Body.(*icmp.Echo)
	if !ok || e.ID != p.id || len(e.Data) < 16 || !bytes.Equal(e.Data[:8], p.token[:]) {
		return
	}
	seq := binary.BigEndian.Uint64(e.Data[8:16])
	if uint64(e.Seq) != seq&0xffff {
		return
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if seq >= uint64(len(p.sentAt)) {
		return
	}
	if p.answered[seq] {
		p.dups++
		return
	}
	p.answered[seq] = true
	p.replies = append(p.replies, Reply{Seq: int(seq), Sent: p.sentAt[seq], Received: now})
}

// Lost is the number of requests that were never answered.
func (r Result) Lost() int { return r.Sent - r.Received }

// LongestGap is the longest time within [from, to] without a reply: the
// largest interval between consecutive reply arrivals in that window,
// counting the stretch from from to the first of them and from the last of
// them to to. With no reply in the window it is to - from; with to not
// after from it is 0. Between two replies, the time the probe itself sent
// late is not counted: their requests went out further apart than their
// sequence numbers say (the sending goroutine was not scheduled on time),
// and no target could have answered sooner than it was asked.
func (r Result) LongestGap(from, to time.Time) time.Duration {
	if !to.After(from) {
		return 0
	}
	reps := r.repliesIn(from, to)
	var longest time.Duration
	prev := from
	for i, rep := range reps {
		gap := rep.Received.Sub(prev)
		if i > 0 && r.Interval > 0 && rep.Seq > reps[i-1].Seq {
			due := time.Duration(rep.Seq-reps[i-1].Seq) * r.Interval
			if late := rep.Sent.Sub(reps[i-1].Sent) - due; late > 0 {
				gap = max(gap-late, 0)
			}
		}
		longest = max(longest, gap)
		prev = rep.Received
	}
	return max(longest, to.Sub(prev))
}

// repliesIn returns the replies that arrived within [from, to], by
// arrival.
func (r Result) repliesIn(from, to time.Time) []Reply {
	var reps []Reply
	for _, rep := range r.Replies {
		if !rep.Received.Before(from) && !rep.Received.After(to) {
			reps = append(reps, rep)
		}
	}
	slices.SortStableFunc(reps, func(a, b Reply) int { return a.Received.Compare(b.Received) })
	return reps
}

// FirstReplyAfter returns the earliest reply arrival at or after t.
func (r Result) FirstReplyAfter(t time.Time) (time.Time, bool) {
	var first time.Time
	found := false
	for _, rep := range r.Replies {
		if !rep.Received.Before(t) && (!found || rep.Received.Before(first)) {
			first, found = rep.Received, true
		}
	}
	return first, found
}

// RepliesBetween counts replies that arrived within [from, to].
func (r Result) RepliesBetween(from, to time.Time) int {
	return len(r.repliesIn(from, to))
}
