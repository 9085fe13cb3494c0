package vrrp

import (
	"testing"
	"time"
)

func TestWakeTimer(t *testing.T) {
	wt, err := newWakeTimer()
	if err != nil {
		t.Fatal(err)
	}
	defer wt.Stop()

	start := time.Now()
	if err := wt.Set(20 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	select {
	case <-wt.C:
		if el := time.Since(start); el < 20*time.Millisecond {
			t.Errorf("ticked after %v, before the 20ms it was set for", el)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no tick within 5s of a timer set for 20ms")
	}

	// Re-arming moves the expiry; disarming stops it.
	if err := wt.Set(time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := wt.Set(0); err != nil {
		t.Fatal(err)
	}
	select {
	case <-wt.C:
	case <-time.After(5 * time.Second):
		t.Fatal("a timer set for 0 did not tick at once")
	}
	if err := wt.Set(30 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := wt.Disarm(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-wt.C:
		t.Error("a disarmed timer ticked")
	case <-time.After(100 * time.Millisecond):
	}
}

// The expiry count is never read (doRead): every expiry must still tick
// once, and none tick twice.
func TestWakeTimerEveryExpiryTicksOnce(t *testing.T) {
	wt, err := newWakeTimer()
	if err != nil {
		t.Fatal(err)
	}
	defer wt.Stop()
	for i := range 20 {
		start := time.Now()
		if err := wt.Set(2 * time.Millisecond); err != nil {
			t.Fatal(err)
		}
		select {
		case <-wt.C:
			if el := time.Since(start); el < 2*time.Millisecond {
				t.Fatalf("expiry %d ticked after %v, before the 2ms it was set for", i, el)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("expiry %d: no tick within 5s of a timer set for 2ms", i)
		}
	}
	select {
	case <-wt.C:
		t.Error("a tick with no expiry left")
	case <-time.After(50 * time.Millisecond):
	}
}
