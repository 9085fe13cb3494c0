package vrrp

import (
	"bytes"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A frame's Ethernet source is the MAC given to add (an instance's
// virtual MAC), else the interface's; the rest of the frame is the same.
func TestFrameSenderSourceMAC(t *testing.T) {
	s := &frameSender{src: [6]byte{0x02, 0, 0, 0, 0, 1}}
	msg := []byte{0x31, 51, 100, 1, 0, 10, 0, 0, 198, 18, 0, 100}
	src := netip.MustParseAddr("198.18.0.1")
	vmac := net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x01, 51}
	s.add(msg, src, vmac)
	s.add(msg, src, nil)
	if s.n != 2 {
		t.Fatalf("%d frames queued, want 2", s.n)
	}
	frame := func(i int) []byte {
		return s.arena[i*(headerLen+len(msg)) : (i+1)*(headerLen+len(msg))]
	}
	f0, f1 := frame(0), frame(1)
	if !bytes.Equal(f0[0:6], groupMAC[:]) || !bytes.Equal(f0[6:12], vmac) {
		t.Errorf("frame with the virtual MAC: destination %x source %x, want %x and %s", f0[0:6], f0[6:12], groupMAC, vmac)
	}
	if !bytes.Equal(f1[6:12], s.src[:]) {
		t.Errorf("frame without a MAC: source %x, want the interface's %x", f1[6:12], s.src)
	}
	if !bytes.Equal(f0[headerLen:], msg) || !bytes.Equal(f1[headerLen:], msg) {
		t.Error("the message was not copied after the headers")
	}
}

// frameSenderPair is a frame sender writing to one end of a datagram
// socket pair, whose other end is returned: a stand-in for the packet
// socket whose receive queue (at most net.unix.max_dgram_qlen datagrams)
// fills as a NIC's send buffer does.
func frameSenderPair(t *testing.T) (*frameSender, int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The smallest send buffer: a few frames fill it.
	if err := unix.SetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_SNDBUF, 1); err != nil {
		t.Fatal(err)
	}
	s := &frameSender{ifname: "pair0", fd: fds[0], src: [6]byte{0x02, 0, 0, 0, 0, 1}}
	t.Cleanup(func() { s.close(); unix.Close(fds[1]) })
	return s, fds[1]
}

func queueFrames(s *frameSender, n int) {
	msg := []byte{0x31, 51, 100, 1, 0, 10, 0, 0, 198, 18, 0, 100}
	for range n {
		s.add(msg, netip.MustParseAddr("198.18.0.1"), nil)
	}
}

// The frame socket is outside the runtime's poller: a flush that finds
// the send buffer full waits for it to drain, and sends every frame.
func TestFrameSenderWaitsForFullBuffer(t *testing.T) {
	s, peer := frameSenderPair(t)
	queueFrames(s, batchSize)
	got := make(chan int)
	go func() {
		time.Sleep(20 * time.Millisecond) // let the flush find the queue full
		n := 0
		buf := make([]byte, 2048)
		deadline := time.Now().Add(5 * time.Second)
		for n < batchSize && time.Now().Before(deadline) {
			if _, err := unix.Read(peer, buf); err != nil {
				time.Sleep(time.Millisecond)
				continue
			}
			n++
		}
		got <- n
	}()
	start := time.Now()
	if err := s.flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
	if el := time.Since(start); el < 15*time.Millisecond {
		t.Errorf("flush returned after %v, before the peer began to read at 20ms: the buffer never filled", el)
	}
	if n := <-got; n != batchSize {
		t.Errorf("the peer read %d frames, want %d", n, batchSize)
	}
	if s.n != 0 {
		t.Errorf("%d frames still queued after the flush", s.n)
	}
}

// A send buffer that stays full makes flush give up after frameSendWait,
// saying how many frames were not sent, and not hang the loop.
func TestFrameSenderGivesUpOnFullBuffer(t *testing.T) {
	s, _ := frameSenderPair(t)
	queueFrames(s, batchSize)
	start := time.Now()
	err := s.flush()
	el := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "frames not sent") || !strings.Contains(err.Error(), "pair0") {
		t.Fatalf("flush into a queue nobody reads: %v, want an error naming pair0 and the frames not sent", err)
	}
	if el < frameSendWait || el > frameSendWait+2*time.Second {
		t.Errorf("flush gave up after %v, want about %v", el, frameSendWait)
	}
	// The next flush starts afresh.
	if s.n != 0 || s.used != 0 {
		t.Errorf("%d frames (%d bytes) left queued after giving up", s.n, s.used)
	}
}

// A closed sender refuses to send rather than write to a reused
// descriptor.
func TestFrameSenderClosed(t *testing.T) {
	s, _ := frameSenderPair(t)
	s.close()
	queueFrames(s, 1)
	if err := s.flush(); err == nil {
		t.Fatal("flush on a closed sender succeeded")
	}
}
