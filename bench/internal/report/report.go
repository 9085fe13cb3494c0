// Package report holds what vipd's benchmark programs share to print their
// results: nearest-rank percentiles, millisecond formatting, and replacing
// one marked section of a Markdown report while keeping the rest.
package report

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Pct is the nearest-rank percentile p (0..100) of sorted durations. s must
// not be empty.
func Pct(s []time.Duration, p int) time.Duration {
	i := (p*len(s)+99)/100 - 1
	return s[max(0, min(i, len(s)-1))]
}

// Ms renders d in milliseconds with one decimal, "305.1 ms".
func Ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

// ReplaceSection writes content between the lines begin and end of the file
// at path, keeping everything outside them. If the markers are missing, the
// section is appended to the file (a missing file is created). The file is
// replaced atomically.
func ReplaceSection(path, begin, end, content string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	text := string(old)
	section := begin + "\n" + strings.TrimRight(content, "\n") + "\n" + end + "\n"
	bi := strings.Index(text, begin)
	ei := strings.Index(text, end)
	switch {
	case bi >= 0 && ei > bi:
		after := text[ei+len(end):]
		after = strings.TrimPrefix(after, "\n")
		text = text[:bi] + section + after
	case bi >= 0 || ei >= 0:
		return fmt.Errorf("%s: only one of the markers %q and %q is there, or they are out of order", path, begin, end)
	default:
		if text != "" && !strings.HasSuffix(text, "\n") {
			text += "\n"
		}
		if text != "" {
			text += "\n"
		}
		text += section
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".report-*")
	if err != nil {
		return err
	}
	if _, err := tmp.WriteString(text); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}
