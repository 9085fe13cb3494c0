package vrrp

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/vipd/vipd/vip"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

func (d *hostDataplane) AddRoute(r vip.Route) error       { return d.routes.AddRoute(r) }
func (d *hostDataplane) RemoveRoute(r vip.Route) error    { return d.routes.RemoveRoute(r) }
func (d *hostDataplane) AddRule(r vip.Rule) error         { return d.routes.AddRule(r) }
func (d *hostDataplane) RemoveRule(r vip.Rule) error      { return d.routes.RemoveRule(r) }
func (d *hostDataplane) ListRoutes() ([]vip.Route, error) { return d.routes.OwnedRoutes() }
func (d *hostDataplane) ListRules() ([]vip.Rule, error)   { return d.routes.OwnedRules() }

// WatchRoutes follows two netlink subscriptions: routes (the library's
// RouteSubscribeWithOptions) and IPv4 rules (RTNLGRP_IPV4_RULE, on a socket
// of the library's nl package: it has no rule subscription of its own). A
// deletion of a route or rule with vipd's mark is signalled; a broken
// subscription is renewed after 200 ms and signalled, as changes may have
// been lost meanwhile.
func (d *hostDataplane) WatchRoutes(ctx context.Context, out chan<- struct{}) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); resubscribe(ctx, out, watchRouteDeletions) }()
	go func() { defer wg.Done(); resubscribe(ctx, out, watchRuleDeletions) }()
	wg.Wait()
}

// signal tells the loop to check vipd's routes and rules, without waiting:
// a value already waiting covers this one.
func signal(out chan<- struct{}) {
	select {
	case out <- struct{}{}:
	default:
	}
}

// resubscribe runs watch until ctx is done, again 200 ms after it fails.
func resubscribe(ctx context.Context, out chan<- struct{}, watch func(context.Context, chan<- struct{}) error) {
	first := true
	for ctx.Err() == nil {
		if !first {
			signal(out)
		}
		first = false
		_ = watch(ctx, out)
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func watchRouteDeletions(ctx context.Context, out chan<- struct{}) error {
	ch := make(chan netlink.RouteUpdate, 64)
	done := make(chan struct{})
	var subErr error
	err := netlink.RouteSubscribeWithOptions(ch, done, netlink.RouteSubscribeOptions{
		ErrorCallback: func(err error) { subErr = err },
	})
	if err != nil {
		return fmt.Errorf("vrrp: subscribe to route changes: %w", err)
	}
	defer func() {
		close(done)
		for range ch {
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case u, ok := <-ch:
			if !ok {
				if subErr == nil {
					subErr = errors.New("vrrp: route subscription closed")
				}
				return subErr
			}
			if u.Type == unix.RTM_DELROUTE && u.Protocol == netlink.RouteProtocol(vip.Proto) {
				signal(out)
			}
		}
	}
}

// ruleHdrLen is the size of struct fib_rule_hdr, before a rule message's
// attributes.
const ruleHdrLen = 12

func watchRuleDeletions(ctx context.Context, out chan<- struct{}) error {
	s, err := nl.Subscribe(unix.NETLINK_ROUTE, unix.RTNLGRP_IPV4_RULE)
	if err != nil {
		return fmt.Errorf("vrrp: subscribe to rule changes: %w", err)
	}
	// Receive waits in Go's poller (no wake-up while no rule changes);
	// closing the socket when ctx ends makes it return.
	stop := context.AfterFunc(ctx, s.Close)
	defer func() {
		if stop() {
			s.Close()
		}
	}()
	for ctx.Err() == nil {
		msgs, from, err := s.Receive()
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("vrrp: rule subscription: %w", err)
		}
		if from.Pid != nl.PidKernel {
			continue
		}
		for _, m := range msgs {
			if m.Header.Type != unix.RTM_DELRULE || len(m.Data) < ruleHdrLen {
				continue
			}
			attrs, err := nl.ParseRouteAttr(m.Data[ruleHdrLen:])
			if err != nil {
				continue
			}
			for _, a := range attrs {
				if a.Attr.Type == unix.FRA_PROTOCOL && len(a.Value) == 1 && a.Value[0] == vip.Proto {
					signal(out)
				}
			}
		}
	}
	return nil
}
