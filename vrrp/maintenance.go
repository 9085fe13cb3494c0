package vrrp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// maintenanceFile is the state file's layout.
type maintenanceFile struct {
	Maintenance []string `json:"maintenance"`
}

func (n *Node) stateFile() string {
	dir := n.cfg.StateDir
	if dir == "" {
		dir = "/var/lib/vipd"
	}
	return filepath.Join(dir, "maintenance.json")
}

// loadMaintenance reads which instances are in maintenance. A missing file
// means none; an unreadable or corrupt one is an error, so that a node
// put in maintenance never silently comes back into service.
func (n *Node) loadMaintenance() error {
	b, err := os.ReadFile(n.stateFile())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("maintenance state %s: %w", n.stateFile(), err)
	}
	var f maintenanceFile
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("maintenance state %s: %w (fix or remove the file)", n.stateFile(), err)
	}
	for _, in := range n.insts {
		in.maintenance = slices.Contains(f.Maintenance, in.cfg.Name)
		if in.maintenance {
			n.log.Warn("instance is in maintenance (from the state file)", "instance", in.cfg.Name, "file", n.stateFile())
		}
	}
	return nil
}

// maintenanceNames lists the instances in maintenance, for the state file.
func (n *Node) maintenanceNames() []string {
	names := []string{}
	for _, in := range n.insts {
		if in.maintenance {
			names = append(names, in.cfg.Name)
		}
	}
	return names
}

type maintReq struct {
	instance string
	on       bool
	done     chan maintReply
}

// maintReply is the loop's answer: the change is in force (err nil) and
// the state to save is queued as seq.
type maintReply struct {
	err error
	seq uint64
}

// ErrNoInstance is returned for a name no instance has.
var ErrNoInstance = errors.New("no such instance")

// ErrNotSaved wraps a failure to persist maintenance state: the change is
// in force but will not survive a restart.
var ErrNotSaved = errors.New("in force, but not saved")

// SetMaintenance turns maintenance on (resign at once, stay backup) or off
// for one instance, and records it in the state directory so that it
// survives a restart. The loop puts the change in force; the file is
// written by the Node's writer, never on the loop, and SetMaintenance
// waits for that write: an error wrapping ErrNotSaved means the change is
// in force but the write failed.
func (n *Node) SetMaintenance(ctx context.Context, instance string, on bool) error {
	req := maintReq{instance: instance, on: on, done: make(chan maintReply, 1)}
	select {
	case n.maintQ <- req:
	case <-n.loopDone:
		return ErrNotRunning
	case <-ctx.Done():
		return ctx.Err()
	}
	var r maintReply
	select {
	case r = <-req.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if r.err != nil {
		return r.err
	}
	if err := n.maint.wait(ctx, r.seq); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w yet: the state file is still being written: %v", ErrNotSaved, err)
		}
		return fmt.Errorf("%w: %v", ErrNotSaved, err)
	}
	return nil
}

// setMaintenance is the loop's part of SetMaintenance: it puts the change
// in force and queues the state for the writer, never touching the disk.
func (n *Node) setMaintenance(req maintReq, now time.Time) maintReply {
	n.takeHeld()
	var in *instance
	for _, x := range n.insts {
		if x.cfg.Name == req.instance {
			in = x
		}
	}
	if in == nil {
		return maintReply{err: fmt.Errorf("%w %q", ErrNoInstance, req.instance)}
	}
	if in.maintenance != req.on {
		in.maintenance = req.on
		n.log.Info("maintenance", "instance", in.cfg.Name, "on", req.on)
		if in.group != nil {
			n.updateHolds(in.group.members, now)
		} else {
			n.updateHolds([]*instance{in}, now)
		}
	}
	if n.maint == nil {
		n.maint = newMaintWriter(n.log)
	}
	return maintReply{seq: n.maint.queue(n.stateFile(), n.maintenanceNames())}
}
