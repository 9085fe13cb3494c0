package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/vipd/vipd/internal/control"
)

// printRoutes lists the routes and rules of each instance, then the static
// ones, one a line: the owner, the route or rule as ip shows it, and
// whether it is installed ("on"; "off" on a backup; "waiting" for its
// source VIP; "failing" with the error).
func printRoutes(w io.Writer, s control.Status) {
	var lines []string
	add := func(owner string, routes []control.Route, rules []control.Rule) {
		for _, r := range routes {
			lines = append(lines, owner+": route "+routeText(r)+"  "+presence(r.Present, r.Waiting, r.AddError))
		}
		for _, r := range rules {
			lines = append(lines, owner+": rule "+ruleText(r)+"  "+presence(r.Present, false, r.AddError))
		}
	}
	for _, in := range s.Instances {
		add(in.Name, in.Routes, in.Rules)
	}
	add("static", s.Static.Routes, s.Static.Rules)
	if len(lines) == 0 {
		return
	}
	fmt.Fprintln(w)
	for _, l := range lines {
		fmt.Fprintln(w, trunc(l, 100))
	}
}

func presence(on, waiting bool, addErr string) string {
	switch {
	case on:
		return "on"
	case addErr != "":
		return "failing: " + addErr
	case waiting:
		return "waiting for its source VIP"
	}
	return "off"
}

func routeText(r control.Route) string {
	var b strings.Builder
	if r.Type != "unicast" && r.Type != "" {
		b.WriteString(r.Type + " ")
	}
	if r.To == "0.0.0.0/0" {
		b.WriteString("default")
	} else {
		b.WriteString(r.To)
	}
	if r.Via != "" {
		b.WriteString(" via " + r.Via)
	}
	if r.Interface != "" {
		b.WriteString(" dev " + r.Interface)
	}
	if r.Source != "" {
		b.WriteString(" src " + r.Source)
	}
	if r.Table != "main" {
		b.WriteString(" table " + r.Table)
	}
	if r.Metric != 0 {
		fmt.Fprintf(&b, " metric %d", r.Metric)
	}
	if r.Scope != "global" && r.Scope != "" {
		b.WriteString(" scope " + r.Scope)
	}
	return b.String()
}

func ruleText(r control.Rule) string {
	s := "from " + r.From
	if r.To != "all" {
		s += " to " + r.To
	}
	if r.IIF != "" {
		s += " iif " + r.IIF
	}
	if r.OIF != "" {
		s += " oif " + r.OIF
	}
	if r.FwMark != "" {
		s += " fwmark " + r.FwMark
	}
	if r.Priority != 0 {
		s += fmt.Sprintf(" priority %d", r.Priority)
	}
	return s + " lookup " + r.Table
}
