package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/vipd/vipd/internal/control"
)

// printUpstreams writes a line per upstream of a master's upstream check:
// "web: upstream moved: 198.18.0.1 (default gateway; 1 attempt, checked
// 3s ago)", with the reason when it has not moved.
func printUpstreams(w io.Writer, in control.Instance, now time.Time) {
	for _, u := range in.Upstreams {
		addr := u.Address
		if addr == "" {
			addr = "the default gateway"
		}
		var notes []string
		if u.Default && u.Address != "" {
			notes = append(notes, "default gateway")
		}
		what := fmt.Sprintf("%d attempts", u.Attempts)
		if u.Attempts == 1 {
			what = "1 attempt"
		}
		if u.LastCheck != nil {
			what += ", checked " + since(*u.LastCheck, now) + " ago"
		}
		notes = append(notes, what)
		line := fmt.Sprintf("%s: upstream %s: %s (%s)", in.Name, strings.ReplaceAll(u.State, "-", " "), addr, strings.Join(notes, "; "))
		if u.State != "moved" && u.Error != "" {
			line += ": " + u.Error
		}
		fmt.Fprintln(w, trunc(line, 100))
	}
}
