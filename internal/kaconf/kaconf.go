package kaconf

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Node is one keyword line of a keepalived configuration, with the block
// that follows it if there is one.
type Node struct {
	Keyword string
	// Args are the words after the keyword, split as keepalived splits a
	// line: at blanks, with a "..." word kept whole and its quotes removed.
	Args []string
	// Raw is the line as keepalived hands it to a keyword (comments
	// removed, definitions substituted, cut at braces). Script and notify
	// lines are split again from it with SplitQuoted.
	Raw      string
	File     string
	Line     int
	HasBlock bool
	Block    []*Node
}

// Pos is "file:line".
func (n *Node) Pos() string { return fmt.Sprintf("%s:%d", n.File, n.Line) }

// Problem is something in the file that keepalived itself would complain
// about or that this reader does not follow.
type Problem struct {
	File string
	Line int
	Msg  string
	// Lost is true when part of the configuration could not be read (an
	// include that matches nothing, a construct not followed); false for
	// what keepalived itself only warns about.
	Lost bool
}

func (p Problem) String() string {
	if p.Line == 0 {
		return p.File + ": " + p.Msg
	}
	return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg)
}

// Tree is a whole configuration with the files it included.
type Tree struct {
	Nodes    []*Node
	Files    []string // every file read, the main one first
	Problems []Problem
}

// Options change how the file is read.
type Options struct {
	// ConfigID decides keepalived's "@id line" conditional lines, as
	// keepalived's -i option does. Empty: the host name up to its first
	// dot, keepalived's default.
	ConfigID string
}

// maxIncludeDepth bounds nested includes; keepalived has no limit but a
// loop of includes would never end.
const maxIncludeDepth = 32

// ReadFile reads the configuration at path and every file it includes. The
// error is for the main file only; a missing include is a Problem.
func ReadFile(path string, opt Options) (*Tree, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Read(path, data, opt), nil
}

// Read parses data as the configuration file name; includes are resolved
// relative to name's directory.
func Read(name string, data []byte, opt Options) *Tree {
	r := &reader{tree: &Tree{}, defs: map[string]string{}, configID: opt.ConfigID}
	if r.configID == "" {
		if h, err := os.Hostname(); err == nil {
			r.configID, _, _ = strings.Cut(h, ".")
		}
	}
	r.stack = []*[]*Node{&r.tree.Nodes}
	r.file(name, data, nil)
	if len(r.open) > 0 {
		n := r.open[len(r.open)-1]
		r.problem(n.File, n.Line, "block %s is not closed: '}' missing at the end of the file", n.Keyword)
	}
	return r.tree
}

type reader struct {
	tree     *Tree
	defs     map[string]string
	configID string
	// stack holds the node lists being filled, the top level first; open
	// holds the nodes whose blocks they are.
	stack    []*[]*Node
	open     []*Node
	pending  *Node // the previous keyword line, which a '{' would open
	condNote bool
}

