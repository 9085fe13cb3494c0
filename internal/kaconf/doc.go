// Package kaconf reads keepalived.conf files with keepalived's own lexical
// rules (lib/parser.c): comments that start at an unquoted '#' or '!'
// anywhere on a line, '{' and '}' as words of their own, "..." quoting,
// include with globs, $VAR definitions and @host conditional lines. It
// returns a tree of keyword lines and blocks, each with its file and line.
//
// It knows which keywords open a block (so that a missing '{' is handled as
// keepalived handles it) but nothing of what they mean: that is the
// converter's job (internal/convert). It never writes a file or runs a
// program.
package kaconf
