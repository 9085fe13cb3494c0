package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/vipd/vipd/internal/control"
)

func cmdMaintenance(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("maintenance", stderr)
	socketPath := socketFlags(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return flagError(err)
	}
	if len(pos) != 2 || (pos[1] != "on" && pos[1] != "off") {
		return fmt.Errorf("usage: vipd maintenance INSTANCE on|off [--socket PATH]")
	}
	socket, err := socketPath()
	if err != nil {
		return err
	}
	body := control.EncodeMaintenance(pos[0], pos[1] == "on")
	req, err := http.NewRequest(http.MethodPost, "http://vipd/v1/maintenance", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := controlClient(socket, 10*time.Second).Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) {
			err = op.Err
		}
		return fmt.Errorf("no vipd answering on %s: %v", socket, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s", strings.TrimSpace(string(msg)))
	}
	fmt.Fprintf(stdout, "%s: maintenance %s\n", pos[0], pos[1])
	return nil
}
