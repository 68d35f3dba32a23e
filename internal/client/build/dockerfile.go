package build

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// ErrRunNotSupported is returned (wrapped, naming the line) for a
// Dockerfile with a RUN instruction: running commands needs a container
// runtime, which a daemonless build does not have.
var ErrRunNotSupported = errors.New("RUN is not supported")

// instruction is one parsed Dockerfile line.
type instruction struct {
	cmd   string   // lower case: "copy", "env", …
	args  []string // the parser's words, unexpanded
	flags []string // "--from=x", as written
	json  bool     // exec (JSON array) form
	line  int
	text  string // the line as written
}

// errorf names the instruction's line, as docker does.
func (in instruction) errorf(format string, a ...any) error {
	return fmt.Errorf("Dockerfile line %d: %s: %s", in.line, strings.ToUpper(in.cmd), fmt.Sprintf(format, a...))
}

// dockerfile is a parsed Dockerfile: the ARGs before the first FROM, and
// the stages, each starting with its FROM.
type dockerfile struct {
	globals []instruction
	stages  [][]instruction
	lex     *shell.Lex
}

// supported lists the instructions a build without a runtime can carry out.
var supported = map[string]bool{
	"from": true, "arg": true, "env": true, "label": true, "workdir": true, "user": true,
	"expose": true, "cmd": true, "entrypoint": true, "volume": true, "stopsignal": true,
	"healthcheck": true, "shell": true, "copy": true, "add": true, "maintainer": true, "onbuild": true,
}

// parseDockerfile parses with BuildKit's own parser, so line continuations,
// the escape directive, comments and JSON forms read exactly as docker
// reads them, and refuses what needs a container runtime.
func parseDockerfile(r io.Reader) (*dockerfile, error) {
	res, err := parser.Parse(r)
	if err != nil {
		return nil, fmt.Errorf("parse Dockerfile: %w", err)
	}
	df := &dockerfile{lex: shell.NewLex(res.EscapeToken)}
	for _, n := range res.AST.Children {
		in := instruction{cmd: strings.ToLower(n.Value), flags: n.Flags, json: n.Attributes["json"],
			line: n.StartLine, text: n.Original}
		for a := n.Next; a != nil; a = a.Next {
			in.args = append(in.args, a.Value)
		}
		switch {
		case in.cmd == "run":
			return nil, fmt.Errorf("Dockerfile line %d: %w: wharf image build runs no commands (it has no container runtime); build this Dockerfile with `docker build` or `buildah bud`", in.line, ErrRunNotSupported)
		case in.cmd == "onbuild" && len(n.Next.Children) > 0 && strings.EqualFold(n.Next.Children[0].Value, "run"):
			// Stored for a later build, which would need a runtime too.
			return nil, fmt.Errorf("Dockerfile line %d: %w (in ONBUILD): build this Dockerfile with `docker build` or `buildah bud`", in.line, ErrRunNotSupported)
		case !supported[in.cmd]:
			return nil, fmt.Errorf("Dockerfile line %d: unknown instruction: %s", in.line, strings.ToUpper(n.Value))
		case len(n.Heredocs) > 0:
			return nil, in.errorf("heredocs are not supported")
		}
		switch {
		case in.cmd == "from":
			df.stages = append(df.stages, []instruction{in})
		case len(df.stages) == 0 && in.cmd != "arg":
			return nil, fmt.Errorf("Dockerfile line %d: %s before the first FROM: only ARG may come before FROM", in.line, strings.ToUpper(in.cmd))
		case len(df.stages) == 0:
			df.globals = append(df.globals, in)
		default:
			last := len(df.stages) - 1
			df.stages[last] = append(df.stages[last], in)
		}
	}
	if len(df.stages) == 0 {
		return nil, errors.New("the Dockerfile has no FROM instruction")
	}
	return df, nil
}

// vars are the variables a word is expanded with (shell.EnvGetter).
type vars map[string]string

// Get implements shell.EnvGetter.
func (v vars) Get(k string) (string, bool) { s, ok := v[k]; return s, ok }

// Keys implements shell.EnvGetter.
func (v vars) Keys() []string { return slices.Sorted(maps.Keys(v)) }

// expand substitutes $VAR, ${VAR:-default}, … and removes quotes, with
// BuildKit's lexer so that the result is docker's.
func (df *dockerfile) expand(in instruction, word string, env vars) (string, error) {
	s, _, err := df.lex.ProcessWord(word, env)
	if err != nil {
		return "", in.errorf("%v", err)
	}
	return s, nil
}

// flags parses an instruction's --name=value flags; allowed lists the
// names it takes, and bools those that may stand alone.
func (in instruction) parseFlags(allowed ...string) (map[string]string, error) {
	out := map[string]string{}
	for _, f := range in.flags {
		name, val, hasVal := strings.Cut(strings.TrimPrefix(f, "--"), "=")
		if !strings.HasPrefix(f, "--") || !slices.Contains(allowed, name) {
			return nil, in.errorf("unknown flag: %s", f)
		}
		if !hasVal {
			return nil, in.errorf("flag %s needs a value (--%s=VALUE)", f, name)
		}
		if _, dup := out[name]; dup {
			return nil, in.errorf("flag --%s given twice", name)
		}
		out[name] = val
	}
	return out, nil
}

// keyValues reads the parser's (key, value, separator) triples of ENV
// and LABEL.
func (in instruction) keyValues() ([][2]string, error) {
	if len(in.args) == 0 || len(in.args)%3 != 0 {
		return nil, in.errorf("requires at least one argument of the form name=value")
	}
	var out [][2]string
	for i := 0; i < len(in.args); i += 3 {
		out = append(out, [2]string{in.args[i], in.args[i+1]})
	}
	return out, nil
}
