package config

import (
	"cmp"
	"fmt"
	"math"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// parser walks a YAML node tree and collects every problem it finds, so that
// one run reports them all.
type parser struct {
	file  string
	errs  Errors
	warns []Error
	seen  map[Error]bool // an aliased node is walked once per use; report it once
	// advertiseTrue holds the lines of VIPs written with advertise: true
	// (see family).
	advertiseTrue map[int]bool
}

// warnf records a setting that loads but is overridden.
func (p *parser) warnf(line int, format string, args ...any) {
	w := Error{File: p.file, Line: line, Msg: fmt.Sprintf(format, args...)}
	if !slices.Contains(p.warns, w) {
		p.warns = append(p.warns, w)
	}
}

func (p *parser) errorf(line int, format string, args ...any) {
	e := Error{File: p.file, Line: line, Msg: fmt.Sprintf(format, args...)}
	if p.seen[e] {
		return
	}
	if p.seen == nil {
		p.seen = make(map[Error]bool)
	}
	p.seen[e] = true
	p.errs = append(p.errs, e)
}

// sorted returns the errors in line order, keeping the order of discovery
// within a line.
func (p *parser) sorted() Errors {
	slices.SortStableFunc(p.errs, func(a, b Error) int { return cmp.Compare(a.Line, b.Line) })
	return p.errs
}

var yamlErrorLine = regexp.MustCompile(`(?s)^yaml: line ([0-9]+): (.*)$`)

// syntaxError turns an error of the YAML library into an Error with the line
// the library reports.
func (p *parser) syntaxError(err error) {
	msg := err.Error()
	if m := yamlErrorLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		p.errorf(line, "invalid YAML: %s", m[2])
		return
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	line := 1
	if strings.HasPrefix(msg, "unknown anchor") {
		// Reported after parsing, with no position at all.
		line = 0
	}
	// Otherwise the library counts lines from zero and leaves the number
	// out when it is zero: the problem is on the first line.
	p.errorf(line, "invalid YAML: %s", msg)
}

// field is a value in a mapping, with what is needed to report on it.
type field struct {
	name string     // the key, as shown in messages
	line int        // line of the value where it is written
	node *yaml.Node // the value, with aliases followed
}

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; i < 8 && n != nil && n.Kind == yaml.AliasNode && n.Alias != nil; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names what a node holds, for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	switch {
	case isNull(n):
		return "nothing"
	case n.Kind == yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		if n.ShortTag() == "!!str" {
			return strconv.Quote(v)
		}
		return v
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.AliasNode:
		return "an unresolved alias"
	}
	return "a YAML document"
}

// fields returns the entries of the mapping in f by key. It reports a value
// that is not a mapping, keys that are not strings, keys not in known (where
// says where, as in `unknown key "x" in instance`) and keys given twice, of
// which the first counts. A null value is an empty mapping.
func (p *parser) fields(f field, where string, known ...string) (map[string]field, bool) {
	out := make(map[string]field)
	if isNull(f.node) {
		return out, true
	}
	if f.node.Kind != yaml.MappingNode {
		p.errorf(f.line, "%s: expected a mapping, got %s", f.name, describe(f.node))
		return out, false
	}
	firstLine := make(map[string]int)
	c := f.node.Content
	for i := 0; i+1 < len(c); i += 2 {
		k, v := resolve(c[i]), c[i+1]
		if k == nil || k.Kind != yaml.ScalarNode {
			p.errorf(c[i].Line, "a key must be a string, got %s %s", describe(k), where)
			continue
		}
		key := k.Value
		if !slices.Contains(known, key) {
			p.errorf(c[i].Line, "unknown key %q %s", key, where)
			continue
		}
		if line, dup := firstLine[key]; dup {
			p.errorf(c[i].Line, "duplicate key %q %s (first at line %d)", key, where, line)
			continue
		}
		firstLine[key] = c[i].Line
		out[key] = field{name: key, line: v.Line, node: resolve(v)}
	}
	return out, true
}

// list returns the items of the sequence in f, reporting a value that is not
// one. A null value is an empty list.
func (p *parser) list(f field) ([]*yaml.Node, bool) {
	switch {
	case isNull(f.node):
		return nil, true
	case f.node.Kind == yaml.SequenceNode:
		return f.node.Content, true
	}
	p.errorf(f.line, "%s: expected a list, got %s", f.name, describe(f.node))
	return nil, false
}

