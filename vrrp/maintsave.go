package vrrp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
)

// maintWriter saves the maintenance state off the protocol loop. The loop
// only queues the state it has put in force (queue, which never waits on
// the disk); the writer's goroutine writes the newest state queued, one
// write at a time, so the last state always wins; a caller waits for the
// write that covers its change.
type maintWriter struct {
	log *slog.Logger
	// save writes the state file; saveMaintenanceFile but in tests.
	save func(path string, names []string) error
	wake chan struct{} // capacity 1: "a new state was queued"

	mu      sync.Mutex
	path    string
	names   []string
	queued  uint64        // sequence number of the newest state queued
	written uint64        // of the newest state a write was tried for
	ok      uint64        // of the newest state written successfully
	err     error         // the error of the newest failed write
	changed chan struct{} // closed and replaced after every write
}

func newMaintWriter(log *slog.Logger) *maintWriter {
	return &maintWriter{
		log: log, wake: make(chan struct{}, 1), changed: make(chan struct{}),
		save: func(path string, names []string) error { return saveMaintenanceFile(path, names, (*os.File).Sync) },
	}
}

// queue records the state to save and returns its sequence number, for
// wait. It returns at once.
func (w *maintWriter) queue(path string, names []string) uint64 {
	w.mu.Lock()
	w.queued++
	w.path, w.names = path, names
	seq := w.queued
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return seq
}

// run writes queued states until ctx is done, then writes the last one
// still pending and returns.
func (w *maintWriter) run(ctx context.Context) {
	for {
		w.mu.Lock()
		seq, path, names := w.queued, w.path, w.names
		pending := seq > w.written
		w.mu.Unlock()
		if !pending {
			select {
			case <-w.wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		err := w.save(path, names)
		if err != nil {
			w.log.Error("maintenance state not saved", "err", err)
		}
		w.mu.Lock()
		w.written = seq
		if err == nil {
			w.ok = seq
		} else {
			w.err = err
		}
		close(w.changed)
		w.changed = make(chan struct{})
		w.mu.Unlock()
	}
}

// wait returns once the state with sequence number seq, or a newer one,
// has been written: nil if it was saved, else the write's error.
func (w *maintWriter) wait(ctx context.Context, seq uint64) error {
	for {
		w.mu.Lock()
		ok, written, err, changed := w.ok, w.written, w.err, w.changed
		w.mu.Unlock()
		switch {
		case ok >= seq:
			return nil
		case written >= seq:
			return err
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// saveMaintenanceFile writes the state file atomically and durably: a
// temporary file, synced, renamed over the old one, and then the directory
// synced (with syncDir), without which a crash can lose the rename.
func saveMaintenanceFile(path string, names []string, syncDir func(*os.File) error) error {
	if names == nil {
		names = []string{}
	}
	b, _ := json.Marshal(maintenanceFile{Maintenance: names})
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("saving maintenance state: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".maintenance-*")
	if err != nil {
		return fmt.Errorf("saving maintenance state: %w", err)
	}
	_, werr := tmp.Write(append(b, '\n'))
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("saving maintenance state to %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("saving maintenance state to %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("saving maintenance state to %s: sync directory: %w", path, err)
	}
	err = syncDir(d)
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("saving maintenance state to %s: sync directory %s: %w", path, dir, err)
	}
	return nil
}
