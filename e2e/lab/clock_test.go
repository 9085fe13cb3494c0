package lab

import (
	"testing"
	"time"
)

// SleepUntil never returns before its deadline, whether that is past, within
// the spin or further off.
func TestSleepUntil(t *testing.T) {
	for _, d := range []time.Duration{-time.Millisecond, 0, 50 * time.Microsecond, spinLead, 2 * time.Millisecond} {
		at := time.Now().Add(d)
		SleepUntil(at)
		if now := time.Now(); now.Before(at) {
			t.Errorf("SleepUntil(now%+v) returned %v early", d, at.Sub(now))
		}
	}
}
