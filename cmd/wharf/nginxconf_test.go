package main

import (
	"fmt"
	"strings"
	"unicode"
)

// nginxDirective is one directive of an nginx configuration: its name,
// arguments and, for a block (http, server, location …), its children.
type nginxDirective struct {
	name     string
	args     []string
	children []*nginxDirective
	isBlock  bool
}

// parseNginx reads the nginx configuration syntax: directives ending in
// ";", blocks in braces, "#" comments, single and double quotes. It is
// enough for the deploy examples, not for every file nginx accepts
// (no variables expansion, no includes).
func parseNginx(src string) (*nginxDirective, error) {
	toks, err := nginxTokens(src)
	if err != nil {
		return nil, err
	}
	root := &nginxDirective{name: "main", isBlock: true}
	stack := []*nginxDirective{root}
	var words []string
	for _, tok := range toks {
		top := stack[len(stack)-1]
		switch tok {
		case ";":
			if len(words) == 0 {
				return nil, fmt.Errorf("nginx: empty directive in %s", top.name)
			}
			top.children = append(top.children, &nginxDirective{name: words[0], args: words[1:]})
			words = nil
		case "{":
			if len(words) == 0 {
				return nil, fmt.Errorf("nginx: block without a name in %s", top.name)
			}
			d := &nginxDirective{name: words[0], args: words[1:], isBlock: true}
			top.children = append(top.children, d)
			stack = append(stack, d)
			words = nil
		case "}":
			if len(words) > 0 || len(stack) == 1 {
				return nil, fmt.Errorf("nginx: unexpected } in %s (pending %q)", top.name, words)
			}
			stack = stack[:len(stack)-1]
		default:
			words = append(words, tok)
		}
	}
	if len(stack) != 1 || len(words) > 0 {
		return nil, fmt.Errorf("nginx: unterminated %s", stack[len(stack)-1].name)
	}
	return root, nil
}

// nginxTokens splits src into words and the punctuation ; { }.
func nginxTokens(src string) ([]string, error) {
	var toks []string
	rs := []rune(src)
	for i := 0; i < len(rs); {
		r := rs[i]
		switch {
		case unicode.IsSpace(r):
			i++
		case r == '#':
			for i < len(rs) && rs[i] != '\n' {
				i++
			}
		case r == ';' || r == '{' || r == '}':
			toks = append(toks, string(r))
			i++
		case r == '"' || r == '\'':
			j := i + 1
			for j < len(rs) && rs[j] != r {
				if rs[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(rs) {
				return nil, fmt.Errorf("nginx: unterminated quote")
			}
			toks = append(toks, string(rs[i+1:j]))
			i = j + 1
		default:
			j := i
			for j < len(rs) && !unicode.IsSpace(rs[j]) && !strings.ContainsRune(";{}#", rs[j]) {
				j++
			}
			toks = append(toks, string(rs[i:j]))
			i = j
		}
	}
	return toks, nil
}

// all returns d's children named name.
func (d *nginxDirective) all(name string) []*nginxDirective {
	var out []*nginxDirective
	for _, c := range d.children {
		if c.name == name {
			out = append(out, c)
		}
	}
	return out
}

// effective is the value of directive name as nginx applies it inside the
// chain of blocks (outermost first): the innermost block that sets it
// wins, as for proxy_* and client_max_body_size. Nil when none sets it.
func effective(name string, chain ...*nginxDirective) []string {
	for i := len(chain) - 1; i >= 0; i-- {
		if ds := chain[i].all(name); len(ds) > 0 {
			return ds[len(ds)-1].args
		}
	}
	return nil
}

// effectiveAll is every occurrence of an array directive (proxy_set_header,
// add_header) as nginx applies them: all of those in the innermost block
// that has any, none inherited from outside it.
func effectiveAll(name string, chain ...*nginxDirective) [][]string {
	for i := len(chain) - 1; i >= 0; i-- {
		if ds := chain[i].all(name); len(ds) > 0 {
			var out [][]string
			for _, d := range ds {
				out = append(out, d.args)
			}
			return out
		}
	}
	return nil
}

// locationFor is the prefix location of server that serves path: the
// longest matching prefix, as nginx picks it (regex locations are not
// used by the examples, and are refused rather than misjudged).
func locationFor(server *nginxDirective, path string) (*nginxDirective, error) {
	var best *nginxDirective
	bestLen := -1
	for _, loc := range server.all("location") {
		prefix := ""
		switch len(loc.args) {
		case 1:
			prefix = loc.args[0]
		case 2:
			if loc.args[0] != "^~" && loc.args[0] != "=" {
				return nil, fmt.Errorf("nginx: location %q: regex locations are not understood by this test", loc.args)
			}
			prefix = loc.args[1]
			if loc.args[0] == "=" && prefix != path {
				continue
			}
		default:
			return nil, fmt.Errorf("nginx: location %q", loc.args)
		}
		if strings.HasPrefix(path, prefix) && len(prefix) > bestLen {
			best, bestLen = loc, len(prefix)
		}
	}
	if best == nil {
		return nil, fmt.Errorf("nginx: no location serves %s", path)
	}
	return best, nil
}
