package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseConflictProbeInterval(t *testing.T) {
	for _, tc := range []struct {
		line string
		want time.Duration
		off  bool
	}{
		{"", DefaultConflictProbeInterval, false},
		{"conflict_probe_interval: 5s", 5 * time.Second, false},
		{"conflict_probe_interval: 500ms", 500 * time.Millisecond, false},
		{"conflict_probe_interval: 1h", time.Hour, false},
		{"conflict_probe_interval: 0", 0, true},
	} {
		cfg, err := Parse("t.yaml", []byte(tc.line+"\n"+minimal))
		if err != nil {
			t.Fatalf("%q: %v", tc.line, err)
		}
		if got := cfg.ConflictProbes(); got != tc.want || cfg.NoConflictProbes != tc.off {
			t.Errorf("%q: ConflictProbes() = %v, NoConflictProbes = %v; want %v, %v", tc.line, got, cfg.NoConflictProbes, tc.want, tc.off)
		}
	}
	// A Config built in code, without the key, probes at the default.
	if got := (&Config{}).ConflictProbes(); got != DefaultConflictProbeInterval {
		t.Errorf("zero Config: ConflictProbes() = %v, want the default", got)
	}
}

func TestParseConflictProbeIntervalRefused(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{"conflict_probe_interval: 100ms", "t.yaml:1: conflict_probe_interval: 100ms is out of range 500ms..1h (or 0: no probes)"},
		{"conflict_probe_interval: 2h", "t.yaml:1: conflict_probe_interval: 2h is out of range 500ms..1h (or 0: no probes)"},
		{"conflict_probe_interval: -1s", "t.yaml:1: conflict_probe_interval: -1s is out of range"},
		{"conflict_probe_interval: 2", "t.yaml:1: conflict_probe_interval: 2 needs a unit"},
		{"conflict_probe_interval: often", "t.yaml:1: conflict_probe_interval:"},
	} {
		_, err := Parse("t.yaml", []byte(tc.line+"\n"+minimal))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want an error containing %q", tc.line, err, tc.want)
		}
	}
}
