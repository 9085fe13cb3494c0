package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vipd/vipd/config"
	"github.com/vipd/vipd/internal/control"
)

const defaultSocket = "/run/vipd/vipd.sock"

// socketFlags adds --socket and --config; the socket is --socket, else the
// config's control_socket when --config is given, else the default.
func socketFlags(fs *flag.FlagSet) func() (string, error) {
	socket := fs.String("socket", "", "control socket (default "+defaultSocket+", or the config's control_socket)")
	cfgPath := fs.String("config", "", "read the control socket's path from this configuration file")
	return func() (string, error) {
		if *socket != "" {
			return *socket, nil
		}
		if *cfgPath != "" {
			cfg, err := config.Load(*cfgPath)
			if err != nil {
				return "", err
			}
			return cfg.ControlSocket, nil
		}
		return defaultSocket, nil
	}
}

func controlClient(path string, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}},
	}
}

// controlGet sends GET path over the socket; an error is one line that
// names the socket.
func controlGet(ctx context.Context, c *http.Client, socket, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://vipd"+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) {
			err = op.Err
		}
		return nil, fmt.Errorf("no vipd answering on %s: %v", socket, err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, fmt.Errorf("vipd on %s: %s: %s", socket, resp.Status, strings.TrimSpace(string(b)))
	}
	return resp, nil
}

func cmdStatus(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("status", stderr)
	socketPath := socketFlags(fs)
	asJSON := fs.Bool("json", false, "print the status as JSON")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return flagError(err)
	}
	if err := noArgs("status", pos); err != nil {
		return err
	}
	socket, err := socketPath()
	if err != nil {
		return err
	}
	resp, err := controlGet(context.Background(), controlClient(socket, 5*time.Second), socket, "/v1/status")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("reading status from %s: %w", socket, err)
	}
	if *asJSON {
		_, err := stdout.Write(body)
		return err
	}
	var s control.Status
	if err := json.Unmarshal(body, &s); err != nil {
		return fmt.Errorf("decoding status from %s: %w", socket, err)
	}
	printStatus(stdout, s, time.Now())
	return nil
}

// printStatus renders the status as a table that fits 100 columns: one
// line per instance, then one per further VIP.
func printStatus(w io.Writer, s control.Status, now time.Time) {
	var table strings.Builder
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tIFACE\tVRID\tSTATE\tPRIO\tMASTER\tSINCE\tVIPS")
	for _, in := range s.Instances {
		prio := fmt.Sprintf("%d/%d", in.EffectivePriority, in.Priority)
		master := in.MasterAddress
		if master == "" {
			master = "-"
		}
		state := in.State
		if in.Maintenance {
			state += " (maint)"
		} else if in.Held {
			state += " (held)"
		}
		cells := []string{trunc(in.Name, 14), trunc(in.Interface, 10), fmt.Sprint(in.VRID), state, prio,
			master, since(in.LastTransition, now)}
		if len(in.VIPs) == 0 {
			fmt.Fprintln(tw, strings.Join(append(cells, "-"), "\t"))
		}
		for i, v := range in.VIPs {
			if i > 0 {
				cells = []string{"", "", "", "", "", "", ""}
			}
			fmt.Fprintln(tw, strings.Join(append(cells, vipCell(v, in.Interface)), "\t"))
		}
	}
	tw.Flush()
	// Long names and descriptions lose their ends, not the columns.
	for _, line := range strings.SplitAfter(table.String(), "\n") {
		if line == "" {
			continue
		}
		fmt.Fprintln(w, trunc(strings.TrimRight(line, " \n"), 100))
	}
	for _, in := range s.Instances {
		if in.SourceAddress != "" && in.SourceAddress != in.PrimaryAddress {
			fmt.Fprintln(w, trunc(fmt.Sprintf("%s: adverts from %s (source_address; %s's primary address is %s)",
				in.Name, in.SourceAddress, in.Interface, in.PrimaryAddress), 100))
		}
		for _, v := range in.VIPs {
			if v.AddError != "" {
				fmt.Fprintln(w, trunc(fmt.Sprintf("%s: VIP %s cannot be added (%d failed adds, retrying): %s",
					in.Name, v.Address, v.AddFailures, v.AddError), 100))
			}
			for _, c := range v.Conflicts {
				fmt.Fprintln(w, trunc(fmt.Sprintf("%s: VIP %s: CONFLICT: %s answers for it too, since %s",
					in.Name, v.Address, c.MAC, c.Since.Format(time.RFC3339)), 100))
			}
		}
		printUpstreams(w, in, now)
		if lm := in.LowerPriorityMaster; lm != nil {
			fmt.Fprintf(w, "\n%s: %s keeps advertising as master at priority %d since %s (%d adverts); it does not accept ours: re-announcing with backoff\n",
				in.Name, lm.Address, lm.Priority, lm.Since.Format(time.RFC3339), lm.Adverts)
		}
	}
	printRoutes(w, s)
	if !s.Reload.OK {
		fmt.Fprintf(w, "\nthe last configuration reload failed (%s); the previous configuration is running\n",
			s.Reload.Time.Format(time.RFC3339))
	}
}

// vipCell is "address [label or interface] on|off|failing description (owner)",
// kept short enough for the table to fit 100 columns; the bracket is there
// for a VIP with a label or on another interface than its instance's
// (ifname).
func vipCell(v control.VIP, ifname string) string {
	on := "off"
	switch {
	case v.Present:
		on = "on"
	case v.AddError != "":
		on = "failing"
	}
	s := v.Address + " " + on
	switch {
	case v.Label != "":
		s = v.Address + " [" + v.Label + "] " + on
	case v.Interface != "" && v.Interface != ifname:
		s = v.Address + " [" + v.Interface + "] " + on
	}
	desc := v.Description
	if v.Owner != "" {
		desc = strings.TrimSpace(desc + " (" + v.Owner + ")")
	}
	if desc != "" {
		s += " " + desc
	}
	return trunc(s, 40)
}

func trunc(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func since(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

func cmdEvents(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("events", stderr)
	socketPath := socketFlags(fs)
	asJSON := fs.Bool("json", false, "print each event as a JSON line")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return flagError(err)
	}
	if err := noArgs("events", pos); err != nil {
		return err
	}
	socket, err := socketPath()
	if err != nil {
		return err
	}
	resp, err := controlGet(context.Background(), controlClient(socket, 0), socket, "/v1/events")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if *asJSON {
			fmt.Fprintln(stdout, sc.Text())
			continue
		}
		var e control.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return fmt.Errorf("decoding event from %s: %w", socket, err)
		}
		line := fmt.Sprintf("%s %s %s vrid %d: %s -> %s (%s)", e.Time.Format(time.RFC3339Nano), e.Instance,
			e.Interface, e.VRID, e.From, e.To, e.Reason)
		if e.Peer != "" {
			line += fmt.Sprintf(" advert from %s priority %d", e.Peer, e.PeerPriority)
		}
		fmt.Fprintln(stdout, line)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("event stream from %s: %w", socket, err)
	}
	return fmt.Errorf("vipd on %s closed the event stream (stopped, or this client fell behind)", socket)
}