// str returns a scalar as text; null is the empty string.
func (p *parser) str(f field) (string, bool) {
	switch {
	case isNull(f.node):
		return "", true
	case f.node.Kind == yaml.ScalarNode:
		return f.node.Value, true
	}
	p.errorf(f.line, "%s: expected a string, got %s", f.name, describe(f.node))
	return "", false
}

// integer returns an integer scalar. Decimal text is read as decimal even
// with a leading zero: YAML 1.1 would make 051 octal, which no one writing a
// VRID means. A value too big for int64 comes back clamped so that the
// caller's range check reports it.
func (p *parser) integer(f field) (int64, bool) {
	n := f.node
	if n == nil || n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		p.errorf(f.line, "%s: expected an integer, got %s", f.name, describe(n))
		return 0, false
	}
	if v, err := strconv.ParseInt(n.Value, 10, 64); err == nil {
		return v, true
	}
	var v int64
	if err := n.Decode(&v); err == nil {
		return v, true
	}
	var u uint64
	if err := n.Decode(&u); err == nil {
		return math.MaxInt64, true
	}
	p.errorf(f.line, "%s: expected an integer, got %s", f.name, describe(n))
	return 0, false
}

// inRange reports v, read from f, when it is outside lo..hi.
func (p *parser) inRange(f field, v, lo, hi int64) bool {
	if v < lo || v > hi {
		p.errorf(f.line, "%s: %s is out of range %d..%d", f.name, f.node.Value, lo, hi)
		return false
	}
	return true
}

func (p *parser) boolean(f field) (bool, bool) {
	n := f.node
	if n != nil && n.Kind == yaml.ScalarNode && n.ShortTag() == "!!bool" {
		var b bool
		if err := n.Decode(&b); err == nil {
			return b, true
		}
	}
	p.errorf(f.line, "%s: expected true or false, got %s", f.name, describe(n))
	return false, false
}

// duration reads a duration in Go syntax ("100ms", "1.5s"). A bare number
// is refused, with a hint, rather than guessing its unit; only 0 needs none.
func (p *parser) duration(f field) (time.Duration, bool) {
	n := f.node
	if isNull(n) || n.Kind != yaml.ScalarNode {
		p.errorf(f.line, "%s: expected a duration such as 1s, got %s", f.name, describe(n))
		return 0, false
	}
	if n.Value == "0" {
		return 0, true
	}
	if tag := n.ShortTag(); tag == "!!int" || tag == "!!float" {
		if _, err := time.ParseDuration(n.Value + "s"); err == nil {
			p.errorf(f.line, "%s: %s needs a unit, e.g. %ss", f.name, n.Value, n.Value)
			return 0, false
		}
	}
	d, err := time.ParseDuration(n.Value)
	if err != nil {
		p.errorf(f.line, "%s: %s is not a duration; use Go syntax such as 100ms, 1s or 1.5s", f.name, describe(n))
		return 0, false
	}
	return d, true
}

// durationIn reads a duration and reports it when it is outside lo..hi.
func (p *parser) durationIn(f field, lo, hi time.Duration) (time.Duration, bool) {
	d, ok := p.duration(f)
	if !ok {
		return 0, false
	}
	if d < lo || d > hi {
		p.errorf(f.line, "%s: %s is out of range %s..%s", f.name, f.node.Value, shortDuration(lo), shortDuration(hi))
		return 0, false
	}
	return d, true
}

// shortDuration writes d as a person would in the file: 1h rather than
// Go's 1h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// absPath reports s, read from f, unless it is an absolute path the kernel
// can take.
func (p *parser) absPath(f field, s string) bool {
	switch {
	case !path.IsAbs(s):
		p.errorf(f.line, "%s: %q is not an absolute path", f.name, s)
	case strings.IndexByte(s, 0) >= 0:
		p.errorf(f.line, "%s: path contains a NUL byte", f.name)
	default:
		return true
	}
	return false
}

// qualify prefixes the names of nested fields, so that messages say
// "track.scripts.interval" rather than a bare "interval".
func qualify(fs map[string]field, prefix string) {
	for k, f := range fs {
		f.name = prefix + k
		fs[k] = f
	}
}
