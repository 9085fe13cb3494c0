package kaconf

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// flat lists every node as "depth keyword args@file:line".
func flat(nodes []*Node, depth int, out *[]string) {
	for _, n := range nodes {
		s := strings.Repeat(">", depth) + n.Keyword
		if len(n.Args) > 0 {
			s += " " + strings.Join(n.Args, "|")
		}
		*out = append(*out, s+"@"+filepath.Base(n.File)+":"+itoa(n.Line))
		flat(n.Block, depth+1, out)
	}
}

// itoa writes a line number with two digits, so that the lists line up.
func itoa(i int) string { return string(rune('0'+i/10%10)) + string(rune('0'+i%10)) }

// The fixture has every lexical quirk: CRLF line ends, non-UTF-8 bytes
// in a comment, '!' and '#' comments, a '#' inside quotes, definitions
// and both substitution forms, @host lines, several keywords on a line,
// ';' at line ends, braces on their own line, a one-line block, include
// with a glob relative to the including file, an include loop, an
// include that matches nothing, and an extra '}'.
func TestReadQuirks(t *testing.T) {
	tree, err := ReadFile("testdata/quirks.conf", Options{ConfigID: "lb1"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	flat(tree.Nodes, 0, &got)
	want := []string{
		"global_defs@quirks.conf:04",
		">router_id lb # one@quirks.conf:05",
		"vrrp_script chk@quirks.conf:07",
		">script /usr/bin/pgrep -x haproxy@quirks.conf:08",
		">interval 2@quirks.conf:09",
		"vrrp_instance VI_1@quirks.conf:11",
		">interface eth0@quirks.conf:13",
		">state MASTER|priority|200@quirks.conf:14",
		">priority 150@quirks.conf:15",
		">virtual_router_id 51@quirks.conf:16",
		">track_script@quirks.conf:18",
		">>chk@quirks.conf:18",
		">virtual_ipaddress@quirks.conf:19",
		">>198.18.0.10/24 dev|eth0|label|eth0:1@quirks.conf:21",
		// Args split as keepalived's alloc_strvec: escaped quotes end words.
		">notify_master /bin/echo \\|a|b\\| c|root@quirks.conf:23",
		"vrrp_instance VI_2@10-second.conf:01",
		">interface eth1@10-second.conf:02",
		"vrrp_script from_b@20-third.conf:01",
		">script /bin/true@20-third.conf:01",
		"vrrp_script a@a.conf:02",
		">interval 1@a.conf:03",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("tree:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var probs []string
	for _, p := range tree.Problems {
		probs = append(probs, filepath.Base(p.File)+":"+itoa(p.Line)+": "+p.Msg)
	}
	for _, w := range []string{
		"b.conf:01: include ",                     // the loop a -> b -> a
		"quirks.conf:27: include ",                // missing/*.conf
		"quirks.conf:28: extra '}'",               // the stray brace
		"quirks.conf:16: note: @host conditional", // reported once
	} {
		found := false
		for _, p := range probs {
			found = found || strings.HasPrefix(p, w)
		}
		if !found {
			t.Errorf("no problem starting %q in %q", w, probs)
		}
	}
	if len(probs) != 4 {
		t.Errorf("problems: %q, want 4", probs)
	}
	// The notify line keeps its quoting for the second split.
	notify := tree.Nodes[2].Block[6]
	line, argv, rest, err := Command(notify)
	if err != nil || line != `/bin/echo \"a b\" c` || !reflect.DeepEqual(argv, []string{"/bin/echo", `"a`, `b"`, "c"}) || !reflect.DeepEqual(rest, []string{"root"}) {
		t.Errorf("Command: %q %q %q %v", line, argv, rest, err)
	}
}

// On another host the @lb1 line is skipped and the @^lb1 one kept.
func TestConditionalOtherHost(t *testing.T) {
	tree, err := ReadFile("testdata/quirks.conf", Options{ConfigID: "lb2"})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, n := range tree.Nodes[2].Block {
		if n.Keyword == "virtual_router_id" {
			ids = append(ids, n.Args[0])
		}
	}
	if !reflect.DeepEqual(ids, []string{"52"}) {
		t.Errorf("virtual_router_id on lb2: %q, want [52]", ids)
	}
}

// A keyword that opens a block in keepalived takes the following lines as
// its block even without '{', as keepalived does (with a complaint).
func TestMissingBrace(t *testing.T) {
	tree := Read("x.conf", []byte("virtual_server 10.0.0.1 80\n delay_loop 10\n real_server 10.0.0.2 80 {\n weight 1\n }\n}\nvrrp_instance A {\n}\n"), Options{})
	var got []string
	flat(tree.Nodes, 0, &got)
	want := []string{
		"virtual_server 10.0.0.1|80@x.conf:01", ">delay_loop 10@x.conf:02", ">real_server 10.0.0.2|80@x.conf:03",
		">>weight 1@x.conf:04", "vrrp_instance A@x.conf:07",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("tree %q, want %q", got, want)
	}
	if len(tree.Problems) != 1 || !strings.Contains(tree.Problems[0].Msg, "'{' missing") {
		t.Errorf("problems %v", tree.Problems)
	}
}

func TestSplitQuoted(t *testing.T) {
	for _, c := range []struct {
		in      string
		escapes bool
		want    []string
	}{
		{`a "b c" d`, true, []string{"a", "b c", "d"}},
		{`x'y z'w`, true, []string{"xy zw"}},
		{`a\ b \x41\101\t`, true, []string{"a b", "AA\t"}},
		{`a\ b`, false, []string{`a\ b`}},
	} {
		got, err := SplitQuoted(c.in, c.escapes)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("SplitQuoted(%q, %v) = %q, %v; want %q", c.in, c.escapes, got, err, c.want)
		}
	}
	if _, err := SplitQuoted(`"open`, true); err == nil {
		t.Error("unterminated quote: no error")
	}
}

// A glob that matches nothing reads nothing, as keepalived does: a note,
// not a loss. A named file that is missing is a loss.
func TestIncludeNoMatch(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(f, []byte("include rules/*.conf\ninclude extra.conf\nvrrp_instance a {\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tree, err := ReadFile(f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(tree.Problems) != 2 {
		t.Fatalf("problems: %+v", tree.Problems)
	}
	if p := tree.Problems[0]; p.Line != 1 || p.Lost || !strings.Contains(p.Msg, "no file matches here") {
		t.Errorf("glob: %+v", p)
	}
	if p := tree.Problems[1]; p.Line != 2 || !p.Lost || !strings.Contains(p.Msg, "no such file") {
		t.Errorf("named file: %+v", p)
	}
}