// problem records what keepalived would only warn about.
func (r *reader) problem(file string, line int, format string, args ...any) {
	r.tree.Problems = append(r.tree.Problems, Problem{File: file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// lost records a part of the configuration that could not be read.
func (r *reader) lost(file string, line int, format string, args ...any) {
	r.tree.Problems = append(r.tree.Problems, Problem{File: file, Line: line, Msg: fmt.Sprintf(format, args...), Lost: true})
}

// file reads one file's lines; chain holds the absolute paths of the files
// that include it, for loop detection.
func (r *reader) file(name string, data []byte, chain []string) {
	abs, err := filepath.Abs(name)
	if err != nil {
		abs = name
	}
	chain = append(chain, abs)
	r.tree.Files = append(r.tree.Files, name)
	lines := strings.Split(string(data), "\n")
	for i, raw := range lines {
		lineNo := i + 1
		line := strings.TrimRight(raw, "\r")
		if strings.IndexByte(line, 0) >= 0 {
			r.lost(name, lineNo, "line contains a NUL byte; keepalived ignores it")
			continue
		}
		text, cont := decomment(line)
		if cont && strings.HasPrefix(text, "$") {
			r.lost(name, lineNo, "multi-line definition (a line ending in '\\') is not followed; its first line only is used")
		}
		r.logical(name, lineNo, text, chain)
	}
}

// logical handles one decommented line: conditionals, definitions,
// substitution, include, then brace splitting.
func (r *reader) logical(name string, lineNo int, text string, chain []string) {
	for round := 0; ; round++ {
		if text == "" {
			return
		}
		if text[0] == '@' {
			var ok bool
			if text, ok = r.conditional(name, lineNo, text); !ok {
				return
			}
		}
		if text == "" {
			return
		}
		if text[0] == '$' {
			if k, v, ok := definition(text); ok {
				r.defs[k] = v
				return
			}
		}
		if strings.HasPrefix(text, "~SEQ") || strings.HasPrefix(text, "~LST") {
			r.lost(name, lineNo, "%s is not followed: the line is skipped", text[:4])
			return
		}
		if len(r.defs) == 0 || !strings.Contains(text, "$") || round > 8 {
			break
		}
		sub, changed := r.substitute(text)
		if !changed {
			break
		}
		text, _ = decomment(sub)
		if text == "" || (text[0] != '@' && !strings.Contains(text, "$")) {
			break
		}
	}
	if text == "" {
		return
	}
	if pat, ok := includeArg(text); ok {
		r.include(name, lineNo, pat, chain)
		return
	}
	for _, part := range splitBraces(text) {
		r.feed(name, lineNo, part)
	}
}

// conditional applies keepalived's "@id rest" (only on host id) and
// "@^id rest" (on every host but id).
func (r *reader) conditional(name string, lineNo int, text string) (string, bool) {
	if !r.condNote {
		r.condNote = true
		r.problem(name, lineNo, "note: @host conditional lines are evaluated for host %q (set it with --host)", r.configID)
	}
	rev := strings.HasPrefix(text, "@^")
	rest := strings.TrimPrefix(strings.TrimPrefix(text, "@^"), "@")
	id, after, found := strings.Cut(strings.Replace(rest, "\t", " ", 1), " ")
	if !found {
		return "", false
	}
	if (id == r.configID) == rev {
		return "", false
	}
	return strings.TrimLeft(after, " \t"), true
}

// definition reads keepalived's "$NAME=value".
func definition(text string) (string, string, bool) {
	if len(text) < 2 || !(isAlpha(text[1]) || text[1] == '_') {
		return "", "", false
	}
	i := 2
	for i < len(text) && isWord(text[i]) {
		i++
	}
	name := text[1:i]
	rest := strings.TrimLeft(text[i:], " \t")
	if !strings.HasPrefix(rest, "=") {
		return "", "", false
	}
	return name, strings.TrimLeft(rest[1:], " \t"), true
}

// substitute replaces $NAME and ${NAME} with defined values; unknown names
// stay as they are (keepalived does the same).
func (r *reader) substitute(text string) (string, bool) {
	var b strings.Builder
	changed := false
	for i := 0; i < len(text); {
		if text[i] != '$' || i+1 >= len(text) {
			b.WriteByte(text[i])
			i++
			continue
		}
		if text[i+1] == '{' {
			if end := strings.IndexByte(text[i:], '}'); end > 0 {
				if v, ok := r.defs[text[i+2:i+end]]; ok {
					b.WriteString(v)
					i += end + 1
					changed = true
					continue
				}
			}
		} else {
			j := i + 1
			for j < len(text) && isWord(text[j]) {
				j++
			}
			if v, ok := r.defs[text[i+1:j]]; ok && j > i+1 {
				b.WriteString(v)
				i = j
				changed = true
				continue
			}
		}
		b.WriteByte(text[i])
		i++
	}
	return b.String(), changed
}

// includeArg recognises "include PATTERN" and keepalived's variants
// (includer, includem, includew, includeb, includea).
func includeArg(text string) (string, bool) {
	if !strings.HasPrefix(text, "include") || len(text) < 8 {
		return "", false
	}
	rest := text[7:]
	if isBlank(rest[0]) {
		return strings.TrimSpace(rest), true
	}
	if len(rest) > 1 && strings.IndexByte("rmwba", rest[0]) >= 0 && isBlank(rest[1]) {
		return strings.TrimSpace(rest[1:]), true
	}
	return "", false
}

func (r *reader) include(name string, lineNo int, pat string, chain []string) {
	if pat == "" {
		r.lost(name, lineNo, "include: no file named")
		return
	}
	if !filepath.IsAbs(pat) {
		pat = filepath.Join(filepath.Dir(name), pat)
	}
	matches, err := filepath.Glob(pat)
	if err != nil {
		r.lost(name, lineNo, "include %s: %v", pat, err)
		return
	}
	if len(matches) == 0 {
		if strings.ContainsAny(pat, "*?[") {
			// keepalived reads nothing from it either; on the host whose
			// files it names, run vipd convert there.
			r.problem(name, lineNo, "include %s: no file matches here, so nothing is read from it (as keepalived would); convert on the host that has these files", pat)
		} else {
			r.lost(name, lineNo, "include %s: no such file", pat)
		}
		return
	}
	slices.Sort(matches)
	for _, m := range matches {
		st, err := os.Stat(m)
		if err != nil {
			r.lost(name, lineNo, "include %s: %v", m, err)
			continue
		}
		if !st.Mode().IsRegular() {
			r.lost(name, lineNo, "include %s: not a regular file; skipped", m)
			continue
		}
		abs, _ := filepath.Abs(m)
		if slices.Contains(chain, abs) {
			r.lost(name, lineNo, "include %s: the file includes itself (through %d file(s)); skipped", m, len(chain)-slices.Index(chain, abs)-1)
			continue
		}
		if len(chain) >= maxIncludeDepth {
			r.lost(name, lineNo, "include %s: more than %d nested includes; skipped", m, maxIncludeDepth)
			continue
		}
		data, err := os.ReadFile(m)
		if err != nil {
			r.lost(name, lineNo, "include %s: %v", m, err)
			continue
		}
		r.file(m, data, chain)
	}
}

// feed adds one piece of a line: "{", "}" or a keyword line.
func (r *reader) feed(file string, line int, text string) {
	switch text {
	case "{":
		if p := r.pending; p != nil && !p.HasBlock {
			r.openBlock(p)
		} else {
			r.problem(file, line, "unexpected '{'; keepalived ignores it")
		}
		r.pending = nil
		return
	case "}":
		if p := r.pending; p != nil && !p.HasBlock && blockKeyword(p.Keyword) {
			// "keyword" then "}": keepalived opened the block
			// without its '{' and this closes it.
			r.problem(p.File, p.Line, "%s: '{' missing at the start of the block", p.Keyword)
			r.openBlock(p)
		}
		r.pending = nil
		if len(r.open) == 0 {
			r.problem(file, line, "extra '}'; keepalived ignores it")
			return
		}
		r.open = r.open[:len(r.open)-1]
		r.stack = r.stack[:len(r.stack)-1]
		return
	}
	if p := r.pending; p != nil && !p.HasBlock && blockKeyword(p.Keyword) {
		r.problem(p.File, p.Line, "%s: '{' missing at the start of the block; keepalived reads the lines after it as the block", p.Keyword)
		r.openBlock(p)
	}
	words, err := Words(text)
	if err != nil {
		r.lost(file, line, "%v", err)
	}
	if len(words) == 0 {
		r.pending = nil
		return
	}
	n := &Node{Keyword: words[0], Args: words[1:], Raw: text, File: file, Line: line}
	top := r.stack[len(r.stack)-1]
	*top = append(*top, n)
	r.pending = n
}

func (r *reader) openBlock(n *Node) {
	n.HasBlock = true
	r.open = append(r.open, n)
	r.stack = append(r.stack, &n.Block)
}

// blockKeywords open a block in keepalived even when the '{' is missing.
var blockKeywords = map[string]bool{
	"global_defs": true, "notification_email": true, "vrrp_instance": true,
	"vrrp_sync_group": true, "group": true, "vrrp_script": true,
	"vrrp_track_process": true, "track_file": true, "vrrp_track_file": true,
	"authentication": true, "virtual_ipaddress": true,
	"virtual_ipaddress_excluded": true, "virtual_routes": true,
	"virtual_rules": true, "static_ipaddress": true, "static_routes": true,
	"static_rules": true, "unicast_peer": true, "track_interface": true,
	"track_script": true, "track_process": true, "track_bfd": true,
	"virtual_server": true, "virtual_server_group": true, "real_server": true,
	"HTTP_GET": true, "SSL_GET": true, "TCP_CHECK": true, "MISC_CHECK": true,
	"SMTP_CHECK": true, "DNS_CHECK": true, "BFD_CHECK": true, "PING_CHECK": true,
	"UDP_CHECK": true, "FILE_CHECK": true, "url": true, "SSL": true,
	"garp_group": true, "linkbeat_interfaces": true, "bfd_instance": true,
	"track_group": true,
}

func blockKeyword(k string) bool { return blockKeywords[k] }

// decomment removes leading blanks, a comment that starts at an unquoted
// '#' or '!', and trailing blanks, and unescapes "\#" and "\!" outside
// quotes. cont reports a trailing '\' (a continued definition).
func decomment(s string) (string, bool) {
	s = strings.TrimLeft(s, " \t")
	var b strings.Builder
	quote, cont := false, false
loop:
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			quote = !quote
		case c == '\\':
			if i+1 >= len(s) {
				cont = true
				break loop
			}
			if !quote && (s[i+1] == '#' || s[i+1] == '!') {
				b.WriteByte(s[i+1])
			} else {
				b.WriteByte(c)
				b.WriteByte(s[i+1])
			}
			i++
			continue
		case !quote && (c == '#' || c == '!'):
			break loop
		}
		b.WriteByte(c)
	}
	return strings.TrimRight(b.String(), " \t"), cont
}

// splitBraces cuts a line before and after every '{' and '}' that is not
// inside "...", as keepalived's read_line does, and drops a ';' that ends a
// piece (a habit from other configuration languages that keepalived would
// otherwise read as part of the value).
func splitBraces(s string) []string {
	var out []string
	add := func(p string) {
		p = strings.TrimSpace(p)
		for strings.HasSuffix(p, ";") {
			p = strings.TrimSpace(strings.TrimSuffix(p, ";"))
		}
		if p != "" {
			out = append(out, p)
		}
	}
	for s != "" {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			break
		}
		if s[0] == '{' || s[0] == '}' {
			out = append(out, s[:1])
			s = s[1:]
			continue
		}
		cut := -1
		quote := false
		for i := 0; i < len(s) && cut < 0; i++ {
			switch s[i] {
			case '"':
				quote = !quote
			case '{', '}':
				if !quote {
					cut = i
				}
			}
		}
		if cut < 0 {
			add(s)
			break
		}
		add(s[:cut])
		s = s[cut:]
	}
	return out
}

// Words splits a line as keepalived's alloc_strvec does: at blanks, a word
// that starts with '"' runs to the next '"' and loses its quotes.
func Words(s string) ([]string, error) {
	var out []string
	for {
		s = strings.TrimLeft(s, " \t\f\v\r\n")
		if s == "" {
			return out, nil
		}
		if s[0] == '"' {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				out = append(out, s[1:])
				return out, fmt.Errorf("unmatched quote in %q", s)
			}
			out = append(out, s[1:end+1])
			s = s[end+2:]
			continue
		}
		end := strings.IndexAny(s, " \t\f\v\r\n\"")
		if end < 0 {
			return append(out, s), nil
		}
		out = append(out, s[:end])
		s = s[end:]
		if s[0] == '"' {
			// keepalived starts a new word at the quote.
			continue
		}
	}
}

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isWord(c byte) bool  { return isAlpha(c) || '0' <= c && c <= '9' || c == '_' }
func isBlank(c byte) bool { return c == ' ' || c == '\t' }
