package lab

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// resubscribeDelay spaces attempts to subscribe again after the netlink
// subscription failed.
const resubscribeDelay = 50 * time.Millisecond

// AddrEvent is one appearance or disappearance of the watched address.
type AddrEvent struct {
	// Time is when the watch learnt of it.
	Time time.Time
	// Added is true when the address appeared on a link, false when it
	// went away.
	Added bool
	// LinkIndex is the link it appeared on or went from.
	LinkIndex int
}

// AddrWatch records when one address comes and goes on any link of a host,
// from rtnetlink address notifications in the host's namespace. It is how a
// test learns when vipd added or removed a VIP without polling.
type AddrWatch struct {
	addr   netip.Addr
	nsName string
	ns     netns.NsHandle
	lab    *Lab

	quit     chan struct{}
	done     chan struct{}
	stopOnce sync.Once

	mu      sync.Mutex
	links   map[int]bool // links holding addr
	events  []AddrEvent
	lastErr error
	resubs  int
}

// WatchAddr starts recording appearances and disappearances of a on any
// link in the host's namespace, until Stop or Lab.Close. If a is already
// present, that shows as an Added event at the start of the watch. Every
// change made after WatchAddr returns is seen.
func (h *Host) WatchAddr(a netip.Addr) (*AddrWatch, error) {
	ns, err := netns.GetFromName(h.NS)
	if err != nil {
		return nil, fmt.Errorf("watch %s in %s: open network namespace: %w", a, h.NS, err)
	}
	w := &AddrWatch{
		addr:   a.Unmap(),
		nsName: h.NS,
		ns:     ns,
		lab:    h.lab,
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
		links:  map[int]bool{},
	}
	// Subscribe before returning, so that nothing after this call is
	// missed.
	updates, subDone, err := w.subscribe()
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("watch %s in %s: %w", a, h.NS, err)
	}
	if err := h.lab.register(w); err != nil {
		close(subDone)
		for range updates {
		}
		ns.Close()
		return nil, fmt.Errorf("watch %s in %s: %w", a, h.NS, err)
	}
	go w.run(updates, subDone)
	return w, nil
}

// Events returns the events so far, oldest first.
func (w *AddrWatch) Events() []AddrEvent {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.events)
}

// Present reports whether the address is on some link, as far as the watch
// knows.
func (w *AddrWatch) Present() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.links) > 0
}

// Err returns the last error of the netlink subscription, if any; the
// watch subscribes again after one.
func (w *AddrWatch) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastErr
}

// Stop ends the watch and waits for its goroutines. Events stays readable.
func (w *AddrWatch) Stop() {
	w.stopOnce.Do(func() {
		close(w.quit)
		<-w.done
		w.ns.Close()
		w.lab.unregister(w)
	})
}

func (w *AddrWatch) stop() { w.Stop() }

// subscribe opens a netlink subscription in the namespace that also lists
// the addresses already there. Closing the returned done channel ends it;
// updates is closed once its receiver has ended.
func (w *AddrWatch) subscribe() (updates chan netlink.AddrUpdate, done chan struct{}, err error) {
	updates = make(chan netlink.AddrUpdate, 64)
	done = make(chan struct{})
	ns := w.ns
	err = netlink.AddrSubscribeWithOptions(updates, done, netlink.AddrSubscribeOptions{
		Namespace:    &ns,
		ListExisting: true,
		ErrorCallback: func(err error) {
			select {
			case <-done:
				// Closing the socket on purpose makes it report
				// a failed receive.
			default:
				w.mu.Lock()
				w.lastErr = err
				w.mu.Unlock()
			}
		},
	})
	if err != nil {
		// The library may have started the goroutine that closes its
		// socket on done.
		close(done)
		return nil, nil, fmt.Errorf("subscribe to address events: %w", err)
	}
	return updates, done, nil
}

// run consumes one subscription after another until Stop.
func (w *AddrWatch) run(updates chan netlink.AddrUpdate, subDone chan struct{}) {
	defer close(w.done)
	for {
		if stopped := w.consume(updates, subDone); stopped {
			return
		}
		// The subscription ended by itself (say, the socket's buffer
		// overflowed): subscribe again, then catch up on removals
		// missed in between; additions come with the new listing.
		for {
			select {
			case <-w.quit:
				return
			case <-time.After(resubscribeDelay):
			}
			var err error
			updates, subDone, err = w.subscribe()
			if err == nil {
				w.mu.Lock()
				w.resubs++
				w.mu.Unlock()
				w.resync()
				break
			}
			w.mu.Lock()
			w.lastErr = err
			w.mu.Unlock()
		}
	}
}

// consume applies updates until the subscription ends (false) or Stop
// (true). Either way it closes subDone and leaves no goroutine of the
// subscription behind.
func (w *AddrWatch) consume(updates chan netlink.AddrUpdate, subDone chan struct{}) (stopped bool) {
	for {
		select {
		case u, ok := <-updates:
			if !ok {
				close(subDone)
				return false
			}
			w.apply(u, time.Now())
		case <-w.quit:
			close(subDone)
			// The library's receiver may be blocked sending to us;
			// it closes updates once its socket is closed.
			for range updates {
			}
			return true
		}
	}
}

func (w *AddrWatch) apply(u netlink.AddrUpdate, now time.Time) {
	ip, ok := netip.AddrFromSlice(u.LinkAddress.IP)
	if !ok || ip.Unmap() != w.addr {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if u.NewAddr {
		// Flag and lifetime changes and the initial listing repeat
		// RTM_NEWADDR for an address already there.
		if w.links[u.LinkIndex] {
			return
		}
		w.links[u.LinkIndex] = true
	} else {
		delete(w.links, u.LinkIndex)
	}
	w.events = append(w.events, AddrEvent{Time: now, Added: u.NewAddr, LinkIndex: u.LinkIndex})
}

// resync records removals that happened while no subscription was open.
func (w *AddrWatch) resync() {
	nh, err := netlink.NewHandleAt(w.ns, unix.NETLINK_ROUTE)
	if err != nil {
		w.mu.Lock()
		w.lastErr = fmt.Errorf("resync: %w", err)
		w.mu.Unlock()
		return
	}
	defer nh.Close()
	addrs, err := nh.AddrList(nil, netlink.FAMILY_ALL)
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.lastErr = fmt.Errorf("resync: %w", err)
		return
	}
	holding := map[int]bool{}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == w.addr {
			holding[a.LinkIndex] = true
		}
	}
	for idx := range w.links {
		if !holding[idx] {
			delete(w.links, idx)
			w.events = append(w.events, AddrEvent{Time: now, Added: false, LinkIndex: idx})
		}
	}
}
