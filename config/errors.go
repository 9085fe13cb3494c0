package config

import (
	"strconv"
	"strings"
)

// Error is one problem in a config file.
type Error struct {
	File string
	Line int // 1-based; 0 when the problem concerns the file as a whole
	Msg  string
}

// Error formats e as "file:line: msg", or "file: msg" when Line is 0.
func (e Error) Error() string {
	if e.Line == 0 {
		return e.File + ": " + e.Msg
	}
	return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Msg
}

// Errors is every problem found in a config file, ordered by line.
type Errors []Error

// Error puts each error on its own line.
func (e Errors) Error() string {
	var b strings.Builder
	for i, err := range e {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(err.Error())
	}
	return b.String()
}
