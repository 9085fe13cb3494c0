package vrrp

import (
	"net/netip"
	"sync"
	"time"
)

// TransitionEvent is one state change of an instance.
type TransitionEvent struct {
	Time         time.Time
	Instance     string
	Interface    string
	VRID         uint8
	From, To     State
	Reason       Reason
	Priority     uint8      // our effective priority
	Peer         netip.Addr // the advert's sender, when an advert caused it
	PeerPriority uint8
}

// subscribers fans transitions out to watchers (the control socket's
// event stream). The loop never blocks on a watcher: one whose buffer is
// full is cut off (its channel closed), and it can subscribe again.
type subscribers struct {
	mu   sync.Mutex
	next int
	subs map[int]chan TransitionEvent
}

// Subscribe returns a channel of transitions with room for buf of them, and
// a function that ends the subscription. The channel is closed when the
// subscription ends, when the watcher falls buf events behind, or when
// the Node stops.
func (n *Node) Subscribe(buf int) (<-chan TransitionEvent, func()) {
	s := &n.subs
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := make(chan TransitionEvent, max(buf, 1))
	if s.subs == nil {
		s.subs = map[int]chan TransitionEvent{}
	}
	if n.stopped {
		close(ch)
		return ch, func() {}
	}
	id := s.next
	s.next++
	s.subs[id] = ch
	return ch, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if c, ok := s.subs[id]; ok {
			delete(s.subs, id)
			close(c)
		}
	}
}

func (s *subscribers) publish(ev TransitionEvent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, c := range s.subs {
		select {
		case c <- ev:
		default:
			delete(s.subs, id)
			close(c)
		}
	}
}

func (s *subscribers) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, c := range s.subs {
		delete(s.subs, id)
		close(c)
	}
}
