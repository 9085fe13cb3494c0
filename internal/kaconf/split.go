package kaconf

import (
	"errors"
	"fmt"
	"strings"
)

// SplitQuoted splits s into words as keepalived's
// alloc_strvec_quoted_escaped does for script and notify lines: blanks
// separate words; "..." and '...' may appear anywhere in a word and are
// removed; a backslash escapes the next character. With escapes, \n, \t,
// \xHH, \NNN (octal) and the like are decoded; without, the backslash and
// the character are both kept (keepalived splits twice: first without,
// then the command itself with).
func SplitQuoted(s string, escapes bool) ([]string, error) {
	var out []string
	i := 0
	for {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		if i >= len(s) {
			return out, nil
		}
		var w strings.Builder
		var quote byte
	word:
		for i < len(s) {
			c := s[i]
			switch {
			case c == '\\':
				i++
				if i >= len(s) {
					return out, errors.New("a '\\' ends the line")
				}
				if !escapes {
					w.WriteByte('\\')
					w.WriteByte(s[i])
					i++
					continue
				}
				i = unescape(s, i, &w)
			case quote != 0 && c == quote:
				quote = 0
				i++
			case quote != 0:
				w.WriteByte(c)
				i++
			case c == '"' || c == '\'':
				quote = c
				i++
			case isSpace(c):
				break word
			default:
				w.WriteByte(c)
				i++
			}
		}
		if quote != 0 {
			return out, fmt.Errorf("missing terminating %c in %q", quote, s)
		}
		out = append(out, w.String())
	}
}

// unescape decodes the escape whose first character (after the '\') is at
// s[i] and returns the index after it.
func unescape(s string, i int, w *strings.Builder) int {
	c := s[i]
	switch {
	case c == 'x' && i+1 < len(s) && isHex(s[i+1]):
		var v byte
		i++
		for n := 0; n < 2 && i < len(s) && isHex(s[i]); n++ {
			v = v<<4 | hexVal(s[i])
			i++
		}
		w.WriteByte(v)
		return i
	case c == 'c' && i+1 < len(s):
		w.WriteByte(s[i+1] & 0x1f)
		return i + 2
	case '0' <= c && c <= '7':
		v := c - '0'
		i++
		for n := 0; n < 2 && i < len(s) && '0' <= s[i] && s[i] <= '7'; n++ {
			v = v<<3 + (s[i] - '0')
			i++
		}
		w.WriteByte(v)
		return i
	}
	if d, ok := map[byte]byte{'a': '\a', 'b': '\b', 'E': 0x1b, 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t', 'v': '\v'}[c]; ok {
		w.WriteByte(d)
	} else {
		w.WriteByte(c)
	}
	return i + 1
}

// Command returns the command of a script or notify line (script
// "/bin/check arg", notify_master /bin/x) as keepalived reads it: the line
// is split without escapes and its second word is the command line, which
// is split again, with escapes, into argv. Rest holds the words after the
// command (a user and group on notify lines).
func Command(n *Node) (line string, argv, rest []string, err error) {
	words, err := SplitQuoted(n.Raw, false)
	if err != nil {
		return "", nil, nil, err
	}
	if len(words) < 2 || words[1] == "" {
		return "", nil, nil, errors.New("no command given")
	}
	argv, err = SplitQuoted(words[1], true)
	if err != nil {
		return "", nil, nil, err
	}
	if len(argv) == 0 {
		return "", nil, nil, errors.New("no command given")
	}
	return words[1], argv, words[2:], nil
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}
func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
func hexVal(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
