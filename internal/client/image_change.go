package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// docker import's --change takes Dockerfile instructions that only touch the
// image config. This is a small interpreter for the ones docker accepts
// there; no Dockerfile parser is among wharf's dependencies (buildkit's
// would pull in a build system), and the config instructions are few.

// changeState is the config being changed and what the Dockerfile
// dispatcher remembers between instructions.
type changeState struct {
	cfg *v1.Config
	// cmdSet records that CMD was given: ENTRYPOINT then keeps it, as in
	// docker; otherwise ENTRYPOINT clears an inherited CMD.
	cmdSet bool
}

// applyChanges applies --change instructions to cfg. Like docker, the
// changes are joined into one Dockerfile, so one value may hold several
// lines, and a trailing backslash continues a line.
func applyChanges(cfg *v1.Config, changes []string) error {
	st := &changeState{cfg: cfg}
	for _, line := range dockerfileLines(strings.Join(changes, "\n")) {
		instr, args, _ := strings.Cut(line, " ")
		args = strings.TrimSpace(args)
		var err error
		switch strings.ToLower(instr) {
		case "cmd":
			cfg.Cmd = commandForm(args)
			st.cmdSet = true
		case "entrypoint":
			cfg.Entrypoint = commandForm(args)
			if !st.cmdSet {
				cfg.Cmd = nil
			}
		case "env":
			err = st.pairs("ENV", args, func(k, v string) { cfg.Env = setEnv(cfg.Env, k, v) })
		case "label":
			err = st.pairs("LABEL", args, func(k, v string) {
				if cfg.Labels == nil {
					cfg.Labels = map[string]string{}
				}
				cfg.Labels[k] = v
			})
		case "expose":
			err = st.expose(args)
		case "user":
			cfg.User, err = st.word("USER", args)
		case "workdir":
			err = st.workdir(args)
		case "volume":
			err = st.volume(args)
		case "stopsignal":
			cfg.StopSignal, err = st.word("STOPSIGNAL", args)
			if err == nil {
				err = checkSignal(cfg.StopSignal)
			}
		case "healthcheck", "onbuild":
			err = fmt.Errorf("%s is a valid change command for docker, but wharf does not apply it", instr)
		default:
			err = fmt.Errorf("%s is not a valid change command", instr)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// dockerfileLines splits text into instructions: comments and blank lines
// dropped, backslash continuations joined. As in docker's parser, a
// continuation line keeps its leading blanks.
func dockerfileLines(text string) []string {
	var out []string
	var cur strings.Builder
	continuing := false
	for _, raw := range strings.Split(text, "\n") {
		line := strings.TrimRight(raw, " \t\r")
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if !continuing {
			line = trimmed
		}
		if strings.HasSuffix(line, `\`) {
			cur.WriteString(strings.TrimSuffix(line, `\`))
			continuing = true
			continue
		}
		cur.WriteString(line)
		out = append(out, strings.TrimSpace(cur.String()))
		cur.Reset()
		continuing = false
	}
	if cur.Len() > 0 {
		out = append(out, strings.TrimSpace(cur.String()))
	}
	return out
}

// commandForm is a CMD or ENTRYPOINT value: a JSON array of strings (exec
// form), else a shell command run by /bin/sh -c.
func commandForm(args string) []string {
	var exec []string
	if strings.HasPrefix(args, "[") && json.Unmarshal([]byte(args), &exec) == nil {
		return exec
	}
	if args == "" {
		return nil
	}
	return []string{"/bin/sh", "-c", args}
}

// pairs reads KEY=VALUE pairs (quoted values, $VAR expansion), or docker's
// legacy "KEY VALUE…" form with a single key.
func (st *changeState) pairs(instr, args string, set func(k, v string)) error {
	words, err := st.words(args)
	if err != nil {
		return err
	}
	if len(words) == 0 {
		return fmt.Errorf("%s requires at least one argument", instr)
	}
	if !strings.Contains(words[0].raw, "=") {
		key, rest, _ := strings.Cut(args, " ")
		if strings.TrimSpace(rest) == "" {
			return fmt.Errorf("%s must have two arguments", instr)
		}
		val, err := st.expand(strings.TrimSpace(rest))
		if err != nil {
			return err
		}
		set(key, val)
		return nil
	}
	for _, w := range words {
		k, v, ok := strings.Cut(w.text, "=")
		if !ok || !strings.Contains(w.raw, "=") {
			return fmt.Errorf("Syntax error - can't find = in %q. Must be of the form: name=value", w.raw)
		}
		if k == "" {
			return fmt.Errorf("%s names cannot be empty", instr)
		}
		set(k, v)
	}
	return nil
}

// word is a single expanded argument (USER, STOPSIGNAL).
func (st *changeState) word(instr, args string) (string, error) {
	if args == "" {
		return "", fmt.Errorf("%s requires exactly one argument", instr)
	}
	return st.expand(args)
}

func (st *changeState) workdir(args string) error {
	dir, err := st.word("WORKDIR", args)
	if err != nil {
		return err
	}
	if !path.IsAbs(dir) {
		base := st.cfg.WorkingDir
		if base == "" {
			base = "/"
		}
		dir = path.Join(base, dir)
	}
	st.cfg.WorkingDir = path.Clean(dir)
	return nil
}

func (st *changeState) volume(args string) error {
	var vols []string
	if !strings.HasPrefix(args, "[") || json.Unmarshal([]byte(args), &vols) != nil {
		words, err := st.words(args)
		if err != nil {
			return err
		}
		for _, w := range words {
			vols = append(vols, w.text)
		}
	}
	if len(vols) == 0 {
		return errors.New("VOLUME requires at least one argument")
	}
	for _, v := range vols {
		v = strings.TrimSpace(v)
		if v == "" {
			return errors.New("VOLUME specified can not be an empty string")
		}
		if st.cfg.Volumes == nil {
			st.cfg.Volumes = map[string]struct{}{}
		}
		st.cfg.Volumes[v] = struct{}{}
	}
	return nil
}

// expose adds PORT[/PROTO] and ranges LOW-HIGH[/PROTO]; the protocol
// defaults to tcp.
func (st *changeState) expose(args string) error {
	words, err := st.words(args)
	if err != nil {
		return err
	}
	if len(words) == 0 {
		return errors.New("EXPOSE requires at least one argument")
	}
	for _, w := range words {
		ports, proto, _ := strings.Cut(w.text, "/")
		if proto == "" {
			proto = "tcp"
		}
		proto = strings.ToLower(proto)
		if proto != "tcp" && proto != "udp" && proto != "sctp" {
			return fmt.Errorf("invalid proto: %s", proto)
		}
		lo, hi, isRange := strings.Cut(ports, "-")
		if !isRange {
			hi = lo
		}
		l, err1 := strconv.ParseUint(lo, 10, 16)
		h, err2 := strconv.ParseUint(hi, 10, 16)
		if err1 != nil || err2 != nil || h < l {
			return fmt.Errorf("invalid containerPort: %s", ports)
		}
		if st.cfg.ExposedPorts == nil {
			st.cfg.ExposedPorts = map[string]struct{}{}
		}
		for p := l; p <= h; p++ {
			st.cfg.ExposedPorts[strconv.FormatUint(p, 10)+"/"+proto] = struct{}{}
		}
	}
	return nil
}

// checkSignal accepts what docker's signal.ParseSignal accepts on Linux:
// a number, or a name with or without SIG.
func checkSignal(s string) error {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return fmt.Errorf("Invalid signal: %s", s)
		}
		return nil
	}
	name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	switch name {
	case "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL",
		"PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP",
		"TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ":
		return nil
	}
	if strings.HasPrefix(name, "RTMIN") || strings.HasPrefix(name, "RTMAX") {
		return nil
	}
	return fmt.Errorf("Invalid signal: %s", s)
}

// setEnv replaces or appends KEY=VALUE.
func setEnv(env []string, k, v string) []string {
	for i, e := range env {
		if name, _, _ := strings.Cut(e, "="); name == k {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}

// changeWord is one shell-like word: as written, and unquoted and expanded.
type changeWord struct{ raw, text string }

// words splits args on unquoted blanks, removing quotes and backslash
// escapes and expanding $VAR and ${VAR} outside single quotes, as the
// Dockerfile shell lexer does for these instructions.
func (st *changeState) words(args string) ([]changeWord, error) {
	var out []changeWord
	var raw, text strings.Builder
	inWord := false
	flush := func() {
		if inWord {
			out = append(out, changeWord{raw: raw.String(), text: text.String()})
		}
		raw.Reset()
		text.Reset()
		inWord = false
	}
	rs := []rune(args)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch {
		case c == ' ' || c == '\t':
			flush()
			continue
		case c == '\'':
			j := i + 1
			for j < len(rs) && rs[j] != '\'' {
				j++
			}
			if j == len(rs) {
				return nil, errors.New("unexpected end of statement while looking for matching single-quote")
			}
			raw.WriteString(string(rs[i : j+1]))
			text.WriteString(string(rs[i+1 : j]))
			i = j
		case c == '"':
			j := i + 1
			var seg strings.Builder
			for j < len(rs) && rs[j] != '"' {
				if rs[j] == '\\' && j+1 < len(rs) {
					j++
				}
				seg.WriteRune(rs[j])
				j++
			}
			if j == len(rs) {
				return nil, errors.New("unexpected end of statement while looking for matching double-quote")
			}
			exp, err := st.expand(seg.String())
			if err != nil {
				return nil, err
			}
			raw.WriteString(string(rs[i : j+1]))
			text.WriteString(exp)
			i = j
		case c == '\\' && i+1 < len(rs):
			raw.WriteString(string(rs[i : i+2]))
			text.WriteRune(rs[i+1])
			i++
		case c == '$':
			j := i + 1
			for j < len(rs) && rs[j] != ' ' && rs[j] != '\t' && rs[j] != '"' && rs[j] != '\'' {
				j++
			}
			exp, err := st.expand(string(rs[i:j]))
			if err != nil {
				return nil, err
			}
			raw.WriteString(string(rs[i:j]))
			text.WriteString(exp)
			i = j - 1
		default:
			raw.WriteRune(c)
			text.WriteRune(c)
		}
		inWord = true
	}
	flush()
	return out, nil
}

// expand replaces $VAR and ${VAR} with values from the config's Env
// (unset is empty), as the Dockerfile lexer does.
func (st *changeState) expand(s string) (string, error) {
	lookup := func(name string) string {
		for _, e := range st.cfg.Env {
			if k, v, _ := strings.Cut(e, "="); k == name {
				return v
			}
		}
		return ""
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		if s[i+1] == '{' {
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return "", fmt.Errorf("missing '}' in %q", s)
			}
			b.WriteString(lookup(s[i+2 : i+end]))
			i += end
			continue
		}
		j := i + 1
		for j < len(s) && (s[j] == '_' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= '0' && s[j] <= '9') {
			j++
		}
		if j == i+1 {
			b.WriteByte('$')
			continue
		}
		b.WriteString(lookup(s[i+1 : j]))
		i = j - 1
	}
	return b.String(), nil
}
