package main

import (
	"fmt"
	"io"

	"github.com/vipd/vipd/config"
	"github.com/vipd/vipd/internal/doctor"
)

func cmdDoctor(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("doctor", stderr)
	path := fs.String("config", defaultConfig, "configuration file")
	listen := fs.Duration("listen", 0, "how long to listen for adverts (default: 3 advert intervals + 0.5s, at most 10s)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return flagError(err)
	}
	if err := noArgs("doctor", pos); err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		printConfigErrors(stderr, err)
		return exitError{1}
	}
	failed := false
	for _, v := range doctor.Run(cfg, *listen) {
		fmt.Fprintln(stdout, v)
		failed = failed || v.Level == doctor.Fail
	}
	if failed {
		return exitError{1}
	}
	return nil
}
