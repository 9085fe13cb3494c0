package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/vipd/vipd/config"
)

func cmdCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("check", stderr)
	path := fs.String("config", defaultConfig, "configuration file")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return flagError(err)
	}
	if err := noArgs("check", pos); err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		printConfigErrors(stderr, err)
		return exitError{1}
	}
	printConfigWarnings(stderr, cfg)
	fmt.Fprintf(stdout, "%s: ok, %d instance(s)\n", *path, len(cfg.Instances))
	return nil
}

// printConfigWarnings prints one `file:line: warning: message` line per
// setting that loads but is overridden.
func printConfigWarnings(w io.Writer, cfg *config.Config) {
	for _, wr := range cfg.Warnings {
		wr.Msg = "warning: " + wr.Msg
		fmt.Fprintln(w, wr.Error())
	}
}

// logConfigWarnings logs the configuration's warnings, one line each.
func logConfigWarnings(log *slog.Logger, cfg *config.Config) {
	for _, wr := range cfg.Warnings {
		log.Warn("configuration setting overridden", "warning", wr.Error())
	}
}

// printConfigErrors prints one `file:line: message` line per problem.
func printConfigErrors(w io.Writer, err error) {
	var errs config.Errors
	if errors.As(err, &errs) {
		for _, e := range errs {
			fmt.Fprintln(w, e.Error())
		}
		return
	}
	fmt.Fprintln(w, err)
}
