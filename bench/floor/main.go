// Command vipd-floor is the least a Go program does as the master of one
// VRRPv3 instance, with vipd's own mechanics: the Go floor that vipd's
// master is measured against (bench/compare's floor phase).
//
// On one P (GOMAXPROCS 1) it waits on a timerfd through the runtime's
// poller, as vipd's protocol timer does (vrrp/waketimer.go), but with
// less: its read callback asks to wait once and is done when called
// again, never reading the expiry count (vipd reads it, twice a wake-up:
// skipping the reads can lose an expiry when the loop re-arms the timer
// from another P; here one goroutine arms and waits), and at each expiry sends one prebuilt Ethernet frame,
// a VRRPv3 advert to 224.0.0.18 (vrrp/frames.go: IPv4 ID incremented and
// the header checksum redone per frame), on a packet socket bound to the
// interface with PACKET_QDISC_BYPASS, with a raw sendto, then arms the
// timerfd for the next deadline with a raw timerfd_settime (absolute:
// start + k × interval). Nothing else: no state machine, no receive
// socket, no netlink, no conflict probes; the only other goroutine is
// os/signal's, asleep until SIGTERM or SIGINT, on which it prints what it
// sent and exits (1 if a send failed).
package main

import (
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func main() {
	runtime.GOMAXPROCS(1)
	ifname := flag.String("interface", "eth0", "interface to send the adverts on")
	src := flag.String("src", "", "IPv4 source address of the adverts (required)")
	vrid := flag.Uint("vrid", 1, "VRID, 1..255")
	prio := flag.Uint("priority", 150, "priority, 1..254")
	interval := flag.Duration("interval", time.Second, "advert interval, whole centiseconds")
	vip := flag.String("vip", "", "the VIP the adverts carry (required)")
	flag.Parse()
	if err := run(*ifname, *src, *vrid, *prio, *interval, *vip); err != nil {
		fmt.Fprintln(os.Stderr, "vipd-floor:", err)
		os.Exit(1)
	}
}

func run(ifname, srcText string, vrid, prio uint, interval time.Duration, vipText string) error {
	src, err := netip.ParseAddr(srcText)
	if err != nil {
		return fmt.Errorf("-src %q: %w", srcText, err)
	}
	vip, err := netip.ParseAddr(vipText)
	if err != nil {
		return fmt.Errorf("-vip %q: %w", vipText, err)
	}
	if vrid < 1 || vrid > 255 {
		return fmt.Errorf("-vrid %d: want 1..255", vrid)
	}
	if prio < 1 || prio > 254 {
		return fmt.Errorf("-priority %d: want 1..254", prio)
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return fmt.Errorf("-interface %s: %w", ifname, err)
	}
	frame, err := buildFrame(ifi.HardwareAddr, src, uint8(vrid), uint8(prio), interval, vip)
	if err != nil {
		return err
	}

	sock, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("packet socket: %w", err)
	}
	defer unix.Close(sock)
	if err := unix.Bind(sock, &unix.SockaddrLinklayer{Ifindex: ifi.Index}); err != nil {
		return fmt.Errorf("bind the packet socket to %s: %w", ifname, err)
	}
	if err := unix.SetsockoptInt(sock, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1); err != nil {
		return fmt.Errorf("PACKET_QDISC_BYPASS on %s: %w", ifname, err)
	}

	tfd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("timerfd: %w", err)
	}
	tf := os.NewFile(uintptr(tfd), "timerfd")
	defer tf.Close()
	raw, err := tf.SyscallConn()
	if err != nil {
		return fmt.Errorf("timerfd: %w", err)
	}
	// False (wait for the poller) on its first call, true (done) on the
	// second, with no system call of its own: less than vipd's
	// wakeTimer.doRead, which reads the expiry count.
	var waited bool
	wait := func(uintptr) bool {
		waited = !waited
		return !waited
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)

	var now unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &now); err != nil {
		return fmt.Errorf("clock_gettime: %w", err)
	}
	start := time.Now()
	next := now.Nano()
	var sent, failed uint64
	var firstErr error
	for {
		// One advert, as vipd's master sends it on its deadline.
		nextID(frame)
		_, _, errno := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(sock), uintptr(unsafe.Pointer(&frame[0])), uintptr(len(frame)), unix.MSG_DONTWAIT, 0, 0)
		if errno != 0 {
			failed++
			if firstErr == nil {
				firstErr = errno
			}
		} else {
			sent++
		}
		next += int64(interval)
		spec := unix.ItimerSpec{Value: unix.NsecToTimespec(next)}
		if _, _, errno := unix.RawSyscall6(unix.SYS_TIMERFD_SETTIME, uintptr(tfd), unix.TFD_TIMER_ABSTIME, uintptr(unsafe.Pointer(&spec)), 0, 0, 0); errno != 0 {
			return fmt.Errorf("timerfd_settime: %w", errno)
		}
		waited = false
		if err := raw.Read(wait); err != nil {
			return fmt.Errorf("wait on the timerfd: %w", err)
		}
		select {
		case s := <-sigs:
			fmt.Fprintf(os.Stderr, "vipd-floor: %v: sent %d adverts in %v, %d failed\n", s, sent, time.Since(start).Round(time.Millisecond), failed)
			if firstErr != nil {
				return fmt.Errorf("%d of %d sends failed, the first: %w", failed, sent+failed, firstErr)
			}
			return nil
		default:
		}
	}
}
