package config

import "time"

// Conflict detection's probes (conflict_probe_interval): every node sends an
// ARP probe for each watched address once per interval. 0 turns the probes
// off; the frames heard on the link still count.

// DefaultConflictProbeInterval is conflict_probe_interval when absent.
const DefaultConflictProbeInterval = 2 * time.Second

// Bounds of conflict_probe_interval (other than 0).
const (
	minConflictProbeInterval = 500 * time.Millisecond
	maxConflictProbeInterval = time.Hour
)

// conflictProbeInterval reads the top-level conflict_probe_interval of fs
// into cfg.
func (p *parser) conflictProbeInterval(fs map[string]field, cfg *Config) {
	f, ok := fs["conflict_probe_interval"]
	if !ok {
		return
	}
	d, ok := p.duration(f)
	if !ok {
		return
	}
	if d == 0 {
		cfg.NoConflictProbes = true
		return
	}
	if d < minConflictProbeInterval || d > maxConflictProbeInterval {
		p.errorf(f.line, "%s: %s is out of range %s..%s (or 0: no probes)", f.name, f.node.Value,
			shortDuration(minConflictProbeInterval), shortDuration(maxConflictProbeInterval))
		return
	}
	cfg.ConflictProbeInterval = d
}

// ConflictProbes is the probe interval in force: 0 when the probes are off.
func (c *Config) ConflictProbes() time.Duration {
	switch {
	case c.NoConflictProbes:
		return 0
	case c.ConflictProbeInterval == 0:
		return DefaultConflictProbeInterval
	}
	return c.ConflictProbeInterval
}
